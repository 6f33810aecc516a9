"""`edgefill train tune-search`: choose the search defaults on a validation split, never on test data.

The validation images are the GAN run's own hold-out (`--val-fraction` of its training data,
same seed), so neither the GAN nor the refiner trained on them and test.npz is never touched.
Coordinate-wise search from the current defaults: Adam learning rate, then lambda (the prior
weight), then the prior form, then the blending (paste vs Poisson), each time keeping the value
with the best mean hole PSNR over the tuning masks (SSIM breaks ties). Every candidate's numbers
are recorded in the output JSON, so the choice can be checked.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgefill.runtime.imaging import metrics
from edgefill.runtime.atomic import write_json
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.frontends.evaluate import mask_batch, run_methods
from edgefill.runtime.core.search_config import SearchConfig

from .checkpoint import load_checkpoint
from .config import GanTrainConfig, nested_from_dict
from .data import load_faces, split_validation

GRID = {"lr": (0.01, 0.03, 0.1), "lam": (0.0, 0.01, 0.1, 1.0), "prior": ("lsgan", "log")}
TUNE_SEED = 7  # masks and starts for tuning differ from the evaluation's seed 0


def validation_images(data: str, gan_run: str, limit: int) -> np.ndarray:
    """The GAN run's held-out images (uint8 (N,64,64,3)); an error if it held none out."""
    ck = load_checkpoint(gan_run, kind="gan")
    cfg = nested_from_dict(GanTrainConfig, ck.config)
    if cfg.val_fraction <= 0:
        raise EdgefillError(f"{gan_run} was trained without --val-fraction: no held-out images to tune on")
    faces = load_faces(data, limit=cfg.limit, progress=False)
    _, val_idx = split_validation(len(faces.images), cfg.val_fraction, cfg.seed)
    return faces.images[val_idx[:limit] if limit > 0 else val_idx]


def score(images: np.ndarray, masks_kinds: tuple[str, ...], inpainter, cfg: SearchConfig) -> dict:
    """Mean hole PSNR and SSIM of lsgan (paste) and lsgan+poisson over the tuning masks."""
    idx = np.arange(len(images))
    seeds = TUNE_SEED + idx
    out = {"paste": {"hole_psnr": [], "ssim": []}, "poisson": {"hole_psnr": [], "ssim": []}}
    for kind in masks_kinds:
        masks = mask_batch(kind, idx, TUNE_SEED)
        res = run_methods(images, masks, ("lsgan", "lsgan+poisson"), inpainter, cfg, seeds)
        for blend, method in (("paste", "lsgan"), ("poisson", "lsgan+poisson")):
            out[blend]["hole_psnr"].append(metrics.hole_psnr(res[method], images, masks))
            out[blend]["ssim"].append(metrics.ssim(res[method], images))
    return {b: {k: float(np.mean(np.concatenate(v))) for k, v in d.items()} for b, d in out.items()}


def tune(bundle: str, data: str, gan_run: str, out: str, masks: tuple[str, ...] = ("center", "pattern"),
         limit: int = 64, steps: int | None = None, restarts: int | None = None, progress: bool = True) -> dict:
    from edgefill.runtime.frontends.inpainter import Inpainter

    images = validation_images(data, gan_run, limit)
    inp = Inpainter(bundle)
    best = inp.search_defaults.replace(steps=steps, restarts=restarts)
    trials: list[dict] = []
    cache: dict[tuple, dict] = {}

    def run(cfg: SearchConfig) -> dict:
        key = (cfg.lr, cfg.lam, cfg.prior)
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = score(images, masks, inp, cfg)
            trials.append({"lr": cfg.lr, "lam": cfg.lam, "prior": cfg.prior, **cache[key],
                           "seconds": round(time.perf_counter() - t0, 1)})
        return cache[key]

    def key_of(result: dict, blend: str) -> tuple[float, float]:
        return (result[blend]["hole_psnr"], result[blend]["ssim"])

    todo = sum(len(v) for v in GRID.values())
    bar = tqdm(total=todo, desc="tune search", unit="cfg", disable=not progress)
    for field, values in GRID.items():
        scored = []
        for value in values:
            cand = best.replace(**{field: value})
            scored.append((key_of(run(cand), best.blend), value))
            bar.update(1)
            bar.set_postfix({field: value, "hole_psnr": f"{scored[-1][0][0]:.2f}"})
        best = best.replace(**{field: max(scored)[1]})
    bar.close()
    # coordinate descent can leave a better earlier trial behind (when a default is off the grid):
    # ship the best of ALL trials under the criterion
    top = max(trials, key=lambda t: key_of(t, best.blend))
    best = best.replace(lr=top["lr"], lam=top["lam"], prior=top["prior"])
    final = run(best)
    blend = max(("paste", "poisson"), key=lambda b: key_of(final, b))
    best = best.replace(blend=blend)
    report = {"chosen": best.to_dict(), "chosen_scores": final, "masks": list(masks), "images": int(len(images)),
              "data": str(data), "gan_run": str(gan_run), "split": "the GAN run's validation hold-out",
              "criterion": "mean hole PSNR over the masks (SSIM breaks ties), lsgan paste / poisson",
              "trials": trials}
    write_json(Path(out), report)
    return report
