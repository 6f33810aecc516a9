"""evaluate(): every method on every mask kind, batch by batch, into the report, the per-image
values and the grid rows (the package docstring says what each number means)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import EdgefillError
from ...imaging import metrics
from ...imaging.diffusion import INPAINT_RADIUS
from .config import (BASELINE_METHOD, BLEND_DESCRIPTION, HOLE_GREY, METRICS, REFINER_METHODS, SAMPLED_METHOD,
                     EvaluateConfig, mask_batch, masked_input)
from .methods import run_batch
from .realism import HOLE_SWD_DESCRIPTION, REALISM_IMAGES, hole_realism
from .statistics import SAMPLE_STATS, finite_or_none, paired_difference, sample_statistics, summarise, summarise_samples


@dataclass
class Evaluation:
    """report: the JSON document ({"results", ["samples",] "bundle", "settings"}); per_image[mask]
    [method][metric]: float64 (n,); grid_rows[mask]: {"input", method..., "truth"} -> uint8
    (k,64,64,3) for the grid; with K samples, per_sample[mask][statistic]: float64 (n,) and
    sample_rows[mask]: {"input", "truth"} -> uint8 (k,64,64,3), {"searched", "final"} -> uint8
    (k,K,64,64,3) for the samples grid."""

    report: dict
    per_image: dict = field(default_factory=dict)
    grid_rows: dict = field(default_factory=dict)
    per_sample: dict = field(default_factory=dict)
    sample_rows: dict = field(default_factory=dict)



def bundle_summary(inpainter) -> dict | None:
    """What the JSON says about the weights: path, toolkit version, model configs, precision,
    search defaults and the training record of the bundle (None without a bundle)."""
    if inpainter is None:
        return None
    man = inpainter.bundle.manifest
    return {"path": str(inpainter.bundle.root), "toolkit_version": man.get("toolkit_version"),
            "models": man.get("models"), "precision": man.get("precision", "fp32"), "search": man.get("search"),
            "training": man.get("training")}


def evaluate(images: np.ndarray, cfg: EvaluateConfig, inpainter=None, data_info: dict | None = None,
             progress: bool = True, baseline=None) -> Evaluation:
    """Evaluate cfg.methods on uint8 RGB images (N,64,64,3) under every mask type of cfg.

    inpainter: a runtime Inpainter (needed for the lsgan and +refiner methods). baseline: a second
    Inpainter whose refiner makes the telea+baseline row (needed for it). data_info: extra
    settings recorded as they are (data path, sha256, ...).
    """
    from tqdm import tqdm

    if cfg.needs_bundle and inpainter is None:
        raise EdgefillError("the lsgan and +refiner methods need a bundle (or choose --methods telea,ns)")
    if BASELINE_METHOD in cfg.methods:
        if baseline is None:
            raise EdgefillError(f"{BASELINE_METHOD} needs a baseline bundle (--baseline-bundle)")
        if not baseline.bundle.has_graph("refiner"):
            raise EdgefillError(f"baseline bundle {baseline.bundle.root} has no refiner")
    refined = [m for m in cfg.methods if m in REFINER_METHODS]
    if refined and inpainter is not None and not inpainter.bundle.has_graph("refiner"):
        raise EdgefillError(f"bundle {inpainter.bundle.root} has no refiner; drop {', '.join(refined)} "
                            f"from --methods")
    images = np.ascontiguousarray(images[: cfg.limit] if cfg.limit > 0 else images)
    n = len(images)
    search_cfg, search_start = None, None
    if inpainter is not None and cfg.needs_search:
        search_start = inpainter.pipeline.make_start(cfg.init)
        search_cfg = inpainter.config_for(steps=cfg.steps, restarts=cfg.restarts, start=search_start.name,
                                          sample_spread=cfg.sample_spread, sample_steps=cfg.sample_steps)
    per_image: dict = {}
    per_sample: dict = {}
    realism: dict = {}
    grid: dict = {}
    sample_grid: dict = {}
    bar = tqdm(total=n * len(cfg.masks), desc="evaluate", unit="img", disable=not progress, leave=False)
    try:
        for kind in cfg.masks:
            values = {m: {k: [] for k in METRICS} for m in cfg.methods}
            sample_values: dict = {k: [] for k in SAMPLE_STATS}
            truth_seam = []
            kept: dict = {"truth": [], "masks": [], **{m: [] for m in cfg.methods}, "searched": [], "final": []}
            grid[kind] = {}
            sample_grid[kind] = {}
            for start in range(0, n, cfg.batch_size):
                idx = np.arange(start, min(n, start + cfg.batch_size))
                truth = images[idx]
                masks = mask_batch(kind, idx, cfg.seed)
                steps_done = [0]

                def on_step(k: int, kind=kind) -> None:  # search progress inside a long batch
                    steps_done[0] += k
                    if steps_done[0] % 10 == 0:
                        bar.set_postfix(mask=kind, step=f"{steps_done[0]}/{search_cfg.steps}")

                batch = run_batch(truth, masks, cfg.methods, inpainter, search_cfg, cfg.seed + idx,
                                  progress=on_step if progress else None, start=search_start, samples=cfg.samples,
                                  baseline=baseline)
                outputs = batch.outputs
                truth_seam.append(metrics.seam(truth, masks))
                keep = max(0, min(len(idx), REALISM_IMAGES - start))  # images of this batch kept for hole_swd
                kept["truth"].append(truth[:keep])
                kept["masks"].append(masks[:keep])
                for method, out in outputs.items():
                    kept[method].append(out[:keep])
                    values[method]["psnr"].append(metrics.psnr(out, truth))
                    values[method]["hole_psnr"].append(metrics.hole_psnr(out, truth, masks))
                    values[method]["ssim"].append(metrics.ssim(out, truth))
                    values[method]["ssim7"].append(metrics.ssim7(out, truth))
                    values[method]["seam"].append(metrics.seam(out, masks))
                if batch.samples is not None:
                    stats = sample_statistics(truth, masks, batch.samples.searched, batch.samples.final)
                    for key, v in stats.items():
                        sample_values[key].append(v)
                    kept["searched"].append(batch.samples.searched[:keep])
                    kept["final"].append(batch.samples.final[:keep])
                take = max(0, cfg.grid_rows - start)
                if take:
                    _extend(grid[kind], "input", masked_input(truth[:take], masks[:take]))
                    for method in cfg.methods:
                        _extend(grid[kind], method, outputs[method][:take])
                    _extend(grid[kind], "truth", truth[:take])
                    if batch.samples is not None:
                        _extend(sample_grid[kind], "input", masked_input(truth[:take], masks[:take]))
                        _extend(sample_grid[kind], "truth", truth[:take])
                        _extend(sample_grid[kind], "searched", batch.samples.searched[:take])
                        _extend(sample_grid[kind], "final", batch.samples.final[:take])
                bar.set_postfix(mask=kind, refresh=False)
                bar.update(len(idx))
            per_image[kind] = {m: {k: np.concatenate(v[k]) for k in METRICS} for m, v in values.items()}
            per_image[kind]["truth"] = {"seam": np.concatenate(truth_seam)}
            joined = {key: np.concatenate(v) for key, v in kept.items() if v}
            realism[kind] = hole_realism(joined, cfg.methods, cfg.seed)
            if cfg.samples > 1:
                per_sample[kind] = {k: np.concatenate(v) if v else np.zeros(0) for k, v in sample_values.items()}
    finally:
        bar.close()
    results = [{"mask": kind, "method": method, **summarise(per_image[kind][method]),
                "seam_truth": finite_or_none(float(np.nanmean(per_image[kind]["truth"]["seam"])))
                if np.isfinite(per_image[kind]["truth"]["seam"]).any() else None,
                "hole_swd": realism[kind][method], "hole_swd_floor": realism[kind]["floor"],
                "hole_swd_levels": realism[kind]["levels"][method],
                "hole_swd_floor_levels": realism[kind]["levels"]["floor"]}
               for kind in cfg.masks for method in cfg.methods]
    settings = {
        "masks": list(cfg.masks), "methods": list(cfg.methods), "limit": cfg.limit, "images": n,
        "seed": cfg.seed, "batch_size": cfg.batch_size,
        "mask_rng": "np.random.default_rng([seed, crc32(mask), image index])",
        "steps": search_cfg.steps if search_cfg else None,
        "restarts": search_cfg.restarts if search_cfg else None,
        "search": search_cfg.to_dict() if search_cfg else None,
        "prior": search_cfg.prior if search_cfg else None,
        "blend": {m: BLEND_DESCRIPTION[m] for m in cfg.methods if m in BLEND_DESCRIPTION},
        "init": cfg.init, "start": search_start.name if search_start is not None else None,
        "search_seed": "image i's random restarts start from initial_z(1, restarts, z_dim, seed + i)",
        "samples": cfg.samples,
        "backend": getattr(inpainter, "backend", None) if search_cfg else None,
        "provider": getattr(inpainter, "provider", None) if cfg.needs_bundle else None,
        "refine": inpainter.pipeline.refine_config.to_dict() if cfg.needs_bundle else None,
        "opencv_inpaint_radius": INPAINT_RADIUS,
        "hole_input": f"hole pixels set to {HOLE_GREY} before any method runs",
        "metrics": {"psnr": f"10 log10(255^2/MSE) on uint8 RGB, capped at {metrics.PSNR_CAP:g} dB",
                    "hole_psnr": "PSNR over the missing pixels only (all channels)",
                    "ssim": "Wang 2004; skimage gaussian_weights=True, sigma 1.5, population covariance, "
                            "data_range 255, valid region, mean over channels",
                    "ssim7": "scikit-image's default structural_similarity(channel_axis=-1, data_range=255): 7x7 "
                             "uniform window, sample covariance, valid region, mean over channels (the convention "
                             "of issue 20's SSIM goal)",
                    "seam": "mean |step| (0..255, mean over channels) between 4-neighbour pairs across the hole "
                            "border; seam_truth: the truth's own step there",
                    "ci": "95% Student-t interval of the mean",
                    "hole_swd": HOLE_SWD_DESCRIPTION},
        **(data_info or {}),
    }
    report: dict = {"results": results}
    if SAMPLED_METHOD in cfg.methods and len(cfg.methods) > 1:
        report["paired"] = [paired_difference(kind, method, per_image[kind][SAMPLED_METHOD], per_image[kind][method])
                            for kind in cfg.masks for method in cfg.methods if method != SAMPLED_METHOD]
        settings["metrics"]["paired"] = (f"per image, {SAMPLED_METHOD} minus the method on the same image and mask: "
                                         "mean and 95% Student-t interval of the differences; product_better: the "
                                         f"share of images where {SAMPLED_METHOD}'s hole PSNR is higher")
    if cfg.samples > 1:
        report["samples"] = [{**summarise_samples(kind, cfg.samples, per_sample[kind]),
                              "hole_swd": realism[kind]["samples"]} for kind in cfg.masks]
        settings["sample_spread"] = search_cfg.sample_spread
        settings["sample_steps"] = search_cfg.steps_of_samples
        settings["sample_starts"] = ("sample 0: the single output's start; sample k >= 1 from "
                                     "runtime.core.starts.sample_seed_rng(seed + i, k)")
        settings["metrics"]["samples"] = {
            "best_of_k": "per image, the best of the K samples against the truth, each metric picking its own "
                         "(an oracle)",
            "mean_of_k": "per image, the mean over the K samples",
            "pairwise_hole_psnr": f"mean hole PSNR over the K(K-1)/2 pairs of an image's samples, lower = more "
                                  f"different; identical pairs count as {metrics.PSNR_CAP:g} dB (the cap)",
            "hole_std": "per-pixel standard deviation over the K samples (0..255, population), mean over the hole "
                        "and channels",
            "before_refiner": "the blended search results (the bundle's blend)",
            "after_refiner": "the final outputs (lsgan+refiner)"}
    report.update({"bundle": bundle_summary(inpainter if cfg.needs_bundle else None), "settings": settings})
    if BASELINE_METHOD in cfg.methods:
        report["baseline_bundle"] = bundle_summary(baseline)
    return Evaluation(report=report, per_image=per_image, grid_rows=grid, per_sample=per_sample,
                      sample_rows={k: v for k, v in sample_grid.items() if v})


def _extend(d: dict, key: str, arr: np.ndarray) -> None:
    d[key] = arr if key not in d else np.concatenate([d[key], arr])
