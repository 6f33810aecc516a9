"""Video sources: where frames come from. Frames are RGB uint8 (H,W,3) (OpenCV decodes BGR; it is
converted here, once).

open_source(spec, realtime=False) -> Source
    spec: a camera index ("0"), a stream URL ("rtsp://...", "http://..."), an image-sequence
    pattern ("frames/%04d.png"), or a video file. A file is read frame by frame, nothing dropped;
    with realtime=True it is paced at its own fps like a live source. A live source (camera,
    URL, or a paced file) is read by a thread that keeps only the NEWEST frame: a consumer that
    falls behind gets the latest frame and the frames it never saw are counted as dropped. That
    thread starts at the first read() (the clock of a paced file starts there), so loading the
    model drops nothing.
Source.read() -> Frame | None (None: the end). Frame: index (position in the source), t
(seconds since the source started), image RGB uint8 (H,W,3), read_at (perf_counter when its
decode began: where a frame's end-to-end latency starts, also for a live source whose reader
thread decoded it before anyone asked), decode_s.

A source that breaks mid-stream raises SourceError (the caller keeps the frames done): a frame of
another size than the first, or a file that ends well short of the frame count its header
announces (truncated or damaged: more than TRUNCATED_SHORT_BY of it missing and at least
TRUNCATED_MIN_FRAMES frames; headers are estimates: no_face.mp4 announces 98 frames and decodes
95, a file cut in half decodes half).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...errors import EdgefillError


TRUNCATED_SHORT_BY = 0.05
TRUNCATED_MIN_FRAMES = 4


class SourceError(EdgefillError):
    """The source broke after its first frames (module docstring); the message is one line."""


@dataclass
class Frame:
    index: int
    t: float
    image: np.ndarray
    read_at: float = 0.0   # time.perf_counter() when its decode began (the start of its end-to-end latency)
    decode_s: float = 0.0  # its decode (+ BGR -> RGB) took this long


def _kind(spec: str) -> str:
    if spec.isdigit():
        return "camera"
    if "://" in spec:
        return "url"
    if "%" in spec:
        return "sequence"
    return "file"


@contextlib.contextmanager
def quiet_opencv():
    """OpenCV's video backends print their own complaints to stderr from native code ("moov atom
    not found", "can't open camera by index", "tag ... is not found"); edgefill reports one line
    of its own instead. Silences file descriptor 2 while a capture or writer opens."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Source:
    """One opened source (module docstring). Attributes: spec, kind, fps (float), width, height,
    frame_count (int, or None when unknown/live), live (bool), dropped (frames never handed out)."""

    def __init__(self, spec: str, realtime: bool = False, fallback_fps: float = 25.0):
        self.spec = str(spec)
        self.kind = _kind(self.spec)
        if self.kind == "file" and not Path(self.spec).is_file():
            raise EdgefillError(f"video not found: {self.spec}")
        with quiet_opencv():
            if self.kind == "camera":
                cap = cv2.VideoCapture(int(self.spec))
            elif self.kind == "sequence":
                cap = cv2.VideoCapture(self.spec, cv2.CAP_IMAGES)
            else:
                cap = cv2.VideoCapture(self.spec)
            opened = cap.isOpened()
            ok, first = cap.read() if opened else (False, None)
        if not opened:
            what = {"camera": "camera", "url": "stream", "sequence": "image sequence", "file": "video"}[self.kind]
            raise EdgefillError(f"cannot open {what} {self.spec}" + (": not a video OpenCV can read, or it has no frames"
                                                                       if self.kind == "file" else ""))
        self._cap = cap
        if not ok or first is None:
            cap.release()
            raise EdgefillError(f"{self.spec} has no frames" if self.kind in ("file", "sequence") else
                                f"{self.kind} {self.spec} opened but gave no frame")
        self._first = first
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else fallback_fps
        self.height, self.width = first.shape[:2]
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.live = self.kind in ("camera", "url") or realtime
        self.frame_count = count if count > 0 and self.kind in ("file", "sequence") else None
        self.dropped = 0
        self._next_index = 0
        self._start = time.perf_counter()
        self._latest: Frame | None = None
        self._ended = False
        self._error: SourceError | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = None  # a live source's reader starts at the first read(), when the consumer is ready

    def _decode(self) -> np.ndarray | None:
        if self._first is not None:
            img, self._first = self._first, None
            return img
        ok, img = self._cap.read()
        return img if ok else None

    def _read_direct(self) -> Frame | None:
        t0 = time.perf_counter()
        img = self._decode()
        if img is None:
            missing = (self.frame_count or 0) - self._next_index
            if self.kind == "file" and missing >= max(TRUNCATED_MIN_FRAMES, TRUNCATED_SHORT_BY * self.frame_count):
                raise SourceError(f"{self.spec} ended after {self._next_index} of the {self.frame_count} frames its "
                                  "header announces: the file is truncated or damaged")
            return None
        if img.shape[:2] != (self.height, self.width):
            raise SourceError(f"frame {self._next_index} of {self.spec} is {img.shape[1]}x{img.shape[0]}, the first "
                              f"was {self.width}x{self.height}: a video must keep one frame size")
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        t1 = time.perf_counter()
        frame = Frame(self._next_index, t1 - self._start, rgb, read_at=t0, decode_s=t1 - t0)
        self._next_index += 1
        return frame

    def _pump(self) -> None:
        """Live reading: decode continuously (a file paced at its fps), keep the newest frame."""
        paced = self.kind in ("file", "sequence")
        while not self._stop:
            if paced:
                due = self._start + self._next_index / self.fps
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            try:
                frame = self._read_direct()
            except SourceError as exc:
                frame, self._error = None, exc
            with self._cond:
                if frame is None:
                    self._ended = True
                    self._cond.notify_all()
                    return
                if self._latest is not None:
                    self.dropped += 1  # overwritten before anyone took it
                self._latest = frame
                self._cond.notify_all()

    def read(self) -> Frame | None:
        """The next frame (file) or the newest frame (live); None at the end."""
        if not self.live:
            return self._read_direct()
        if self._thread is None:
            self._start = time.perf_counter()
            self._thread = threading.Thread(target=self._pump, name="edgefill-video-reader", daemon=True)
            self._thread.start()
        with self._cond:
            while self._latest is None and not self._ended:
                self._cond.wait(0.5)
            frame, self._latest = self._latest, None
            if frame is None and self._error is not None:
                raise self._error
            return frame

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._cap.release()


def open_source(spec: str, realtime: bool = False) -> Source:
    return Source(spec, realtime=realtime)
