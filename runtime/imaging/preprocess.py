"""From a user's image and mask to the model's 64x64 problem, and back.

Images: anything images.to_rgb_uint8 takes (gray, RGB, RGBA, 8/16-bit) -> RGB uint8 (H,W,3);
the result is RGB uint8 of the same H x W (alpha is dropped, 16-bit becomes 8-bit).

Region: by default the whole image, resized to 64x64 (aspect not kept, as the model sees
faces at 64x64); with box = (x, y, w, h) only that face region is cropped and resized.

Masks (uint8 HW, 255 = fill), the policy:
- a mask kind name (runtime.masks.MASK_KINDS) is drawn at 64x64 for the region (from `rng`) and
  scaled to the region with nearest neighbour; pixels outside the region are known;
- a mask image file or array describes the WHOLE input image. One of the image's size is used
  as is; one of another size with the same aspect ratio (within ASPECT_TOLERANCE) is resized
  to the image with nearest neighbour (e.g. a 64x64 mask for a 256x256 image); one of another
  aspect ratio is refused (stretching it would move the hole), and so is a hole outside --box.
- the 64x64 model mask of a file/array mask marks a model pixel missing when ANY part of it is
  missing at full resolution;
- what lies under the hole is never read: before the region is resized, its hole pixels near the
  hole's edge are replaced by the mean of nearby known pixels (known_only), so a known 64x64 pixel
  whose footprint reaches into the hole (a mask kind scaled with nearest neighbour, cubic
  upscaling) carries no hole content. On a 150x150 face with other values under a center hole the
  output used to change by 11 levels on average inside the hole; now it cannot.

Back: the 64x64 result is resized to the region (cubic when growing, area when shrinking) and
written ONLY into the hole's pixels at full resolution: outside the hole the output equals the
(RGB uint8) input exactly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import EdgefillError
from .images import IMAGE_SIZE, resize, to_rgb_uint8
from .masks import FILL, MASK_KINDS, make_mask, read_mask

ASPECT_TOLERANCE = 0.02
MIN_BOX = 4


@dataclass
class Prepared:
    """One image ready for the 64x64 models. original: RGB uint8 (H,W,3); mask: uint8 (H,W)
    255 = fill; box: (x, y, w, h) region; image64: RGB uint8 (64,64,3); mask64: uint8 (64,64)."""

    original: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    image64: np.ndarray
    mask64: np.ndarray

    @property
    def has_hole(self) -> bool:
        return bool((self.mask >= 128).any())


def parse_box(spec) -> tuple[int, int, int, int] | None:
    """'x,y,w,h' (or a 4-sequence) -> (x, y, w, h) ints; None stays None."""
    if spec is None:
        return None
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        box = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise EdgefillError(f"--box must be x,y,w,h (four integers), got {spec!r}")
    return box  # type: ignore[return-value]


def check_box(box: tuple[int, int, int, int], height: int, width: int) -> None:
    x, y, w, h = box
    if w < MIN_BOX or h < MIN_BOX:
        raise EdgefillError(f"--box {x},{y},{w},{h}: width and height must be at least {MIN_BOX}")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise EdgefillError(f"--box {x},{y},{w},{h} is not inside the {width}x{height} image")


def fit_mask(mask: np.ndarray, height: int, width: int, source: str = "mask") -> np.ndarray:
    """The mask-size policy (module docstring): uint8/bool (h,w) -> uint8 (height,width), 255 = fill."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise EdgefillError(f"{source}: a mask must be one channel HxW, got shape {m.shape}")
    if m.dtype == bool:
        m = m.astype(np.uint8) * FILL
    elif m.dtype != np.uint8:
        raise EdgefillError(f"{source}: a mask must be uint8 (255 = fill) or bool, got {m.dtype}")
    m = np.where(m >= 128, FILL, 0).astype(np.uint8)
    mh, mw = m.shape
    if (mh, mw) == (height, width):
        return m
    if abs((mw / mh) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise EdgefillError(f"{source} is {mw}x{mh} but the image is {width}x{height}: a mask must have the "
                            f"image's size or at least its aspect ratio")
    return cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST)


def known_only(image: np.ndarray, hole: np.ndarray, reach: int) -> np.ndarray:
    """image uint8 (H,W,C), hole bool (H,W) -> a uint8 copy whose hole pixels hold the mean of the
    KNOWN pixels in the (2*reach+1)^2 box around them (where there is none: the mean of the known
    pixels near the hole), so any resampling that reads at most `reach` pixels across the hole's
    edge reads known pixels only. Only the hole's bounding box plus `reach` is computed; the image
    itself is returned when there is no hole."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return image
    h, w = hole.shape
    y0, y1 = max(0, rows[0] - reach), min(h, rows[-1] + reach + 1)
    x0, x1 = max(0, cols[0] - reach), min(w, cols[-1] + reach + 1)
    sub = image[y0:y1, x0:x1]
    inside = hole[y0:y1, x0:x1]
    known = (~inside).astype(np.uint8)
    size = (2 * reach + 1, 2 * reach + 1)
    num = cv2.boxFilter(cv2.bitwise_and(sub, sub, mask=known), cv2.CV_32F, size, normalize=False,
                        borderType=cv2.BORDER_REFLECT)
    den = cv2.boxFilter(known, cv2.CV_32F, size, normalize=False, borderType=cv2.BORDER_REFLECT)
    far = den < 0.5
    fill = num / np.maximum(den, 1.0)[..., None]
    if far.any():  # out of reach of every known pixel: the mean of the known ones near the hole
        fill[far] = cv2.mean(sub, mask=known)[:sub.shape[2]] if known.any() else 128.0
    out = image.copy()
    np.copyto(out[y0:y1, x0:x1], np.clip(np.rint(fill), 0, 255).astype(np.uint8), where=inside[..., None])
    return out


def _coverage_mask64(region_mask: np.ndarray) -> np.ndarray:
    """Full-resolution region mask -> 64x64: missing where any part of the model pixel is missing."""
    if region_mask.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return region_mask.copy()
    frac = cv2.resize((region_mask >= 128).astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return np.where(frac > 1e-3, FILL, 0).astype(np.uint8)


def prepare(image: np.ndarray, mask, box=None, rng: np.random.Generator | None = None,
            source: str = "image") -> Prepared:
    """image (any mode), mask (kind name, mask-image path, or array), box (x,y,w,h) or None."""
    original = to_rgb_uint8(image)
    height, width = original.shape[:2]
    box = parse_box(box) or (0, 0, width, height)
    check_box(box, height, width)
    x, y, w, h = box
    full = np.zeros((height, width), np.uint8)
    if isinstance(mask, str) and mask in MASK_KINDS:
        mask64 = make_mask(mask, rng if rng is not None else np.random.default_rng(0), IMAGE_SIZE)
        full[y:y + h, x:x + w] = cv2.resize(mask64, (w, h), interpolation=cv2.INTER_NEAREST)
        return Prepared(original, full, box, _image64(original, full, box), mask64)
    if isinstance(mask, (str, os.PathLike)):
        path = Path(mask)
        if not path.is_file():
            raise EdgefillError(f"--mask {str(mask)!r} is neither a mask kind ({', '.join(MASK_KINDS)}) "
                                f"nor an existing file")
        full = fit_mask(read_mask(path, None), height, width, source=f"mask {path}")
    else:
        full = fit_mask(mask, height, width)
    outside = full.copy()
    outside[y:y + h, x:x + w] = 0
    if outside.any():
        raise EdgefillError(f"the mask has holes outside --box {x},{y},{w},{h}; they could not be filled")
    mask64 = _coverage_mask64(full[y:y + h, x:x + w])
    return Prepared(original, full, box, _image64(original, full, box), mask64)


def _image64(original: np.ndarray, full: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The region resized to 64x64 from its known pixels only (known_only; reach: one model
    pixel's footprint plus cubic's two taps)."""
    x, y, w, h = box
    region = original[y:y + h, x:x + w]
    if (w, h) != (IMAGE_SIZE, IMAGE_SIZE):
        reach = int(np.ceil(max(w, h) / IMAGE_SIZE)) + 2
        region = known_only(region, full[y:y + h, x:x + w] >= 128, reach)
    return np.ascontiguousarray(resize(region, (IMAGE_SIZE, IMAGE_SIZE)))


def paste_back(prepared: Prepared, result64: np.ndarray) -> np.ndarray:
    """RGB uint8 (64,64,3) result -> RGB uint8 (H,W,3): the original with only hole pixels replaced."""
    x, y, w, h = prepared.box
    up = resize(np.ascontiguousarray(result64), (w, h))
    out = prepared.original.copy()
    region = out[y:y + h, x:x + w]
    hole = prepared.mask[y:y + h, x:x + w] >= 128
    region[hole] = up[hole]
    return out
