"""`edgefill evaluate --steps-curve`: quality against search steps for each start (DESIGN section 7).

For each start ("random", "encoder"), ONE search of max(steps) steps per batch, with the start's
search defaults from the bundle (restarts included: the random start keeps today's restarts, the
encoder start its own), records each image's best z after s steps (s evaluated z's; s = 0 is the
start itself: z0 when there is one restart, else the best of the starts by their loss). Every
point is then finished as the product would finish it: G(z), the bundle's blend, the refiner
(when the bundle has one). Same faces, masks (evaluate's mask_batch) and random rows for every
start. OpenCV Telea on the same faces and masks is the reference line.

Per point: hole PSNR, SSIM and PSNR (mean and 95% CI), the step evaluations it cost (steps x
restarts) and the measured seconds per face: the start (e.g. the encoder's forward) + the search
up to s steps + G, blend and refiner, divided by the batch size (run with batch size 1 for the
single-image latency).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..core.pipeline import Pipeline
from ..errors import EdgefillError
from ..imaging import metrics
from ..imaging.images import from_model
from ..imaging.diffusion import opencv_inpaint
from .evaluate import mask_batch, masked_input, summarise


@dataclass(frozen=True)
class CurveConfig:
    """steps: the step counts (0 allowed); starts: start names (random, encoder); mask: one kind;
    limit: first N faces (0: all); batch_size: images per search; seed: masks and random rows."""

    steps: tuple[int, ...] = (0, 5, 10, 20, 50, 100, 200)
    starts: tuple[str, ...] = ("random", "encoder")
    mask: str = "center"
    limit: int = 0
    batch_size: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.steps or min(self.steps) < 0:
            raise EdgefillError("--steps-curve takes comma-separated step counts >= 0, e.g. 0,5,10,20")
        bad = [s for s in self.starts if s not in ("random", "encoder")]
        if bad or not self.starts:
            raise EdgefillError(f"--starts takes random and/or encoder, got {','.join(self.starts) or 'nothing'}")


def parse_steps(spec: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted({int(s) for s in spec.split(",") if s.strip()}))
    except ValueError:
        raise EdgefillError(f"--steps-curve takes comma-separated integers, got {spec!r}") from None
    return steps


def _metric_values(out: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    return {"psnr": metrics.psnr(out, truth), "hole_psnr": metrics.hole_psnr(out, truth, masks),
            "ssim": metrics.ssim(out, truth)}


def steps_curve(images: np.ndarray, cfg: CurveConfig, pipeline: Pipeline, progress: bool = True,
                data_info: dict | None = None) -> dict:
    """The curve's JSON report (module docstring) for uint8 RGB faces (N,64,64,3)."""
    n = len(images) if not cfg.limit else min(cfg.limit, len(images))
    truth_all = images[:n]
    record = tuple(sorted({max(s, 1) for s in cfg.steps}))
    starts = {name: pipeline.make_start(name) for name in cfg.starts}
    configs = {name: pipeline.config(start=start.name).replace(steps=max(record), patience=0)
               for name, start in starts.items()}
    values = {name: {s: {k: [] for k in ("psnr", "hole_psnr", "ssim", "seconds")} for s in cfg.steps}
              for name in starts}
    telea = {k: [] for k in ("psnr", "hole_psnr", "ssim")}
    total = sum(configs[name].steps * n for name in starts)
    bar = tqdm(total=total, desc="steps curve", unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for lo in range(0, n, cfg.batch_size):
            idx = np.arange(lo, min(lo + cfg.batch_size, n))
            truth = truth_all[idx]
            masks = mask_batch(cfg.mask, idx, cfg.seed)
            masked = masked_input(truth, masks)
            for k, v in _metric_values(opencv_inpaint(masked, masks, "telea"), truth, masks).items():
                telea[k].append(v)
            for name, start in starts.items():
                scfg = configs[name]
                t0 = time.perf_counter()
                z0 = pipeline.start(masked, masks, scfg, start, seeds=cfg.seed + idx)
                t_start = time.perf_counter() - t0
                y, W = pipeline.problem(masked, masks)
                res = pipeline.search(y, W, scfg, z0, progress=bar.update, record_at=record)
                for s in cfg.steps:
                    t1 = time.perf_counter()
                    if s == 0 and scfg.restarts == 1:
                        z, searched = z0, 0.0
                    else:
                        z, searched = res.extra["z_at"][max(s, 1)], res.extra["seconds_at"][max(s, 1)]
                    generated = from_model(pipeline.engine.forward("generator", z))
                    out = pipeline.blend(masked, generated, masks, scfg.blend)
                    if pipeline.has_refiner:
                        out = pipeline.refine(out, masks)
                    seconds = t_start + searched + time.perf_counter() - t1
                    for k, v in _metric_values(out, truth, masks).items():
                        values[name][s][k].append(v)
                    values[name][s]["seconds"].append(np.full(len(idx), seconds / len(idx)))
    finally:
        bar.close()
    curve = {}
    for name in starts:
        scfg = configs[name]
        rows = []
        for s in cfg.steps:
            v = {k: np.concatenate(a) for k, a in values[name][s].items()}
            row = {"steps": s, "restarts": scfg.restarts, "step_evaluations": max(s, 0) * scfg.restarts,
                   **summarise({k: v[k] for k in ("psnr", "hole_psnr", "ssim")}),
                   "seconds_per_face": float(np.median(v["seconds"])),
                   "seconds_per_face_mean": float(np.mean(v["seconds"]))}
            rows.append(row)
        curve[name] = {"search": scfg.to_dict(), "points": rows}
    return {
        "curve": curve,
        "telea": summarise({k: np.concatenate(a) for k, a in telea.items()}),
        "settings": {"mask": cfg.mask, "steps": list(cfg.steps), "starts": list(cfg.starts), "images": int(n),
                     "batch_size": cfg.batch_size, "seed": cfg.seed, "backend": pipeline.backend,
                     "provider": pipeline.provider, "bundle": str(pipeline.bundle.root),
                     "refined": pipeline.has_refiner,
                     "finish": "G(z) -> the bundle's blend -> refiner (when the bundle has one)",
                     "seconds": "start + search to s steps + G, blend, refiner; per face = batch time / batch size",
                     **(data_info or {})},
    }


def curve_table(report: dict) -> str:
    """A markdown table: one row per (start, steps)."""
    lines = ["| start | steps x restarts | hole PSNR dB [95% CI] | SSIM [95% CI] | s/face |", "|---|---:|---:|---:|---:|"]
    for name, c in report["curve"].items():
        for p in c["points"]:
            lines.append(f"| {name} | {p['steps']} x {p['restarts']} | {p['hole_psnr']:.2f} "
                         f"[{p['hole_psnr_ci'][0]:.2f}, {p['hole_psnr_ci'][1]:.2f}] | {p['ssim']:.3f} "
                         f"[{p['ssim_ci'][0]:.3f}, {p['ssim_ci'][1]:.3f}] | {p['seconds_per_face']:.3f} |")
    t = report["telea"]
    lines.append(f"| telea | - | {t['hole_psnr']:.2f} [{t['hole_psnr_ci'][0]:.2f}, {t['hole_psnr_ci'][1]:.2f}] | "
                 f"{t['ssim']:.3f} [{t['ssim_ci'][0]:.3f}, {t['ssim_ci'][1]:.3f}] | - |")
    return "\n".join(lines) + "\n"
