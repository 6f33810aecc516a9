"""Training data: an .npz with `images` uint8 (N,64,64,3) RGB, or a folder of image files.

Folders: CelebA's img_align_celeba (178x218) gets the usual central 108x108 crop; any other
image is centre-cropped to a square; both are Lanczos-resized to 64x64 (runtime.images.face_crop).
Unreadable files are skipped and counted, never fatal; an empty or wrongly shaped source is one
EdgefillError.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.images import IMAGE_EXTENSIONS, IMAGE_SIZE, face_crop, read_image, to_model


@dataclass
class FaceData:
    """images: uint8 (N,64,64,3) RGB; skipped: files that could not be read; source: the path."""

    images: np.ndarray
    skipped: int
    source: str


def load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path) as archive:
            if "images" not in archive.files:
                raise EdgefillError(f"{path}: no `images` array (found: {', '.join(archive.files) or 'none'})")
            images = archive["images"]
    except EdgefillError:
        raise
    except Exception as exc:  # zipfile/pickle/format errors from a damaged file
        raise EdgefillError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise EdgefillError(f"{path}: `images` must be uint8 (N,{IMAGE_SIZE},{IMAGE_SIZE},3), "
                            f"got {images.dtype} {images.shape}")
    return images


def load_folder(path: Path, progress: bool = True) -> tuple[np.ndarray, int]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise EdgefillError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    from tqdm import tqdm

    images, skipped = [], 0
    for f in tqdm(files, desc="loading images", unit="img", disable=not progress or len(files) < 500):
        try:
            images.append(face_crop(read_image(f)))
        except EdgefillError:
            skipped += 1
    if not images:
        raise EdgefillError(f"{path}: none of the {len(files)} image files could be read")
    return np.stack(images), skipped


def load_faces(path: str | os.PathLike, limit: int = 0, progress: bool = True) -> FaceData:
    """Load a face dataset from an .npz or a folder; `limit` > 0 keeps the first `limit` images."""
    p = Path(path)
    if not p.exists():
        raise EdgefillError(f"data not found: {p}")
    if p.is_dir():
        images, skipped = load_folder(p, progress)
    elif p.suffix.lower() == ".npz":
        images, skipped = load_npz(p), 0
    else:
        raise EdgefillError(f"{p}: --data takes a folder of images or an .npz file")
    if len(images) == 0:
        raise EdgefillError(f"{p}: the dataset is empty")
    if limit > 0:
        images = images[:limit]
    return FaceData(images=np.ascontiguousarray(images), skipped=skipped, source=str(p))


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
