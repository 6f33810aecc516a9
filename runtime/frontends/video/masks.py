"""The hole of each frame (uint8 (H,W), 255 = fill, or a mask kind for the face crop).

    a kind (center, half, ...)  drawn at 64x64 for the face crop from one seed, the same hole
                                every frame (relative to the crop, so it moves with the face)
    a PNG (or a uint8 array)    one full-frame mask for every frame (the frame's size or aspect;
                                runtime.imaging.preprocess resizes it)
    a mask video                one mask per frame (a pixel is a hole where the frame is > 127 in
                                gray); its length and size must match the source
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...errors import EdgefillError
from ...imaging.images import IMAGE_EXTENSIONS
from ...imaging.masks import MASK_KINDS, read_mask
from ...imaging.preprocess import fit_mask

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


class MaskSource:
    """spec: a kind, a mask image or mask video path, or a uint8 (H,W) array (module docstring). for_frame(index) -> what
    preprocess.prepare takes as its mask: the kind name, or a uint8 (H,W) array."""

    def __init__(self, spec, width: int, height: int, frame_count: int | None):
        self.spec = spec if isinstance(spec, str) else "array"
        self.kind = None
        self.still = None
        self._cap = None
        self._next = 0
        if isinstance(spec, np.ndarray):
            self.still = fit_mask(spec, height, width, source="the mask array")
            return
        spec = str(spec)
        if spec in MASK_KINDS:
            self.kind = spec
            return
        path = Path(spec)
        if not path.is_file():
            raise EdgefillError(f"--mask {spec}: not a mask kind ({', '.join(MASK_KINDS)}) and no such file")
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            self.still = fit_mask(read_mask(path, None), height, width, source=str(path))
            return
        from .sources import quiet_opencv

        with quiet_opencv():
            cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise EdgefillError(f"--mask {spec}: neither a mask image nor a video OpenCV can read")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (w, h) != (width, height):
            cap.release()
            raise EdgefillError(f"--mask video is {w}x{h}, the video is {width}x{height}: they must match")
        if frame_count is not None and n != frame_count:
            cap.release()
            raise EdgefillError(f"--mask video has {n} frames, the video {frame_count}: they must match")
        self._cap = cap

    def for_frame(self, index: int):
        if self.kind is not None:
            return self.kind
        if self.still is not None:
            return self.still
        while self._next <= index:
            ok, img = self._cap.read()
            if not ok:
                raise EdgefillError(f"--mask video ended at frame {self._next}, before the video")
            self._next += 1
            self._last = img
        gray = cv2.cvtColor(self._last, cv2.COLOR_BGR2GRAY)
        return np.where(gray > 127, np.uint8(255), np.uint8(0))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
