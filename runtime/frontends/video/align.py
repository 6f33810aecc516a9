"""Eye-aligned face crops: the geometry the models were trained on (CelebA's 64x64 crops of
eye-aligned images), from detector keypoints.

The template: where the detector's keypoints sit in our own training crops (the mean position of
each over the faces of train.npz the detector finds, measured once at export time by
edgefill.export.detector.measure_template and stored in the bundle's detector spec, "template").
A frame's face is mapped onto it with a similarity transform (rotation, uniform scale, shift:
cv2.estimateAffinePartial2D on ALIGN_POINTS, the eyes, nose tip and mouth; the ears are often
hidden), the 64x64 crop is sampled through it (at 4x then area-downscaled, no aliasing), and the
result goes back through the inverse transform: inside the hole the result, outside it the frame
untouched but for a feathered band just outside the hole's edge (FEATHER crop pixels wide) where
the result fades into the frame, so no seam shows; the hole itself is never mixed with what was
under it.
"""
from __future__ import annotations

import cv2
import numpy as np

from ...imaging.diffusion import opencv_inpaint
from ...imaging.images import IMAGE_SIZE
from ...imaging.preprocess import known_only

ALIGN_POINTS = (0, 1, 2, 3)  # right eye, left eye, nose tip, mouth (blazeface.KEYPOINTS)
FEATHER = 1.5  # crop pixels: the width of the band outside the hole where the result fades out
SUPERSAMPLE = 4


def similarity(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Keypoints (K,2) in the frame, template (K,2) in the 64x64 crop -> float64 (2,3) frame -> crop."""
    m, _ = cv2.estimateAffinePartial2D(np.asarray(points, np.float32).reshape(-1, 1, 2),
                                       np.asarray(template, np.float32).reshape(-1, 1, 2),
                                       method=cv2.LMEDS)
    if m is None:  # degenerate points: fall back to the least-squares (Umeyama) fit
        m = _umeyama(np.asarray(points, np.float64), np.asarray(template, np.float64))
    return m.astype(np.float64)


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    scale = sig.sum() / max((s ** 2).sum() / len(src), 1e-12)
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def crop_corners(m: np.ndarray) -> np.ndarray:
    """The 64x64 crop's corners in the frame (4,2)."""
    inv = invert(m)
    c = np.array([[0, 0], [IMAGE_SIZE, 0], [IMAGE_SIZE, IMAGE_SIZE], [0, IMAGE_SIZE]], np.float64)
    return c @ inv[:, :2].T + inv[:, 2]


def crop_box(m: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The axis-aligned bounds of the crop in the frame, clipped to it (x, y, w, h), or None."""
    c = crop_corners(m)
    x0, y0 = np.floor(c.min(0)).astype(int)
    x1, y1 = np.ceil(c.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def warp_in(frame: np.ndarray, m: np.ndarray, hole: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (H,W,3) -> the 64x64 aligned crop (sampled at SUPERSAMPLE x, area-downscaled).
    hole: the frame's hole (uint8 (H,W), 255 = fill), whose pixels must not be read: near its edge
    they are first replaced by the known pixels around them (imaging.preprocess.known_only, reach:
    one crop pixel's footprint plus the bilinear taps), so no known crop pixel carries what lay
    under the hole."""
    if hole is not None:
        frame_px = 1.0 / np.sqrt(abs(np.linalg.det(np.asarray(m, np.float64)[:, :2])))  # per crop pixel
        frame = known_only(frame, hole >= 128, int(np.ceil(frame_px)) + 2)
    big = IMAGE_SIZE * SUPERSAMPLE
    ms = np.asarray(m, np.float64) * SUPERSAMPLE
    crop = cv2.warpAffine(frame, ms, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA))


def warp_mask_in(mask: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A full-frame uint8 hole (255 = fill) -> the 64x64 crop's hole (a crop pixel is a hole when
    any of it is)."""
    big = IMAGE_SIZE * SUPERSAMPLE
    ms = np.asarray(m, np.float64) * SUPERSAMPLE
    crop = cv2.warpAffine(mask, ms, (big, big), flags=cv2.INTER_NEAREST, borderValue=0)
    cover = cv2.resize((crop >= 128).astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return np.where(cover > 0, np.uint8(255), np.uint8(0))


def hole_in_frame(mask64: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 64x64 crop's hole -> the full-frame hole uint8 (H,W) (255 = fill): frame pixels whose
    centre falls in a hole pixel of the crop."""
    inv = invert(m)
    return cv2.warpAffine(np.where(mask64 >= 128, np.uint8(255), np.uint8(0)), inv, (width, height),
                          flags=cv2.INTER_NEAREST, borderValue=0)


def paste_aligned(frame: np.ndarray, result64: np.ndarray, hole: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Put the 64x64 result back: inside the full-frame `hole` (uint8, 255 = fill) the result,
    in a FEATHER-wide band outside it the result fading into the frame, elsewhere the frame. Only
    the hole's bounding box (plus the band) is warped and blended."""
    h, w = frame.shape[:2]
    out = frame.copy()
    box = crop_box(m, w, h)
    if box is None:
        return out
    x, y, bw, bh = box
    inv = invert(m)
    scale = float(np.hypot(inv[0, 0], inv[1, 0]))  # frame pixels per crop pixel
    hx, hy, hw, hh = cv2.boundingRect(np.ascontiguousarray(hole[y:y + bh, x:x + bw]))
    if hw == 0 or hh == 0:
        return out
    pad = int(np.ceil(FEATHER * scale)) + 2
    x0, y0 = max(0, x + hx - pad), max(0, y + hy - pad)
    x1, y1 = min(w, x + hx + hw + pad), min(h, y + hy + hh + pad)
    inv_local = inv.copy()
    inv_local[:, 2] -= [x0, y0]
    up = cv2.warpAffine(np.ascontiguousarray(result64), inv_local, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REPLICATE)
    inside = hole[y0:y1, x0:x1] >= 128
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    alpha = np.clip(1.0 - dist / max(FEATHER * scale, 1e-6), 0.0, 1.0)
    alpha[inside] = 1.0
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(alpha[..., None] * up + (1 - alpha[..., None]) * region + 0.5, 0, 255).astype(np.uint8)
    return out


def turn(points: np.ndarray, template: np.ndarray) -> float:
    """How far the head is turned (yaw), from the keypoints alone: the nose tip's offset from the
    eyes' midpoint along the eye line, over the eye distance (rotation- and scale-free), minus the
    template's own (~0 for a frontal face; a nose protruding about half the eye distance gives
    ~0.5 tan(yaw): 0.3 is ~31 degrees). Signed: positive when the nose is nearer the person's left
    eye. points, template: (4,2) in ALIGN_POINTS order."""

    def ratio(p):
        p = np.asarray(p, np.float64)
        e = p[1] - p[0]
        d = float(np.hypot(*e))
        if d < 1e-6:
            return 0.0
        return float(np.dot(p[2] - p[:2].mean(0), e / d) / d)

    return ratio(points) - ratio(template)


_CENTRES = np.stack(np.meshgrid(np.arange(IMAGE_SIZE) + 0.5, np.arange(IMAGE_SIZE) + 0.5), -1).reshape(-1, 2)


def outside_fraction(m: np.ndarray, width: int, height: int) -> float:
    """The fraction of the 64x64 crop's pixels whose centre maps outside the frame (warp_in samples
    them from the replicated border: the search would fit the known pixels to a smear)."""
    inv = invert(m)
    f = _CENTRES @ inv[:, :2].T + inv[:, 2]
    out = (f[:, 0] < 0) | (f[:, 1] < 0) | (f[:, 0] > width) | (f[:, 1] > height)
    return float(out.mean())


def telea64(image64: np.ndarray, mask64: np.ndarray) -> np.ndarray:
    """The fallback fill of one crop's hole, uint8 (H,W,3) RGB and mask (H,W) 255 = fill: OpenCV
    Telea as imaging.diffusion.opencv_inpaint runs it for every other Telea fill (radius 3; what
    lies under the hole is not read), the known pixels kept."""
    return opencv_inpaint(np.asarray(image64)[None], np.asarray(mask64)[None], "telea")[0]
