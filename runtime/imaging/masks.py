"""Hole masks and the contextual-loss importance weights.

A mask is uint8 HxW with 255 = missing (to fill) and 0 = known. Mask kinds (DESIGN section 1):
`center`, `random-box`, `pattern`, `random`, `half` (`half-left`, `half-right` fix the side),
`free-form`, or a path to a mask image (white = fill, resized with nearest neighbour).
All random kinds draw from the `np.random.Generator` they are given, so a seed fixes them.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import EdgefillError

MASK_KINDS = ("center", "random-box", "pattern", "random", "half", "half-left", "half-right", "free-form")
TRAINING_MASK_KINDS = ("center", "random-box", "pattern", "random", "half", "free-form")
FILL = 255
HOLE_GREY = 128  # what a method sees in the hole of a problem whose truth is known (masked_input)
IMPORTANCE_WINDOW = 7


def center_mask(size: int = 64) -> np.ndarray:
    """The central box of half the side (32x32 of 64x64: 25% missing)."""
    m = np.zeros((size, size), np.uint8)
    q = size // 4
    m[q:size - q, q:size - q] = FILL
    return m


def random_box_mask(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One axis-aligned box, sides uniform in [size/4, size/2], anywhere inside the image."""
    m = np.zeros((size, size), np.uint8)
    h, w = rng.integers(size // 4, size // 2 + 1, size=2)
    y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    m[y:y + h, x:x + w] = FILL
    return m


def pattern_mask(rng: np.random.Generator, size: int = 64, fraction: float = 0.25) -> np.ndarray:
    """Yeh et al.'s random pattern: smooth random blobs covering `fraction` of the image.

    Low-resolution noise upsampled bicubically, thresholded at its (1 - fraction) quantile.
    """
    noise = rng.random((size // 8 + 1, size // 8 + 1)).astype(np.float32)
    field = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    thresh = np.quantile(field, 1.0 - fraction)
    return np.where(field > thresh, FILL, 0).astype(np.uint8)


def random_pixels_mask(rng: np.random.Generator, size: int = 64, fraction: float = 0.8) -> np.ndarray:
    """Each pixel missing independently with probability `fraction` (80% by default)."""
    return np.where(rng.random((size, size)) < fraction, FILL, 0).astype(np.uint8)


def half_mask(side: str, size: int = 64) -> np.ndarray:
    """`left` or `right` half missing."""
    m = np.zeros((size, size), np.uint8)
    if side == "left":
        m[:, : size // 2] = FILL
    elif side == "right":
        m[:, size // 2:] = FILL
    else:
        raise EdgefillError(f"half mask side must be left or right, got {side!r}")
    return m


def free_form_mask(rng: np.random.Generator, size: int = 64, strokes: tuple[int, int] = (2, 5)) -> np.ndarray:
    """Brush strokes: random walks of thick line segments (about 10-35% missing)."""
    m = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        x, y = (int(v) for v in rng.integers(0, size, size=2))
        width = int(rng.integers(max(2, size // 16), max(3, size // 8) + 1))
        for _ in range(int(rng.integers(2, 6))):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(size / 8, size / 3)
            nx = int(np.clip(x + length * np.cos(angle), 0, size - 1))
            ny = int(np.clip(y + length * np.sin(angle), 0, size - 1))
            cv2.line(m, (x, y), (nx, ny), FILL, width)
            x, y = nx, ny
    return m


def read_mask(path: str | os.PathLike, size: tuple[int, int] | None) -> np.ndarray:
    """A mask image (any mode; white/bright = fill) resized with nearest to size=(width, height);
    size None keeps the file's own size."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise EdgefillError(f"not a readable mask image: {path}")
    if raw.ndim == 3:
        raw = raw[:, :, 3] if raw.shape[2] == 4 and raw[:, :, :3].max() == 0 else raw[:, :, :3].max(axis=2)
    if raw.dtype == np.uint16:
        raw = (raw // 257).astype(np.uint8)
    mask = np.where(raw > 127, FILL, 0).astype(np.uint8)
    if size is not None and mask.shape != (size[1], size[0]):
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return mask


def make_mask(kind: str, rng: np.random.Generator | None = None, size: int = 64) -> np.ndarray:
    """Make one mask of a named kind (see module docstring); rng defaults to a fixed seed 0."""
    rng = rng if rng is not None else np.random.default_rng(0)
    if kind == "center":
        return center_mask(size)
    if kind == "random-box":
        return random_box_mask(rng, size)
    if kind == "pattern":
        return pattern_mask(rng, size)
    if kind == "random":
        return random_pixels_mask(rng, size)
    if kind == "half":
        return half_mask("left" if rng.random() < 0.5 else "right", size)
    if kind in ("half-left", "half-right"):
        return half_mask(kind.split("-")[1], size)
    if kind == "free-form":
        return free_form_mask(rng, size)
    raise EdgefillError(f"unknown mask kind {kind!r}; use one of {', '.join(MASK_KINDS)} or a mask image path")


def resolve_mask(spec: str, rng: np.random.Generator | None = None, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """A mask kind name or a path to a mask image -> uint8 mask of size=(width, height)."""
    if spec in MASK_KINDS:
        mask = make_mask(spec, rng, 64)
        return mask if size == (64, 64) else cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    if Path(spec).is_file():
        return read_mask(spec, size)
    raise EdgefillError(f"--mask {spec!r} is neither a mask kind ({', '.join(MASK_KINDS)}) nor an existing file")


def masked_input(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """RGB uint8 images (N,H,W,3) or (H,W,3), uint8 masks (N,H,W) or (H,W) with 255 = fill -> uint8
    images with the hole (mask >= 128) set to HOLE_GREY: all a method may see of a face whose
    truth is known (evaluate, profile, the refiner's training completions, pictures of the input)."""
    return np.where((np.asarray(masks) >= 128)[..., None], np.uint8(HOLE_GREY), images).astype(np.uint8, copy=False)


def importance_weights(masks: np.ndarray, window: int = IMPORTANCE_WINDOW) -> np.ndarray:
    """Yeh et al.'s contextual weights: uint8 masks (N,H,W) or (H,W), 255 = missing ->
    float32 (N,1,H,W).

    For a known pixel: the fraction of unknown pixels in its window x window neighbourhood
    (pixels outside the image count as known, the denominator is always window**2);
    0 on unknown pixels.
    """
    arr = np.asarray(masks)
    if arr.ndim == 2:
        arr = arr[None]
    unknown = (arr >= 128).astype(np.float32)
    r = window // 2
    padded = np.pad(unknown, ((0, 0), (r + 1, r), (r + 1, r)))
    summed = padded.cumsum(axis=1).cumsum(axis=2)
    box = (summed[:, window:, window:] - summed[:, :-window, window:]
           - summed[:, window:, :-window] + summed[:, :-window, :-window])
    weights = box / np.float32(window * window) * (1.0 - unknown)
    return weights[:, None].astype(np.float32)
