"""Temporal state between frames: where the next search starts, and optional result smoothing.

Start: a frame whose track continues starts its search from the previous frame's best z
(runtime.core.starts.GivenStart; the backends reset Adam's moments for every search). A frame
whose track (re)started (the first face, a jump, a face that came back) starts from the bundle's
encoder, or random without one (`first` start). Without `previous`, every frame uses `first`
(independent per-frame inpainting, the baseline flicker is measured against).

Smoothing (`smooth` in [0,1), 0 = off): the 64x64 result blends with the previous frame's,
out_t = (1 - smooth) * out_t + smooth * out_{t-1}, only inside the hole (the known pixels are
pasted back from the frame anyway) and only while the track continues.
"""
from __future__ import annotations

import numpy as np

from ...core.starts import GivenStart


class TemporalState:
    def __init__(self, first_start, previous: bool = True, smooth: float = 0.0):
        self.first_start = first_start
        self.previous = previous
        self.smooth = float(smooth)
        self.z: np.ndarray | None = None
        self.result: np.ndarray | None = None
        self.restarts = 0

    def reset(self) -> None:
        self.z, self.result = None, None

    def start(self, restarted: bool):
        """The Start for this frame's search."""
        if restarted:
            self.reset()
        if self.previous and self.z is not None:
            return GivenStart(self.z)
        self.restarts += 1
        return self.first_start

    def update(self, z: np.ndarray, result64: np.ndarray, mask64: np.ndarray) -> np.ndarray:
        """Record the frame's best z (1, z_dim) and return its (smoothed) 64x64 RGB result."""
        self.z = np.asarray(z, np.float32).reshape(1, -1)
        return self.smoothed(result64, mask64)

    def smoothed(self, result64: np.ndarray, mask64: np.ndarray) -> np.ndarray:
        """The frame's 64x64 RGB result smoothed with the previous one in the hole (uint8
        (64,64,3), mask (64,64) 255 = fill), recorded for the next frame; z is left as it was."""
        out = result64
        if self.smooth > 0 and self.result is not None:
            hole = (mask64 >= 128)[..., None]
            mixed = (1 - self.smooth) * result64.astype(np.float32) + self.smooth * self.result.astype(np.float32)
            out = np.where(hole, np.clip(np.rint(mixed), 0, 255).astype(np.uint8), result64)
        self.result = out
        return out
