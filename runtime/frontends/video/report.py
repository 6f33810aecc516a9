"""What `edgefill video` reports (video.run's module docstring lists the fields): FrameTally counts
the frames and times the stages while the run's threads work, Evaluator measures --evaluate's
quality and flicker, and FrameTally.report assembles the JSON-ready dict, the settings included
(settings_record)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...imaging import metrics
from ...imaging.diffusion import opencv_inpaint
from .flicker import FlickerMeter

if TYPE_CHECKING:
    from .api import VideoInpainter
    from .run import VideoJob
    from .sources import Source
    from .writer import VideoSink

STAGES = ("decode", "detect", "inpaint", "align", "start", "search", "fill", "refine", "paste", "fallback", "encode",
          "total")


def percentiles(seconds: list[float]) -> dict:
    """Seconds -> count, p50/p95/p99 and mean in milliseconds (None when empty)."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    if not ms.size:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"count": int(ms.size), "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(ms.mean())}


def settings_record(job: "VideoJob", vi: "VideoInpainter", sink: "VideoSink") -> dict:
    """The report's settings: the job's VideoSettings as run (the live frame budget filled in:
    frame_budget_auto; detector: the one used, blazeface | haar | None for --box; refine: False
    when the bundle has no refiner; previous_z: the `previous` field), the mask and the IO."""
    ran = {("previous_z" if k == "previous" else k): v for k, v in vi.settings.as_dict().items()}
    ran.update(detector=vi.detector, refine=ran["refine"] and vi.pipeline.has_refiner,
               frame_budget_auto=job.settings.frame_budget_ms is None and ran["frame_budget_ms"] is not None)
    return {"mask": job.mask, **ran, "codec": sink.codec, "side_by_side": job.side_by_side, "realtime": job.realtime,
            "backend": vi.pipeline.backend, "provider": vi.pipeline.provider}


class FrameTally:
    """The counts and stage times of one run. The reader thread adds counts "in" and "stale" and
    times decode and detect, the writer "out", encode and total; add() takes each processed frame's
    info (VideoInpainter.process) on the inference thread. Each key has one writer thread."""

    def __init__(self):
        self.times: dict[str, list[float]] = {k: [] for k in STAGES}
        self.counts = {"in": 0, "out": 0, "no_face": 0, "clipped": 0, "stale": 0}
        self.restarts = 0
        self.fallbacks: Counter = Counter()
        self.steps: list[int] = []
        self.starts: Counter = Counter()
        self.per_frame: list[dict] = []

    def add(self, info: dict) -> None:
        """One processed frame: its stage times, start(s), steps, fallbacks and its per-frame row."""
        if info["face"]:
            self.times["inpaint"].append(info["inpaint_s"])
            for stage, seconds in info.get("stages", {}).items():
                self.times[stage].append(seconds)
            reasons = info.get("fallback") or []
            self.fallbacks.update(r for r in reasons if r)
            if not reasons or not all(reasons):  # a frame whose every face fell back ran no search
                self.steps.append(info["steps_run"])
            self.restarts += int(bool(info["restarted"]))
            self.counts["clipped"] += int(info.get("hole_clipped", False))
            for name in info.get("starts") or ([info["start"]] if info["start"] else []):
                self.starts[name] += 1
        else:
            self.counts["no_face"] += 1
        self.per_frame.append({
            "index": info["index"], "face": info["face"], "faces": info.get("faces", int(info["face"])),
            "boxes": [list(b) for b in info["boxes"]] if "boxes" in info else None,
            "box": list(info["box"]) if info["box"] is not None else None,
            "restarted": bool(info["restarted"]), "start": info["start"], "steps_run": info["steps_run"],
            "fallback": info.get("fallback"),
            "yaw": [None if v is None else round(v, 4) for v in info.get("yaws") or []],
            "outside": [None if v is None else round(v, 4) for v in info.get("outsides") or []]})

    def report(self, job: "VideoJob", source: "Source", vi: "VideoInpainter", sink: "VideoSink", wall: float) -> dict:
        """The run's report (video.run's module docstring), wall: seconds from the first decode to
        the last encode."""
        counts, steps = self.counts, self.steps
        return {
            "input": job.input, "output": str(Path(job.out)), "frames_in": counts["in"] + source.dropped,
            "frames_processed": counts["in"] - counts["stale"], "frames_out": counts["out"],
            "dropped": source.dropped + counts["stale"], "dropped_at_source": source.dropped,
            "dropped_waiting": counts["stale"],
            "frames_without_face": counts["no_face"], "track_restarts": self.restarts,
            "scene_cuts": getattr(vi.region, "cuts", 0),
            "detections": getattr(vi.region, "detections", None), "starts": dict(self.starts),
            "frames_hole_clipped": counts["clipped"],
            "faces_fallback": {"turned": self.fallbacks["turned"], "outside": self.fallbacks["outside"]},
            "fps": counts["out"] / wall if wall > 0 else None, "source_fps": source.fps,
            "size": [source.width, source.height], "live": source.live,
            "steps_run": {"mean": float(np.mean(steps)) if steps else None, "max": int(max(steps)) if steps else None},
            "latency": {k: percentiles(v) for k, v in self.times.items()},
            "settings": settings_record(job, vi, sink),
            "per_frame": self.per_frame,
        }


def _ssim_box(a: np.ndarray, b: np.ndarray, box) -> float:
    x, y, w, h = box
    return float(metrics.ssim(a[y:y + h, x:x + w], b[y:y + h, x:x + w]))


def _ssim_faces(a: np.ndarray, b: np.ndarray, info: dict) -> float:
    """SSIM in the face crop; with several faces (--max-faces), the mean over their crops."""
    boxes = info.get("boxes") or [info["box"]]
    return float(np.mean([_ssim_box(a, b, box) for box in boxes]))


class Evaluator:
    """--evaluate: per-frame quality of the output and of Telea, and the flicker of both."""

    def __init__(self):
        self.rows: list[dict] = []
        self.flicker = FlickerMeter()

    def add(self, source: np.ndarray, out: np.ndarray, info: dict) -> None:
        mask = info["mask"]
        if not info["face"] or mask is None or not (mask >= 128).any():
            self.flicker.add(source, None)
            return
        telea = opencv_inpaint(source[None], mask[None], "telea")[0]  # the hole's content is not read
        self.rows.append({"index": info["index"],
                          "hole_psnr": float(metrics.hole_psnr(out, source, mask)),
                          "telea_hole_psnr": float(metrics.hole_psnr(telea, source, mask)),
                          "ssim": _ssim_faces(out, source, info),
                          "telea_ssim": _ssim_faces(telea, source, info)})
        self.flicker.add(source, mask, output=out, telea=telea)

    def report(self) -> dict:
        def mean_ci(key):
            m, lo, hi, n = metrics.mean_ci([r[key] for r in self.rows])
            return {"mean": m, "ci95": [lo, hi], "n": n}

        return {"frames": len(self.rows),
                **{k: mean_ci(k) for k in ("hole_psnr", "telea_hole_psnr", "ssim", "telea_ssim")},
                "flicker": self.flicker.result(), "per_frame": self.rows}
