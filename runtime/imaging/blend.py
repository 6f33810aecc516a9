"""Blending the generated image into the known pixels: paste, or Poisson (cv2.seamlessClone).

Arrays (batched; a single HWC image with an HW mask works too): known, generated uint8
(N,64,64,3) RGB; masks uint8 (N,64,64), 255 = fill. Every mode returns uint8 (N,64,64,3)
equal to `known` outside the hole, exactly; only hole pixels come from the blend.

paste:   x = M*y + (1-M)*G(z)  (M = 1 on known pixels).
poisson: Yeh et al.'s Poisson blending with cv2.seamlessClone(NORMAL_CLONE) per image: the
         hole keeps G(z)'s gradients and takes its level from the known pixels around it.
         Details that make cv2.seamlessClone behave on small, arbitrary masks:
         - the image is padded by PAD pixels (reflected), so holes touching the image border do
           not touch seamlessClone's border (it zeroes the mask's outer frame);
         - the destination's hole (and the padding next to it) holds G(z) shifted by the median
           known-minus-generated difference on the ring of known pixels around the hole, so
           the boundary values at the image border are consistent with the fill;
         - the mask handed to OpenCV is the hole dilated by DILATE pixels: OpenCV (4.x and 5.x)
           erodes it before taking the source gradients, so an undilated 1-2 px hole would get
           no Poisson correction at all (or make OpenCV raise);
         - empty mask -> known unchanged; no known pixel -> generated (nothing to match);
           should OpenCV still refuse a mask, the level-shifted paste is used for that image.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import EdgefillError
from .metrics import hole_mean_square

MODES = ("paste", "poisson")
PAD = 8
DILATE = 4
_KERNEL = np.ones((3, 3), np.uint8)


def _batched(known: np.ndarray, generated: np.ndarray, masks: np.ndarray):
    known, generated, masks = np.asarray(known), np.asarray(generated), np.asarray(masks)
    single = known.ndim == 3
    if single:
        known, generated, masks = known[None], generated[None], masks[None]
    if known.dtype != np.uint8 or generated.dtype != np.uint8 or masks.dtype != np.uint8:
        raise EdgefillError("blend expects uint8 images and masks")
    if known.ndim != 4 or known.shape[3] != 3 or generated.shape != known.shape or masks.shape != known.shape[:3]:
        raise EdgefillError(f"blend expects known, generated (N,H,W,3) and masks (N,H,W); got {known.shape}, "
                            f"{generated.shape}, {masks.shape}")
    return known, generated, masks, single


def paste(known: np.ndarray, generated: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """M*y + (1-M)*G(z): generated pixels in the hole, known pixels elsewhere -> uint8 (N,H,W,3)."""
    known, generated, masks, single = _batched(known, generated, masks)
    out = np.where((masks >= 128)[..., None], generated, known)
    return out[0] if single else out


def _level_shifted(known: np.ndarray, generated: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The paste with G(z) shifted per channel to the known level around the hole (uint8 HW3)."""
    ring = cv2.dilate(hole.astype(np.uint8), _KERNEL).astype(bool) & ~hole
    offset = np.median(known[ring].astype(np.float32) - generated[ring].astype(np.float32), axis=0)
    shifted = np.clip(generated.astype(np.float32) + offset, 0, 255).round().astype(np.uint8)
    return np.where(hole[..., None], shifted, known)


def _poisson_one(known: np.ndarray, generated: np.ndarray, hole: np.ndarray) -> np.ndarray:
    if not hole.any():
        return known.copy()
    if hole.all():
        return generated.copy()
    base = _level_shifted(known, generated, hole)
    dst = cv2.copyMakeBorder(base, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(np.ascontiguousarray(generated), PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT)
    mask = cv2.copyMakeBorder(hole.astype(np.uint8) * 255, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0)
    mask = cv2.dilate(mask, _KERNEL, iterations=DILATE)
    x, y, w, h = cv2.boundingRect(mask)
    try:
        cloned = cv2.seamlessClone(src, dst, mask, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    except cv2.error:
        return base
    return np.where(hole[..., None], cloned[PAD:-PAD, PAD:-PAD], known)


def poisson(known: np.ndarray, generated: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Poisson blending (module docstring) -> uint8 (N,H,W,3), equal to `known` outside the hole."""
    known, generated, masks, single = _batched(known, generated, masks)
    out = np.stack([_poisson_one(known[i], generated[i], masks[i] >= 128) for i in range(len(known))])
    return out[0] if single else out


def blend(mode: str, known: np.ndarray, generated: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Dispatch on mode ('paste' or 'poisson')."""
    if mode == "paste":
        return paste(known, generated, masks)
    if mode == "poisson":
        return poisson(known, generated, masks)
    raise EdgefillError(f"unknown blend mode {mode!r}; use one of {', '.join(MODES)}")


def anchored(anchor: np.ndarray, samples: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """K samples of each hole moved onto an anchor: out_k = anchor + (samples_k - samples_0) in
    the hole, so sample 0 becomes the anchor exactly and samples k >= 1 keep their differences
    from it. anchor uint8 (N,H,W,3); samples uint8 (N,K,H,W,3); masks uint8 (N,H,W), 255 = fill
    -> uint8 (N,K,H,W,3), equal to `anchor` outside the hole (rounded, clipped to 0..255)."""
    anchor, samples, masks = np.asarray(anchor), np.asarray(samples), np.asarray(masks)
    if samples.ndim != 5 or samples.shape[:1] + samples.shape[2:] != anchor.shape or masks.shape != anchor.shape[:3]:
        raise EdgefillError(f"anchored expects anchor (N,H,W,3), samples (N,K,H,W,3) and masks (N,H,W); got "
                            f"{anchor.shape}, {samples.shape}, {masks.shape}")
    s = samples.astype(np.float32)
    moved = np.clip(np.rint(anchor[:, None].astype(np.float32) + (s - s[:, :1])), 0, 255).astype(np.uint8)
    return np.where((masks >= 128)[:, None, ..., None], moved, anchor[:, None])


MAX_SAMPLE_GAIN = 4.0  # calibrated() enlarges a difference at most this much (hold-out: 99% of gains < 2.9)


def calibrated(anchor: np.ndarray, samples: np.ndarray, masks: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """K samples of each hole placed around an anchor at a chosen distance (docs/samples.md,
    "Session 37"). Sample 0 becomes the anchor. Samples k >= 1 keep their differences from each
    other: each one's difference from their own mean (from sample 0 when K = 2, where that mean
    is the sample itself) is rescaled to an RMS of sizes[i] levels over image i's hole, all
    channels, and added to the anchor. A difference is enlarged at most MAX_SAMPLE_GAIN times,
    so samples the search barely separated (a rounding level apart) stay near the anchor instead
    of becoming amplified rounding noise; a zero difference leaves the sample the anchor.

    anchor uint8 (N,H,W,3); samples uint8 (N,K,H,W,3); masks uint8 (N,H,W), 255 = fill; sizes
    float (N,) >= 0 in 0..255 levels -> uint8 (N,K,H,W,3) RGB, equal to `anchor` outside the hole
    (rounded, clipped to 0..255)."""
    anchor, samples, masks = np.asarray(anchor), np.asarray(samples), np.asarray(masks)
    sizes = np.asarray(sizes, np.float64)
    if samples.ndim != 5 or samples.shape[:1] + samples.shape[2:] != anchor.shape or masks.shape != anchor.shape[:3]:
        raise EdgefillError(f"calibrated expects anchor (N,H,W,3), samples (N,K,H,W,3) and masks (N,H,W); got "
                            f"{anchor.shape}, {samples.shape}, {masks.shape}")
    if sizes.shape != anchor.shape[:1] or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise EdgefillError(f"calibrated expects one finite size >= 0 per image, got shape {sizes.shape}")
    n, k = samples.shape[:2]
    out = np.repeat(anchor[:, None], k, axis=1)
    if k < 2:
        return out
    s = samples.astype(np.float64)
    reference = s[:, :1] if k == 2 else s[:, 1:].mean(axis=1, keepdims=True)
    diff = s[:, 1:] - reference
    hole = (masks >= 128)[:, None, ..., None]
    rms = np.sqrt(np.nan_to_num(hole_mean_square(diff, masks)))  # (N, K-1); 0 without a hole
    gain = np.minimum(sizes[:, None] / np.maximum(rms, 1e-12), MAX_SAMPLE_GAIN)
    moved = np.clip(np.rint(anchor[:, None].astype(np.float64) + gain[..., None, None, None] * diff), 0, 255)
    out[:, 1:] = np.where(hole, moved.astype(np.uint8), anchor[:, None])
    return out
