"""VideoInpainter: one frame in, one frame out, with the temporal state (for your own loop).

    from edgefill.runtime.frontends.video.api import VideoInpainter

    vi = VideoInpainter(width=640, height=360, mask="center", face="auto")
    for frame in my_rgb_frames:                  # RGB uint8 (H,W,3), in order
        out, info = vi.process(frame)            # out: RGB uint8 (H,W,3); info: face, box, steps_run, ...

Per frame: the face region (runtime.frontends.video.faces), the hole (video.masks), the 64x64
problem (imaging.preprocess.prepare), the pipeline (core.pipeline.Pipeline.run: start from the
previous frame's z, search within the frame budget, blend, refiner), optional smoothing
(video.temporal), and paste_back (only the hole's pixels change). A frame without a face is
returned as is (the same array).
"""
from __future__ import annotations

import time

import numpy as np

from ...core.pipeline import Pipeline
from ...errors import EdgefillError
from ...imaging.preprocess import paste_back, prepare
from .faces import FaceTracker, FixedRegion
from .masks import MaskSource
from .temporal import TemporalState

VIDEO_STEPS = 2  # chosen on single_face.mp4: 2 and 4 steps gave the same hole PSNR and flicker
VIDEO_SMOOTH = 0.6  # ditto: flicker ratio 1.33 -> 0.97 at no quality cost (0.5: 1.02, 0.7: 0.94)


class VideoInpainter:
    """width, height: the frames' size. mask: a kind, a mask image or a mask video path. box:
    (x,y,w,h) fixed region, or face="auto" for detection (one of the two). steps: search steps
    per frame (default VIDEO_STEPS = 2: each frame starts near its answer, from the previous frame's
    z, and real time leaves ~40 ms a frame on a 2-core CPU). frame_budget_ms: each frame's
    search stops when the frame has taken this long. init: the start of a (re)started track
    (auto | random | encoder). previous: start from the previous frame's z. smooth: result
    smoothing weight (0 = off). box_smoothing: weight of a new detection (1.0 = the raw box).
    detect_every: detect every N frames. pipeline: share one (default: a new one on `bundle`)."""

    def __init__(self, width: int, height: int, mask="center", *, box=None, face: str | None = "auto",
                 steps: int | None = None, frame_budget_ms: float | None = None, init: str | None = None,
                 previous: bool = True, smooth: float = VIDEO_SMOOTH, box_smoothing: float = 0.3, detect_every: int = 3,
                 seed: int = 0, refine: bool = True, frame_count: int | None = None, bundle=None,
                 provider: str | None = None, threads: int | None = None, pipeline: Pipeline | None = None):
        if (box is None) == (face is None):
            raise EdgefillError("give --box x,y,w,h or --face auto (one of the two)")
        if face is not None and face != "auto":
            raise EdgefillError(f"--face takes 'auto', got {face!r}")
        if frame_budget_ms is not None and frame_budget_ms <= 0:
            raise EdgefillError("--frame-budget-ms must be positive")
        self.pipeline = pipeline or Pipeline(bundle, provider=provider, threads=threads)
        self.region = FixedRegion(tuple(box), width, height) if box is not None else \
            FaceTracker(detect_every=detect_every, smooth=box_smoothing)
        self.masks = mask if isinstance(mask, MaskSource) else MaskSource(str(mask), width, height, frame_count)
        first = self.pipeline.make_start(init)
        self.config = self.pipeline.config(steps=steps or VIDEO_STEPS, restarts=1,
                                           start="given" if previous else first.name)
        self.temporal = TemporalState(first, previous=previous, smooth=smooth)
        self.budget = frame_budget_ms
        self.seed, self.refine = seed, refine
        self.index = 0

    def process(self, frame: np.ndarray, index: int | None = None) -> tuple[np.ndarray, dict]:
        """RGB uint8 (H,W,3) -> (the frame with its hole filled, info). info: face (bool), box,
        restarted, start, steps_run, loss, detect_s, inpaint_s, mask (uint8 (H,W) full-frame hole,
        None without a face)."""
        t0 = time.perf_counter()
        index = self.index if index is None else index
        self.index = index + 1
        region = self.region(index, frame)
        t1 = time.perf_counter()
        info = {"index": index, "face": region.box is not None, "box": region.box, "restarted": region.restarted,
                "detect_s": t1 - t0, "inpaint_s": 0.0, "steps_run": 0, "loss": None, "start": None, "mask": None}
        if region.box is None:
            self.temporal.reset()
            return frame, info
        prep = prepare(frame, self.masks.for_frame(index), region.box, rng=np.random.default_rng(self.seed))
        info["mask"] = prep.mask
        if not prep.has_hole:
            info["inpaint_s"] = time.perf_counter() - t1
            return frame, info
        start = self.temporal.start(region.restarted)
        budget = None
        if self.budget is not None:
            budget = max(1.0, self.budget - (time.perf_counter() - t0) * 1000.0)
        batch = self.pipeline.run(prep.image64[None], prep.mask64[None], self.config, start=start, seeds=[self.seed],
                                  time_budget_ms=budget, refine=self.refine)
        result64 = self.temporal.update(batch.search.z[0], batch.final[0], prep.mask64)
        out = paste_back(prep, result64)
        info.update(inpaint_s=time.perf_counter() - t1, steps_run=int(batch.search.steps_run),
                    loss=float(batch.search.loss[0]), start=start.name)
        return out, info

    def close(self) -> None:
        self.masks.close()
