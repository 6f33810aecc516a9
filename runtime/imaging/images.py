"""Pre- and post-processing, written once and used by training, export and the runtime.

Image contract at every public boundary: RGB, uint8, HWC. Inside the models images are
float32 NCHW in [-1, 1] (`to_model` / `from_model`). Masks are uint8 HW, 255 = missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import EdgefillError

IMAGE_SIZE = 64
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
# CelebA img_align_celeba: 178x218 (w x h); the usual 64x64 crop is the central 108x108 box.
CELEBA_SHAPE = (218, 178)
CELEBA_BOX = (35, 55, 108, 108)  # x, y, w, h


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any of gray HW / HW1, RGB HW3, RGBA HW4, uint8 or uint16 or float in [0,1] -> RGB uint8 HW3."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise EdgefillError(f"expected an image HxW, HxWx3 or HxWx4, got shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise EdgefillError(f"unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]  # RGBA: drop alpha (the mask says what to fill)
    return np.ascontiguousarray(img)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any image file cv2 understands (8/16-bit, gray, RGB, RGBA) -> RGB uint8 HW3."""
    path = Path(path)
    if not path.is_file():
        raise EdgefillError(f"image not found: {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise EdgefillError(f"not a readable image: {path}")
    if raw.ndim == 3 and raw.shape[2] == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    elif raw.ndim == 3 and raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
    return to_rgb_uint8(raw)


def write_image(path: str | os.PathLike, image_rgb: np.ndarray) -> None:
    """Write RGB uint8 HW3 atomically (format from the extension)."""
    from ..atomic import atomic_path

    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise EdgefillError(f"output must end in one of {', '.join(IMAGE_EXTENSIONS)}: {path}")
    # encoded in memory and written by Python: a full disk is one OSError line (runtime.atomic),
    # not libpng's own message on stderr
    ok, data = cv2.imencode(path.suffix.lower(), cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise EdgefillError(f"could not encode image: {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def square_crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the crop used to make a 64x64 face: CelebA's box, else the centre square."""
    if (height, width) == CELEBA_SHAPE:
        return CELEBA_BOX
    side = min(height, width)
    return ((width - side) // 2, (height - side) // 2, side, side)


def resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize HWC/HW to (width, height): area when shrinking, cubic when growing, or nearest."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)


def face_crop(image_rgb: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Dataset preprocessing: crop (CelebA box or centre square), Lanczos-resize to size x size."""
    x, y, w, h = square_crop_box(*image_rgb.shape[:2])
    crop = image_rgb[y:y + h, x:x + w]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LANCZOS4)


def to_model(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N,H,W,3) or (H,W,3) -> float32 (N,3,H,W) in [-1, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
        raise EdgefillError(f"expected uint8 RGB images (N,H,W,3), got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def from_model(x: np.ndarray) -> np.ndarray:
    """float (N,3,H,W) in [-1, 1] -> uint8 RGB (N,H,W,3), rounded and clipped."""
    arr = np.asarray(x, dtype=np.float32)
    return np.clip((arr.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def known_from_mask(masks: np.ndarray) -> np.ndarray:
    """uint8 masks (N,H,W) or (H,W), 255 = missing -> float32 (N,1,H,W) with 1 on KNOWN pixels."""
    arr = np.asarray(masks)
    if arr.ndim == 2:
        arr = arr[None]
    return (arr < 128).astype(np.float32)[:, None]


REFINER_CHANNELS = (3, 4, 7)


def refiner_input(blended: np.ndarray, masks: np.ndarray, channels: int) -> np.ndarray:
    """The refiner graph's input, for training and the runtime alike: blended uint8 (N,64,64,3)
    RGB, masks uint8 (N,64,64) 255 = fill -> float32 (N,channels,64,64): channels 0-2 the blended
    RGB in [-1,1]; with 4 or 7 channels, channel 3 the hole mask (1 = hole, 0 = known); with 7,
    channels 4-6 OpenCV Telea's fill of the same hole from the same known pixels (RGB in [-1,1];
    runtime.imaging.diffusion), so the refiner sees the search's face and the diffusion fill side
    by side. 3 is the first refiner's input, 4 the refiner that sees the hole."""
    if channels not in REFINER_CHANNELS:
        raise EdgefillError(f"a refiner takes 3, 4 or 7 input channels, not {channels}")
    x = to_model(blended)
    if channels == 3:
        return x
    parts = [x, 1.0 - known_from_mask(masks)]
    if channels == 7:
        from .diffusion import opencv_inpaint

        parts.append(to_model(opencv_inpaint(np.asarray(blended), np.asarray(masks), "telea")))
    return np.concatenate(parts, axis=1).astype(np.float32)
