"""The face region of each frame: a fixed --box, or a detected face shaped like the model's crops.

Detection: OpenCV 4.x's Haar frontal-face cascade (ships with opencv-python-headless<5, nothing to
download) on a frame downscaled to `detect_width` pixels, every `detect_every` frames (the box is
carried between detections). Of several faces, the one nearest the current track (else the
largest) is followed.

Crop geometry: the model was trained on CelebA's aligned 108x108 crops. Measured on the training
hold-out (366 of 400 faces detected, faces upscaled to 256 px and padded): the crop's centre sits
CROP_DY = 0.142 face-widths ABOVE the Haar box's centre, horizontally centred (dx 0.002), and its
side is CROP_SIDE = 1.053 face-widths (medians). The square is clipped to the frame.

Smoothing: centre and side follow the detections with an exponential moving average (`smooth`,
the weight of the new detection), so the crop does not jump with the detector's jitter. A
detection farther than `jump` box-sides from the track, or the first one after the face was lost,
restarts the track (`Region.restarted` = True: the temporal state resets). After `lost_after`
consecutive detections without a face the track ends: frames pass through untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...errors import EdgefillError

CROP_DY = 0.142
CROP_SIDE = 1.053


@dataclass
class Region:
    """box: (x, y, w, h) ints inside the frame, or None (no face: pass the frame through);
    restarted: the track (re)started at this frame (a new face, a jump, or the first frame)."""

    box: tuple[int, int, int, int] | None
    restarted: bool


def crop_from_face(face: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """Haar box (x, y, w, h) -> the CelebA-shaped square as (centre x, centre y, side)."""
    x, y, w, h = face
    return x + w / 2, y + h / 2 - CROP_DY * w, CROP_SIDE * w


def square_box(cx: float, cy: float, side: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """A square around (cx, cy), shifted (not shrunk) to stay inside the frame where it fits."""
    s = int(round(min(side, width, height)))
    if s < 8:
        return None
    x = int(round(min(max(cx - s / 2, 0), width - s)))
    y = int(round(min(max(cy - s / 2, 0), height - s)))
    return x, y, s, s


class FixedRegion:
    """--box x,y,w,h: the same region every frame (checked against the frame size once)."""

    def __init__(self, box: tuple[int, int, int, int], width: int, height: int):
        x, y, w, h = box
        if w < 4 or h < 4 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise EdgefillError(f"--box {x},{y},{w},{h} is not inside the {width}x{height} frame")
        self.box = box
        self._first = True

    def __call__(self, index: int, image: np.ndarray) -> Region:
        restarted, self._first = self._first, False
        return Region(self.box, restarted)


class FaceTracker:
    """--face auto (module docstring). Call with (frame index, RGB frame) in order."""

    def __init__(self, detect_every: int = 3, detect_width: int = 320, smooth: float = 0.3, jump: float = 0.5,
                 lost_after: int = 3, min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5):
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise EdgefillError("--face auto needs OpenCV 4.x with its Haar cascades (opencv-python-headless<5)")
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise EdgefillError("the Haar frontal-face cascade did not load")
        self.detect_every, self.detect_width = max(1, detect_every), detect_width
        self.smooth, self.jump, self.lost_after = smooth, jump, lost_after
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors
        self.track: np.ndarray | None = None  # (cx, cy, side)
        self.misses = 0
        self.detections = 0

    def detect(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Haar faces (x, y, w, h) in full-frame pixels, found on a downscaled, equalised copy."""
        h, w = image.shape[:2]
        scale = min(1.0, self.detect_width / w)
        small = cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        found = self.cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors,
                                              minSize=(self.min_face, self.min_face))
        self.detections += 1
        return [tuple(float(v) / scale for v in f) for f in found]

    def __call__(self, index: int, image: np.ndarray) -> Region:
        height, width = image.shape[:2]
        restarted = False
        if self.track is None or index % self.detect_every == 0:
            faces = self.detect(image)
            if faces:
                crops = [np.array(crop_from_face(f)) for f in faces]
                if self.track is None:
                    new = max(crops, key=lambda c: c[2])
                else:
                    new = min(crops, key=lambda c: np.hypot(*(c[:2] - self.track[:2])))
                if self.track is None or np.hypot(*(new[:2] - self.track[:2])) > self.jump * self.track[2]:
                    self.track, restarted = new, True
                else:
                    self.track = (1 - self.smooth) * self.track + self.smooth * new
                self.misses = 0
            elif self.track is not None:
                self.misses += 1
                if self.misses >= self.lost_after:
                    self.track = None
        if self.track is None:
            return Region(None, False)
        box = square_box(*self.track, width, height)
        return Region(box, restarted if box is not None else False)
