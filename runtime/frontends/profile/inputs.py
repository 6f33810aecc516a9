"""Deterministic profiling inputs (timing needs no real faces)."""
from __future__ import annotations

import numpy as np


def make_inputs(batch: int, mask: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images: seeded smooth noise, uint8 (b,64,64,3) RGB; masks: uint8 (b,64,64) of kind `mask`
    (image i's mask drawn from default_rng([seed, i]))."""
    import cv2

    from ...imaging.masks import resolve_mask

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(batch, 8, 8, 3), dtype=np.uint8)
    images = np.stack([cv2.resize(s, (64, 64), interpolation=cv2.INTER_CUBIC) for s in small])
    masks = np.stack([resolve_mask(mask, np.random.default_rng([seed, i])) for i in range(batch)])
    return images, masks
