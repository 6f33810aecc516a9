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

The settings (VideoSettings, video.settings: every `edgefill video` flag of the same name, with
the defaults and how each was chosen) are one frozen config: VideoInpainter(w, h, mask, settings)
or VideoInpainter(w, h, mask, face="auto", steps=1, ...) for the fields one by one.

Graceful degradation (aligned crops): a face turned too far (|align.turn| > fallback_yaw) or too
far out of the frame (align.outside_fraction > fallback_outside) gets OpenCV Telea (radius 3) of its
hole in the aligned crop, pasted back the same way, instead of the GAN fill; its track goes on and
its z is not updated that frame (the next frontal frame starts from the last searched z). info
"fallback" says which faces fell back and why; `edgefill video` counts them (faces_fallback).

fill="telea" (`--fill telea`) takes the hole's first fill from OpenCV Telea instead of the latent
search (video.settings); with a bundle whose refiner was trained on Telea's fills it is the strong
baseline on video.
"""
from __future__ import annotations

import time
from typing import Iterable, Iterator

import numpy as np

from ...core.pipeline import Pipeline
from ...errors import EdgefillError
from ...imaging.diffusion import opencv_inpaint
from ...imaging.preprocess import paste_back, prepare
from . import align
from .faces import AlignedTracker, FaceTracker, FixedRegion, MultiFaceTracker, Region
from .masks import MaskSource
from .settings import VideoSettings
from .temporal import TemporalState


class VideoInpainter:
    """width, height: the frames' size. mask: a kind, a mask image or mask video path, or a uint8
    (H,W) full-frame array (or a MaskSource). settings: a VideoSettings, and/or its fields as
    keywords (box, face, steps, frame_budget_ms, init, previous, smooth, ...; video.settings), which
    replace the given settings' values. frame_budget_ms counts from process()'s call (the face
    region included when process() finds it; `edgefill video` finds it on the reader thread).
    frame_count: the source's length (checks a mask video). pipeline: share one (default: a new
    one on `bundle`, `provider`, `threads`)."""

    def __init__(self, width: int, height: int, mask="center", settings: VideoSettings | None = None, *,
                 frame_count: int | None = None, bundle=None, provider: str | None = None,
                 threads: int | None = None, pipeline: Pipeline | None = None, **fields):
        st = settings or VideoSettings()
        if fields:
            st = st.replace(**fields)
        self.settings = st
        self.width, self.height = int(width), int(height)
        self.pipeline = pipeline or Pipeline(bundle, provider=provider, threads=threads)
        has_detector = self.pipeline.bundle.has_graph("detector")
        if st.detector == "blazeface" and not has_detector:
            raise EdgefillError(f"bundle {self.pipeline.bundle.root} has no detector graph; use --detector haar")
        if st.max_faces > 1 and not has_detector:
            raise EdgefillError("--max-faces above 1 needs --face auto and the bundle's face detector (landmarks); "
                                f"bundle {self.pipeline.bundle.root} has no detector graph")
        tracking = dict(detect_every=st.detect_every, smooth=st.box_smoothing, follow=st.follow)
        if st.box is not None:
            self.region = FixedRegion(st.box, width, height)
            self.detector = None
        elif has_detector and st.detector != "haar":
            from .blazeface import BlazeFace

            blaze = BlazeFace(self.pipeline.engine)
            if st.max_faces > 1:
                self.region = MultiFaceTracker(blaze, blaze.spec["template"]["points"], max_faces=st.max_faces,
                                               **tracking)
            else:
                self.region = AlignedTracker(blaze, blaze.spec["template"]["points"], **tracking)
            self.detector = "blazeface"
        else:
            self.region = FaceTracker(**tracking)
            self.detector = "haar"
        self.masks = mask if isinstance(mask, MaskSource) else MaskSource(mask, width, height, frame_count)
        if st.box is not None and self.masks.still is not None and _outside(self.masks.still, self.region.box).any():
            x, y, w, h = self.region.box
            raise EdgefillError(f"the mask has holes outside --box {x},{y},{w},{h}; they could not be filled")
        self.first_start = self.pipeline.make_start(st.init)
        self.config = self.pipeline.config(steps=st.steps, restarts=1,
                                           start="given" if st.previous else self.first_start.name).replace(blend=st.blend)
        self.temporal = self._new_temporal()
        self._temporals: dict[int, TemporalState] = {}  # per face track (--max-faces)
        self.template = np.asarray(self.region.template, np.float64) if hasattr(self.region, "template") else None
        self.index = 0

    def _new_temporal(self) -> TemporalState:
        return TemporalState(self.first_start, previous=self.settings.previous, smooth=self.settings.smooth)

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
        max_outside, max_yaw = self.settings.fallback_outside, self.settings.fallback_yaw
        if max_outside is not None and outside > max_outside:
            reason = "outside"
        elif max_yaw is not None and abs(yaw) > max_yaw:
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
        prep = prepare(frame, mask, region.box, rng=np.random.default_rng(self.settings.seed))
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
        """One face's 64x64 problem through _fill with the face's temporal state; records the
        stage times in info["stages"] (seconds): align (frame -> 64x64 problem, from t1), then
        _fill's."""
        t_start = time.perf_counter()
        (result64,), stages, fields = self._fill(image64[None], mask64[None], [self.temporal], [region.restarted],
                                                 t0, progress)
        info.update(fields, stages={"align": t_start - t1, **stages})
        return result64

    def _fill(self, images64: np.ndarray, masks64: np.ndarray, states: list[TemporalState], restarted: list[bool],
              t0: float, progress) -> tuple[list[np.ndarray], dict, dict]:
        """N 64x64 problems (uint8 (N,64,64,3) RGB, masks (N,64,64) 255 = fill), one face track's
        TemporalState each (restarted: its track began anew this frame) -> N results uint8
        (64,64,3), the stage times in seconds, and the info fields. The search (settings.fill
        "search"): each face starts from its previous z (or its track's first start), ONE batched
        search within what is left of the frame budget since t0, the blend, the refiner, then each
        state records its z and smooths its result; stages start, search, refine; fields steps_run,
        loss, start (the first face's), starts. fill "telea": _telea_fill."""
        if self.settings.fill == "telea":
            results, stages = self._telea_fill(images64, masks64, states, restarted)
            return results, stages, {"start": "telea", "starts": ["telea"] * len(states)}
        t_start = time.perf_counter()
        starts = [state.start(new_track) for state, new_track in zip(states, restarted)]
        z0 = np.concatenate([self.pipeline.start(images64[i:i + 1], masks64[i:i + 1], self.config, start,
                                                 [self.settings.seed]) for i, start in enumerate(starts)])
        t_search = time.perf_counter()
        budget = self.settings.frame_budget_ms
        if budget is not None:
            budget = max(1.0, budget - (t_search - t0) * 1000.0)
        batch = self.pipeline.run(images64, masks64, self.config, z0=z0, time_budget_ms=budget, refine=False,
                                  progress=progress)
        t_refine = time.perf_counter()
        final = self._refine(batch.searched, masks64)
        results = [state.update(batch.search.z[i], final[i], masks64[i]) for i, state in enumerate(states)]
        stages = {"start": t_search - t_start, "search": t_refine - t_search, "refine": time.perf_counter() - t_refine}
        return results, stages, {"steps_run": int(batch.search.steps_run), "loss": float(batch.search.loss[0]),
                                 "start": starts[0].name, "starts": [start.name for start in starts]}

    def _refine(self, images64: np.ndarray, masks64: np.ndarray) -> np.ndarray:
        """The bundle's refiner on N filled 64x64 faces (as they are with settings.refine off or
        without a refiner in the bundle)."""
        if not (self.settings.refine and self.pipeline.has_refiner):
            return images64
        return self.pipeline.refine(images64, masks64, flip_average=self.settings.flip_average)

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
        final = opencv_inpaint(images64, masks64, "telea")
        t_refine = time.perf_counter()
        final = self._refine(final, masks64)
        results = [st.smoothed(final[i], masks64[i]) for i, st in enumerate(states)]
        return results, {"fill": t_refine - t, "refine": time.perf_counter() - t_refine}

    def _aligned_hole(self, mask, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This frame's mask (a kind, or a full-frame uint8 (H,W)) for the aligned crop of
        transform m -> (mask64 uint8 (64,64), the hole in the frame uint8 (H,W)), 255 = fill. A
        kind is drawn in the crop (where CelebA's masks sit); a full-frame mask is warped in and
        its hole kept where the crop covers it."""
        if isinstance(mask, np.ndarray):
            mask64 = align.warp_mask_in(mask, m)
            hole = np.where(mask >= 128, align.hole_in_frame(mask64, m, self.width, self.height), np.uint8(0))
        else:
            from ...imaging.masks import make_mask

            mask64 = make_mask(mask, np.random.default_rng(self.settings.seed), 64)
            hole = align.hole_in_frame(mask64, m, self.width, self.height)
        return mask64, hole

    @staticmethod
    def _done(info: dict, t_paste: float, t1: float) -> None:
        now = time.perf_counter()
        info["stages"]["paste"] = now - t_paste
        info["inpaint_s"] = now - t1

    def _process_aligned(self, frame, index, region, info, t0, t1, progress):
        """The eye-aligned crop (video.align): warp in, the same pipeline and temporal state, warp
        back with a feathered edge (_aligned_hole: the mask in the crop; the part of a full-frame
        hole outside the crop is left, counted)."""
        m = region.transform
        mask = self.masks.for_frame(index)
        mask64, hole = self._aligned_hole(mask, m)
        if isinstance(mask, np.ndarray) and ((mask >= 128) & (hole < 128)).any():
            info["hole_clipped"] = True
        info["mask"] = hole
        if not (mask64 >= 128).any() or not (hole >= 128).any():
            info["inpaint_s"] = time.perf_counter() - t1
            return frame, info
        image64 = align.warp_in(frame, m, _unread(hole, mask))
        yaw, outside, reason = self.pose(region)
        info.update(yaws=[yaw], outsides=[outside], fallback=[reason])
        if reason is not None:  # Telea in the crop; the track and its z stay as they were
            if region.restarted:
                self.temporal.reset()
            t = time.perf_counter()
            result64 = align.telea64(image64, mask64)
            info["stages"] = {"align": t - t1, "fallback": time.perf_counter() - t}
        else:
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
        holes = [self._aligned_hole(mask, r.transform) for r in regions]
        for _, hole in holes:
            union = np.maximum(union, hole)
        unread = _unread(union, mask)  # every face's hole stays unread in each crop
        for r, (_, _, reason), (mask64, hole) in zip(regions, poses, holes):
            if (mask64 >= 128).any() and (hole >= 128).any():
                (fallbacks if reason is not None else problems).append((r, mask64, hole,
                                                                        align.warp_in(frame, r.transform, unread)))
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
        states = [self._temporals.setdefault(r.track_id, self._new_temporal()) for r, *_ in problems]
        results, stages, fields = self._fill(np.stack([p[3] for p in problems]), np.stack([p[1] for p in problems]),
                                             states, [r.restarted for r, *_ in problems], t0, progress)
        info.update(fields)
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


def _unread(hole: np.ndarray, mask) -> np.ndarray:
    """The frame pixels a crop must not read: the hole being filled, and with a full-frame mask
    (uint8 (H,W)) all of its hole, the part past the crop included."""
    return np.maximum(hole, mask) if isinstance(mask, np.ndarray) else hole


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
