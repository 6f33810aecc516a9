"""Training data: loading (the runtime's one loader, edgefill.runtime.datasets), the validation
split, and deterministic per-epoch batches with horizontal-flip augmentation.

--data is an .npz with `images` uint8 (N,64,64,3) RGB, or a folder of image files (CelebA's
img_align_celeba gets its usual central 108x108 crop, other images a centre square).
"""
from __future__ import annotations

import numpy as np

from edgefill.runtime.imaging.datasets import FaceData, load_faces

__all__ = ["FaceData", "load_faces", "split_validation", "epoch_batches", "batch_to_model", "steps_per_epoch"]
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.images import to_model


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train_idx, val_idx) split; fraction 0 gives an empty validation set."""
    if not 0.0 <= fraction < 1.0:
        raise EdgefillError(f"validation fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, flip: bool):
    """Deterministic per-epoch order and flips: yields (indices, flip_flags) per full batch.

    Derived from (seed, epoch) alone, so a run resumed mid-epoch sees the same batches."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        yield idx, flips[start:start + batch_size]


def batch_to_model(images: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """uint8 (B,64,64,3) + flip flags (B,) -> float32 (B,3,64,64) in [-1,1], flipped left-right."""
    x = to_model(images)
    if flips.any():
        x[flips] = x[flips][..., ::-1]
    return x


def steps_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size
