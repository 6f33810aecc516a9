"""The report's "settings": how an evaluation ran and what each number means, so that a JSON
file read alone says how to reproduce it."""
from __future__ import annotations

from ...imaging import metrics
from ...imaging.diffusion import INPAINT_RADIUS
from ...imaging.masks import HOLE_GREY
from .config import BLEND_DESCRIPTION, SAMPLED_METHOD, EvaluateConfig
from .realism import HOLE_SWD_DESCRIPTION

METRIC_DESCRIPTIONS = {
    "psnr": f"10 log10(255^2/MSE) on uint8 RGB, capped at {metrics.PSNR_CAP:g} dB",
    "hole_psnr": "PSNR over the missing pixels only (all channels)",
    "ssim": "Wang 2004; skimage gaussian_weights=True, sigma 1.5, population covariance, "
            "data_range 255, valid region, mean over channels",
    "ssim7": "scikit-image's default structural_similarity(channel_axis=-1, data_range=255): 7x7 "
             "uniform window, sample covariance, valid region, mean over channels (the convention "
             "of issue 20's SSIM goal)",
    "seam": "mean |step| (0..255, mean over channels) between 4-neighbour pairs across the hole "
            "border; seam_truth: the truth's own step there",
    "ci": "95% Student-t interval of the mean",
    "hole_swd": HOLE_SWD_DESCRIPTION}
PAIRED_DESCRIPTION = (f"per image, {SAMPLED_METHOD} minus the method on the same image and mask: "
                      "mean and 95% Student-t interval of the differences; product_better: the "
                      f"share of images where {SAMPLED_METHOD}'s hole PSNR is higher")
SAMPLE_DESCRIPTIONS = {
    "best_of_k": "per image, the best of the K samples against the truth, each metric picking its own "
                 "(an oracle)",
    "mean_of_k": "per image, the mean over the K samples",
    "pairwise_hole_psnr": f"mean hole PSNR over the K(K-1)/2 pairs of an image's samples, lower = more "
                          f"different; identical pairs count as {metrics.PSNR_CAP:g} dB (the cap)",
    "hole_std": "per-pixel standard deviation over the K samples (0..255, population), mean over the hole "
                "and channels",
    "before_refiner": "the blended search results (the bundle's blend)",
    "after_refiner": "the final outputs (lsgan+refiner)"}


def settings_record(cfg: EvaluateConfig, images: int, search_cfg, search_start, inpainter,
                    data_info: dict | None, paired: bool) -> dict:
    """The "settings" object: cfg, the search as it ran (search_cfg: the SearchConfig, or None
    without a search; search_start: its Start), the runtime's backend, provider and refine
    settings, the metrics' definitions (with "paired" when the report has paired differences,
    "samples" with K > 1), then data_info's entries as they are."""
    settings = {
        "masks": list(cfg.masks), "methods": list(cfg.methods), "limit": cfg.limit, "images": images,
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
        "metrics": dict(METRIC_DESCRIPTIONS),
        **(data_info or {}),
    }
    if paired:
        settings["metrics"]["paired"] = PAIRED_DESCRIPTION
    if cfg.samples > 1:
        settings["sample_spread"] = search_cfg.sample_spread
        settings["sample_steps"] = search_cfg.steps_of_samples
        settings["sample_starts"] = ("sample 0: the single output's start; sample k >= 1 from "
                                     "runtime.core.starts.sample_seed_rng(seed + i, k)")
        settings["metrics"]["samples"] = dict(SAMPLE_DESCRIPTIONS)
    return settings
