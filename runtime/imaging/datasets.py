"""Face datasets for the runtime (numpy + OpenCV only): an .npz with `images` uint8 (N,64,64,3)
RGB, or a folder of image files.

Folders: CelebA's img_align_celeba (178x218) gets the usual central 108x108 crop; any other
image is centre-cropped to a square; both are Lanczos-resized to 64x64 (images.face_crop).
Files are read in sorted path order (recursively), so a folder always gives the same array.
Unreadable files are skipped and counted, never fatal; a missing, empty, damaged or wrongly
shaped source is one EdgefillError.

This is the one loader: `edgefill evaluate` uses it, and training can call it too (the
runtime never imports edgefill.train).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgefillError
from .images import IMAGE_EXTENSIONS, IMAGE_SIZE, face_crop, read_image


@dataclass
class FaceData:
    """images: uint8 (N,64,64,3) RGB; skipped: files that could not be read; source: the path."""

    images: np.ndarray
    skipped: int
    source: str

    def sha256(self) -> str:
        """sha256 of images.tobytes() (C order): identifies exactly the pixels evaluated."""
        return images_sha256(self.images)


def images_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def load_npz(path: Path) -> np.ndarray:
    """The `images` array of an .npz, checked to be uint8 (N,64,64,3)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                raise EdgefillError(f"{path}: no `images` array (found: {', '.join(archive.files) or 'none'})")
            images = archive["images"]
    except EdgefillError:
        raise
    except Exception as exc:  # zipfile/format errors from a damaged or foreign file
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise EdgefillError(f"{path}: not a readable .npz ({type(exc).__name__}: {msg})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise EdgefillError(f"{path}: `images` must be uint8 (N,{IMAGE_SIZE},{IMAGE_SIZE},3), "
                            f"got {images.dtype} {images.shape}")
    return images


def list_image_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def load_folder(path: Path, progress: bool = True, limit: int = 0) -> tuple[np.ndarray, int]:
    """Face-crop every readable image under `path` (sorted) -> (uint8 (N,64,64,3), skipped).
    `limit` > 0 stops after that many readable images."""
    files = list_image_files(path)
    if not files:
        raise EdgefillError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    from tqdm import tqdm

    images, skipped = [], 0
    for f in tqdm(files, desc="loading images", unit="img", disable=not progress or len(files) < 500):
        try:
            images.append(face_crop(read_image(f)))
        except EdgefillError:
            skipped += 1
        if limit > 0 and len(images) >= limit:
            break
    if not images:
        raise EdgefillError(f"{path}: none of the {len(files)} image files could be read")
    return np.stack(images), skipped


def load_faces(path: str | os.PathLike, limit: int = 0, progress: bool = True) -> FaceData:
    """Load a face dataset from an .npz or a folder; `limit` > 0 keeps the first `limit` images."""
    p = Path(path)
    if not p.exists():
        raise EdgefillError(f"data not found: {p}")
    if p.is_dir():
        images, skipped = load_folder(p, progress, limit)
    elif p.suffix.lower() == ".npz":
        images, skipped = load_npz(p), 0
    else:
        raise EdgefillError(f"{p}: --data takes a folder of images or an .npz file")
    if len(images) == 0:
        raise EdgefillError(f"{p}: the dataset is empty")
    if limit > 0:
        images = images[:limit]
    return FaceData(images=np.ascontiguousarray(images), skipped=skipped, source=str(p))
