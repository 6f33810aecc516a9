"""The Python API for video: frames in, processed frames out, with the temporal state (for people
embedding edgefill in their own loop). Frames are RGB uint8 (H,W,3) everywhere (convert OpenCV's
BGR yourself, or use inpaint_video, which reads with runtime.frontends.video.sources).

    from edgefill.runtime.frontends.video.api import VideoInpainter, inpaint_frames, inpaint_video

    for out, info in inpaint_video("clip.mp4", mask="center", face="auto"):   # a generator
        ...                                       # out: RGB uint8 (H,W,3); info: index, face, box, ...
    for out, info in inpaint_frames(my_rgb_frames, mask="center", box=(200, 80, 180, 180)):
        ...                                       # any iterable of RGB frames of one size, in order
    vi = VideoInpainter(640, 360, "center", face="auto")       # or step by step
    out, info = vi.process(frame)

Per frame: the face region (video.faces: a fixed box; or, with face="auto", the bundle's BlazeFace
detector's landmarks mapped onto the eye-aligned geometry of the training crops by a similarity
transform (video.align, AlignedTracker), or OpenCV's Haar box where the bundle has no detector;
detection every few frames, optical flow in between, smoothed), the hole (video.masks), the 64x64
problem (imaging.preprocess.prepare, or align.warp_in), the pipeline (core.pipeline.Pipeline.run:
start from the previous frame's z, search within the frame budget, blend, the refiner), result
smoothing (video.temporal), and the way back (paste_back, or align.paste_aligned: the hole and a
feathered band around it). A frame without a face is returned as is (the same array object).

Defaults for video (chosen on single_face.mp4 and face_noface.mov, never on the benchmark clip):
VIDEO_STEPS = 2 search steps per frame from the previous frame's z (2 and 4 steps gave the same hole
PSNR and flicker); VIDEO_SMOOTH = 0.6 result smoothing; VIDEO_BOX_SMOOTHING = 0.15 (with the flow
following the face between detections, a heavier smoothing of the detections costs no lag: flicker
ratio 1.24 -> 1.00 on single_face.mp4); VIDEO_REFINE = True: the bundle's refiner (the one that
sees the hole) raised hole PSNR and SSIM and lowered flicker on both clips (docs/video.md);
`refine=False` (`--no-refine`) turns it off. VIDEO_BLEND = "poisson": the 64x64 result is
Poisson-blended into the crop's known pixels (its colours meet the frame's at the hole's edge) before
the refiner: +0.33 dB hole PSNR on single_face.mp4 and +0.36 dB on face_noface.mov, ~2 ms a face;
`blend="paste"` (`--blend paste`) pastes. detector="auto": BlazeFace when the bundle has it.
VIDEO_FLIP_AVERAGE = False: the refiner runs once per face, not averaged with its mirror image as
the bundle's default is for still images: on the tuning clips the average lost hole PSNR (25.86 ->
25.72 dB on single_face.mp4, 25.82 -> 25.72 on face_noface.mov; SSIM +0.0005, flicker a little
lower) and cost a quarter of the frame rate; `flip_average=True` (`--flip-average`) turns it on.

Graceful degradation (aligned crops): a face turned too far (|align.turn| > FALLBACK_YAW) or too
far out of the frame (align.outside_fraction > FALLBACK_OUTSIDE) gets OpenCV Telea (radius 3) of its
hole in the aligned crop, pasted back the same way, instead of the GAN fill; its track goes on and
its z is not updated that frame (the next frontal frame starts from the last searched z). info
"fallback" says which faces fell back and why; `edgefill video` counts them (faces_fallback).

fill="telea" (`--fill telea`) takes the hole's first fill from OpenCV Telea (radius 3) in the 64x64
crop instead of the latent search, then runs the same refiner and temporal smoothing: on video what
`edgefill evaluate` calls telea+refiner, so what the search adds stays in view (with a bundle whose
refiner was trained on Telea's fills, the strong baseline). FILLS lists the choices.
"""
from __future__ import annotations

import time
from typing import Iterable, Iterator

import numpy as np

from ...core.pipeline import Pipeline
from ...errors import EdgefillError
from ...imaging.preprocess import parse_box, paste_back, prepare
from . import align
from .faces import AlignedTracker, FaceTracker, FixedRegion, MultiFaceTracker, Region
from .masks import MaskSource
from .temporal import TemporalState

VIDEO_STEPS = 2
VIDEO_SMOOTH = 0.6
VIDEO_BOX_SMOOTHING = 0.15
VIDEO_DETECT_EVERY = 3
VIDEO_REFINE = True
VIDEO_BLEND = "poisson"
VIDEO_FLIP_AVERAGE = False
# Graceful degradation (aligned crops only: the Haar box and --box have no landmarks): a face turned
# further than FALLBACK_YAW (align.turn: the nose tip's offset from the eyes' midpoint over the eye
# distance, ~0.5 tan(yaw)), or whose 64x64 crop has more than FALLBACK_OUTSIDE of its pixels outside
# the frame (align.outside_fraction), gets OpenCV Telea in its crop instead of the GAN fill (docs/video.md,
# "Turned faces and faces leaving the frame": how both were chosen).
FALLBACK_YAW = 0.3
FALLBACK_OUTSIDE = 0.3
DETECTORS = ("auto", "blazeface", "haar")
FILLS = ("search", "telea")  # where the hole's first fill comes from (module docstring)


class VideoInpainter:
    """width, height: the frames' size. mask: a kind, a mask image or mask video path, or a uint8
    (H,W) full-frame array. box: (x,y,w,h) fixed region; without it (or with face="auto") the face
    is detected. steps: search steps
    per frame (default VIDEO_STEPS = 2: each frame starts near its answer, from the previous frame's
    z, and real time leaves ~40 ms a frame on a 2-core CPU). frame_budget_ms: a per-frame
    deadline: the search stops once process() has spent this long on the frame (the face region
    included when process() finds it; `edgefill video` finds it on the reader thread). init: the start of a (re)started track
    (auto | random | encoder). previous: start from the previous frame's z. smooth: result
    smoothing weight (0 = off). box_smoothing: weight of a new detection (1.0 = the raw box).
    detect_every: detect every N frames. follow: move the box with the face's optical flow between
    detections. refine: run the bundle's refiner. seed: seeds the mask kind and random starts.
    frame_count: the source's length (checks a mask video). pipeline: share one (default: a new
    one on `bundle`, `provider`, `threads`). fallback_yaw, fallback_outside: the thresholds of
    pose() (None: that check off; both None: always the GAN fill). fill: "search" (the latent
    search, the product) or "telea" (no search: OpenCV Telea's fill, then the same refiner and
    smoothing; module docstring)."""

    def __init__(self, width: int, height: int, mask="center", *, box=None, face: str | None = None,
                 steps: int | None = None, frame_budget_ms: float | None = None, init: str | None = None,
                 previous: bool = True, smooth: float = VIDEO_SMOOTH, box_smoothing: float = VIDEO_BOX_SMOOTHING,
                 detect_every: int = VIDEO_DETECT_EVERY, follow: bool = True, seed: int = 0,
                 refine: bool = VIDEO_REFINE, frame_count: int | None = None, bundle=None,
                 provider: str | None = None, threads: int | None = None, pipeline: Pipeline | None = None,
                 detector: str = "auto", max_faces: int = 1, blend: str = VIDEO_BLEND,
                 fallback_yaw: float | None = FALLBACK_YAW, fallback_outside: float | None = FALLBACK_OUTSIDE,
                 flip_average: bool = VIDEO_FLIP_AVERAGE, fill: str = "search"):
        for name, value in (("--fallback-yaw", fallback_yaw), ("--fallback-outside", fallback_outside)):
            if value is not None and value < 0:
                raise EdgefillError(f"{name} must be >= 0, got {value}")
        if face is not None and face != "auto":
            raise EdgefillError(f"--face takes 'auto', got {face!r}")
        if box is not None and face is not None:
            raise EdgefillError("give --box x,y,w,h or --face auto, not both")
        if frame_budget_ms is not None and frame_budget_ms <= 0:
            raise EdgefillError("--frame-budget-ms must be positive")
        if not 0 <= smooth < 1:
            raise EdgefillError(f"--smooth must be in [0, 1), got {smooth}")
        if detector not in DETECTORS:
            raise EdgefillError(f"--detector takes one of {', '.join(DETECTORS)}, got {detector!r}")
        if fill not in FILLS:
            raise EdgefillError(f"--fill takes one of {', '.join(FILLS)}, got {fill!r}")
        self.fill = fill
        self.width, self.height = int(width), int(height)
        self.pipeline = pipeline or Pipeline(bundle, provider=provider, threads=threads)
        has_detector = self.pipeline.bundle.has_graph("detector")
        if detector == "blazeface" and not has_detector:
            raise EdgefillError(f"bundle {self.pipeline.bundle.root} has no detector graph; use --detector haar")
        tracking = dict(detect_every=detect_every, smooth=box_smoothing, follow=follow)
        if int(max_faces) < 1:
            raise EdgefillError(f"--max-faces must be at least 1, got {max_faces}")
        if max_faces > 1 and (box is not None or not has_detector or detector == "haar"):
            raise EdgefillError("--max-faces above 1 needs --face auto and the bundle's face detector (landmarks); "
                                + ("--box is one region" if box is not None else
                                   "--detector haar follows one face" if detector == "haar" else
                                   f"bundle {self.pipeline.bundle.root} has no detector graph"))
        self.max_faces = int(max_faces)
        if box is not None:
            self.region = FixedRegion(parse_box(box), width, height)
            self.detector = None
        elif has_detector and detector != "haar":
            from .blazeface import BlazeFace

            blaze = BlazeFace(self.pipeline.engine)
            if max_faces > 1:
                self.region = MultiFaceTracker(blaze, blaze.spec["template"]["points"], max_faces=max_faces, **tracking)
            else:
                self.region = AlignedTracker(blaze, blaze.spec["template"]["points"], **tracking)
            self.detector = "blazeface"
        else:
            self.region = FaceTracker(**tracking)
            self.detector = "haar"
        self.masks = mask if isinstance(mask, MaskSource) else MaskSource(mask, width, height, frame_count)
        if box is not None and self.masks.still is not None and _outside(self.masks.still, self.region.box).any():
            x, y, w, h = self.region.box
            raise EdgefillError(f"the mask has holes outside --box {x},{y},{w},{h}; they could not be filled")
        first = self.pipeline.make_start(init)
        if blend not in ("paste", "poisson"):
            raise EdgefillError(f"--blend takes paste or poisson, got {blend!r}")
        self.config = self.pipeline.config(steps=steps or VIDEO_STEPS, restarts=1,
                                           start="given" if previous else first.name).replace(blend=blend)
        self.temporal = TemporalState(first, previous=previous, smooth=smooth)
        self._temporal_args = (first, previous, smooth)
        self._temporals: dict[int, TemporalState] = {}  # per face track (--max-faces)
        self.budget = frame_budget_ms
        self.seed, self.refine, self.flip_average = seed, refine, bool(flip_average)
        self.fallback_yaw, self.fallback_outside = fallback_yaw, fallback_outside
        self.template = np.asarray(self.region.template, np.float64) if hasattr(self.region, "template") else None
        self.index = 0

    def pose(self, region: Region) -> tuple[float | None, float | None, str | None]:
        """(yaw, outside fraction, fallback reason) of an aligned face region: reason "outside" when
        more than fallback_outside of its crop lies outside the frame, else "turned" when |yaw| is
        above fallback_yaw, else None (the GAN fill). None thresholds turn a check off; a region
        without landmarks (Haar box, --box) is never checked."""
        if region.transform is None or region.points is None or self.template is None:
            return None, None, None
        yaw = align.turn(region.points, self.template)
        outside = align.outside_fraction(region.transform, self.width, self.height)
        reason = None
        if self.fallback_outside is not None and outside > self.fallback_outside:
            reason = "outside"
        elif self.fallback_yaw is not None and abs(yaw) > self.fallback_yaw:
            reason = "turned"
        return yaw, outside, reason

    def locate(self, frame: np.ndarray, index: int) -> Region:
        """The face region of frame `index` (RGB uint8 (H,W,3)); frames must come in order. process()
        calls it; a pipelined loop may call it on another thread and hand the Region to process()."""
        return self.region(index, frame)

    def process(self, frame: np.ndarray, index: int | None = None,
                region: Region | None = None, progress=None) -> tuple[np.ndarray, dict]:
        """RGB uint8 (H,W,3) -> (the frame with its hole filled, info). info: index, face (bool),
        box, restarted, start, steps_run, loss, detect_s, inpaint_s, mask (uint8 (H,W) full-frame
        hole, None without a face), hole_clipped (present and True when a full-frame mask reached
        past the face crop: only its part inside the crop is filled); with an aligned crop also
        yaws, outsides (pose() per face) and fallback (per face: None, "turned" or "outside": Telea
        in the crop, no search, steps_run 0 when every face fell back). region: this frame's
        locate() result, if already found. progress: called after every search step (it may raise
        to abandon the frame: `edgefill video` does on Ctrl-C)."""
        t0 = time.perf_counter()
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise EdgefillError(f"frame {self.index if index is None else index} is {frame.dtype} {frame.shape}; "
                                f"expected RGB uint8 ({self.height},{self.width},3) like the first")
        index = self.index if index is None else index
        self.index = index + 1
        if region is None:
            region = self.locate(frame, index)
        t1 = time.perf_counter()
        if isinstance(region, list):
            return self._process_many(frame, index, region, t0, t1, progress)
        info = {"index": index, "face": region.box is not None, "box": region.box, "restarted": region.restarted,
                "detect_s": t1 - t0, "inpaint_s": 0.0, "steps_run": 0, "loss": None, "start": None, "mask": None}
        if region.box is None:
            self.temporal.reset()
            return frame, info
        if region.transform is not None:
            return self._process_aligned(frame, index, region, info, t0, t1, progress)
        mask = self.masks.for_frame(index)
        if isinstance(mask, np.ndarray):
            outside = _outside(mask, region.box)
            if outside.any():  # a full-frame hole reaching past the face crop: only the part inside is filled
                mask = np.where(outside, np.uint8(0), mask)
                info["hole_clipped"] = True
        prep = prepare(frame, mask, region.box, rng=np.random.default_rng(self.seed))
        info["mask"] = prep.mask
        if not prep.has_hole:
            info["inpaint_s"] = time.perf_counter() - t1
            return frame, info
        result64 = self._infer(prep.image64, prep.mask64, region, info, t0, t1, progress)
        t = time.perf_counter()
        out = paste_back(prep, result64)
        self._done(info, t, t1)
        return out, info

    def _infer(self, image64, mask64, region, info, t0, t1, progress) -> np.ndarray:
        """One 64x64 problem through the pipeline's stages (start, search and blend; the refiner),
        then the temporal state. Records stage times in info["stages"] (seconds): align (frame ->
        64x64 problem, from t1), start (z0: the previous z, or the encoder on a new track), search
        (the steps, the final image, the blend), refine."""
        t_start = time.perf_counter()
        if self.fill == "telea":
            (result64,), stages = self._telea_fill(image64[None], mask64[None], [self.temporal], [region.restarted])
            info.update(start="telea", stages={"align": t_start - t1, **stages})
            return result64
        start = self.temporal.start(region.restarted)
        z0 = self.pipeline.start(image64[None], mask64[None], self.config, start, [self.seed])
        t_search = time.perf_counter()
        budget = None
        if self.budget is not None:
            budget = max(1.0, self.budget - (t_search - t0) * 1000.0)
        batch = self.pipeline.run(image64[None], mask64[None], self.config, start=start, z0=z0,
                                  time_budget_ms=budget, refine=False, progress=progress)
        t_refine = time.perf_counter()
        final = batch.final
        if self.refine and self.pipeline.has_refiner:
            final = self.pipeline.refine(batch.searched, mask64[None], flip_average=self.flip_average)
        t_end = time.perf_counter()
        result64 = self.temporal.update(batch.search.z[0], final[0], mask64)
        info.update(steps_run=int(batch.search.steps_run), loss=float(batch.search.loss[0]), start=start.name,
                    stages={"align": t_start - t1, "start": t_search - t_start, "search": t_refine - t_search,
                            "refine": t_end - t_refine})
        return result64

    def _telea_fill(self, images64: np.ndarray, masks64: np.ndarray, states: list[TemporalState],
                    restarted: list[bool]) -> tuple[list[np.ndarray], dict]:
        """fill="telea": N 64x64 problems (uint8 (N,64,64,3) RGB, masks (N,64,64)) filled by OpenCV
        Telea, then the same refiner (one batch) and each face's temporal smoothing (reset where its
        track restarted) -> N results uint8 (64,64,3) and the stage times {"fill", "refine"} in
        seconds. No search: the states' z stay as they were."""
        for state, new_track in zip(states, restarted):
            if new_track:
                state.reset()
        t = time.perf_counter()
        final = np.stack([align.telea64(im, m) for im, m in zip(images64, masks64)])
        t_refine = time.perf_counter()
        if self.refine and self.pipeline.has_refiner:
            final = self.pipeline.refine(final, masks64, flip_average=self.flip_average)
        results = [st.smoothed(final[i], masks64[i]) for i, st in enumerate(states)]
        return results, {"fill": t_refine - t, "refine": time.perf_counter() - t_refine}

    @staticmethod
    def _done(info: dict, t_paste: float, t1: float) -> None:
        now = time.perf_counter()
        info["stages"]["paste"] = now - t_paste
        info["inpaint_s"] = now - t1

    def _process_aligned(self, frame, index, region, info, t0, t1, progress):
        """The eye-aligned crop (video.align): warp in, the same pipeline and temporal state, warp
        back with a feathered edge. A mask kind is drawn in the aligned crop (where CelebA's masks
        sit); a full-frame mask is warped into it (the part outside the crop is left, counted)."""
        m = region.transform
        mask = self.masks.for_frame(index)
        if isinstance(mask, np.ndarray):
            mask64 = align.warp_mask_in(mask, m)
            hole = align.hole_in_frame(mask64, m, self.width, self.height)
            hole = np.where(mask >= 128, hole, np.uint8(0))
            if ((mask >= 128) & (hole < 128)).any():
                info["hole_clipped"] = True
        else:
            from ...imaging.masks import make_mask

            mask64 = make_mask(mask, np.random.default_rng(self.seed), 64)
            hole = align.hole_in_frame(mask64, m, self.width, self.height)
        info["mask"] = hole
        if not (mask64 >= 128).any() or not (hole >= 128).any():
            info["inpaint_s"] = time.perf_counter() - t1
            return frame, info
        image64 = align.warp_in(frame, m)
        yaw, outside, reason = self.pose(region)
        info.update(yaws=[yaw], outsides=[outside], fallback=[reason])
        if reason is not None:  # Telea in the crop; the track and its z stay as they were
            if region.restarted:
                self.temporal.reset()
            t = time.perf_counter()
            result64 = align.telea64(image64, mask64)
            info["stages"] = {"align": t - t1, "fallback": time.perf_counter() - t}
            t = time.perf_counter()
            out = align.paste_aligned(frame, result64, hole, m)
            self._done(info, t, t1)
            return out, info
        result64 = self._infer(image64, mask64, region, info, t0, t1, progress)
        t = time.perf_counter()
        out = align.paste_aligned(frame, result64, hole, m)
        self._done(info, t, t1)
        return out, info

    def _process_many(self, frame, index, regions, t0, t1, progress):
        """--max-faces: every tracked face's aligned crop in ONE batched pipeline call, each face
        with its own temporal state (start from its previous z, its smoothing); pasted back in turn.
        info as process(), for the first face, plus faces (count), boxes, track_ids; mask: the
        union of the faces' holes."""
        from ...imaging.masks import make_mask

        info = {"index": index, "face": bool(regions), "box": regions[0].box if regions else None,
                "restarted": any(r.restarted for r in regions), "detect_s": t1 - t0, "inpaint_s": 0.0,
                "steps_run": 0, "loss": None, "start": None, "mask": None, "faces": len(regions),
                "boxes": [r.box for r in regions], "track_ids": [r.track_id for r in regions]}
        live = {r.track_id for r in regions}
        self._temporals = {k: v for k, v in self._temporals.items() if k in live}
        if not regions:
            return frame, info
        mask = self.masks.for_frame(index)
        problems, union = [], np.zeros((self.height, self.width), np.uint8)
        fallbacks = []  # (region, mask64, hole, image64) filled by Telea
        poses = [self.pose(r) for r in regions]
        info.update(yaws=[p[0] for p in poses], outsides=[p[1] for p in poses], fallback=[p[2] for p in poses])
        for r, (_, _, reason) in zip(regions, poses):
            m = r.transform
            if isinstance(mask, np.ndarray):
                mask64 = align.warp_mask_in(mask, m)
                hole = np.where(mask >= 128, align.hole_in_frame(mask64, m, self.width, self.height), np.uint8(0))
            else:
                mask64 = make_mask(mask, np.random.default_rng(self.seed), 64)
                hole = align.hole_in_frame(mask64, m, self.width, self.height)
            union = np.maximum(union, hole)
            if (mask64 >= 128).any() and (hole >= 128).any():
                (fallbacks if reason is not None else problems).append((r, mask64, hole, align.warp_in(frame, m)))
        if isinstance(mask, np.ndarray) and ((mask >= 128) & (union < 128)).any():
            info["hole_clipped"] = True
        info["mask"] = union
        out = frame
        t_fallback = time.perf_counter()
        for r, mask64, hole, image64 in fallbacks:  # Telea in the crop; the track and its z stay as they were
            if r.restarted and r.track_id in self._temporals:
                self._temporals[r.track_id].reset()
            out = align.paste_aligned(out, align.telea64(image64, mask64), hole, r.transform)
        fallback_s = time.perf_counter() - t_fallback
        if not problems:
            info["inpaint_s"] = time.perf_counter() - t1
            if fallbacks:
                info["stages"] = {"align": t_fallback - t1, "fallback": fallback_s}
            return out, info
        t_start = time.perf_counter()
        states = [self._temporals.setdefault(r.track_id, TemporalState(*self._temporal_args[:1],
                                                                       previous=self._temporal_args[1],
                                                                       smooth=self._temporal_args[2]))
                  for r, *_ in problems]
        images = np.stack([p[3] for p in problems])
        masks64 = np.stack([p[1] for p in problems])
        if self.fill == "telea":
            results, stages = self._telea_fill(images, masks64, states, [r.restarted for r, *_ in problems])
            info.update(start="telea", starts=["telea"] * len(problems))
        else:
            starts = [st.start(r.restarted) for st, (r, *_) in zip(states, problems)]
            z0 = np.concatenate([self.pipeline.start(images[i:i + 1], masks64[i:i + 1], self.config, starts[i],
                                                     [self.seed]) for i in range(len(problems))])
            t_search = time.perf_counter()
            budget = None
            if self.budget is not None:
                budget = max(1.0, self.budget - (t_search - t0) * 1000.0)
            batch = self.pipeline.run(images, masks64, self.config, z0=z0, time_budget_ms=budget, refine=False,
                                      progress=progress)
            t_refine = time.perf_counter()
            final = batch.final
            if self.refine and self.pipeline.has_refiner:
                final = self.pipeline.refine(batch.searched, masks64, flip_average=self.flip_average)
            results = [st.update(batch.search.z[i], final[i], masks64[i]) for i, st in enumerate(states)]
            stages = {"start": t_search - t_start, "search": t_refine - t_search,
                      "refine": time.perf_counter() - t_refine}
            info.update(steps_run=int(batch.search.steps_run), loss=float(batch.search.loss[0]),
                        start=starts[0].name, starts=[s.name for s in starts])
        t_paste = time.perf_counter()
        for result64, (r, _, hole, _) in zip(results, problems):
            out = align.paste_aligned(out, result64, hole, r.transform)
        info["stages"] = {"align": t_start - t1 - fallback_s, **stages, **({"fallback": fallback_s} if fallbacks else {})}
        self._done(info, t_paste, t1)
        return out, info

    def frames(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, dict]]:
        """A generator: each RGB uint8 (H,W,3) frame of `frames`, in order -> (output, info)."""
        for frame in frames:
            yield self.process(frame)

    def close(self) -> None:
        self.masks.close()

    def __enter__(self) -> "VideoInpainter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _outside(mask: np.ndarray, box) -> np.ndarray:
    """bool (H,W): hole pixels (>= 128) of a full-frame uint8 mask outside box (x, y, w, h)."""
    x, y, w, h = box
    out = np.asarray(mask) >= 128
    out[y:y + h, x:x + w] = False
    return out


def inpaint_frames(frames: Iterable[np.ndarray], mask="center", **settings) -> Iterator[tuple[np.ndarray, dict]]:
    """A generator over any iterable of RGB uint8 (H,W,3) frames of one size: yields (output,
    info) per frame, lazily. mask: a kind, a mask image/video path, or a uint8 (H,W) full-frame
    array; settings: VideoInpainter's (box=(x,y,w,h) or face="auto", steps, smooth, ...)."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        return
    height, width = np.asarray(first).shape[:2]
    with VideoInpainter(width, height, mask, **settings) as vi:
        yield vi.process(first)
        for frame in iterator:
            yield vi.process(frame)


def inpaint_video(source: str, mask="center", *, realtime: bool = False,
                  **settings) -> Iterator[tuple[np.ndarray, dict]]:
    """A generator over a video file, camera index ("0"), stream URL or image-sequence pattern
    (video.sources; realtime: newest frame first, like `--realtime`): yields (output, info) per
    frame; info also has "t" (seconds since the source opened) and "source" (the input frame)."""
    from .sources import open_source

    src = open_source(str(source), realtime=realtime)
    try:
        settings.setdefault("frame_count", src.frame_count)
        with VideoInpainter(src.width, src.height, mask, **settings) as vi:
            while (frame := src.read()) is not None:
                out, info = vi.process(frame.image, frame.index)
                info.update(t=frame.t, source=frame.image)
                yield out, info
    finally:
        src.close()
