"""Per-image values to report fields: means with 95% intervals, the paired differences against
the product, and the statistics of K samples per hole (best-of-K, mean-of-K, diversity)."""
from __future__ import annotations

import math

import numpy as np

from ...imaging import metrics
from .config import METRICS, SAMPLED_METHOD


def finite_or_none(x: float) -> float | None:
    """x as a float, or None where it is NaN or infinite (JSON has neither)."""
    return float(x) if math.isfinite(x) else None


def _mean_ci(values: np.ndarray) -> tuple[float | None, list]:
    mean, lo, hi, _ = metrics.mean_ci(values)
    return finite_or_none(mean), [finite_or_none(lo), finite_or_none(hi)]


def summarise(values: dict[str, np.ndarray]) -> dict:
    """{metric: per-image values} -> the result fields: n, metric means and [lo, hi] 95% CIs
    (for the METRICS present in `values`, in METRICS order)."""
    row: dict = {"n": int(len(next(iter(values.values()))))}
    cis = {}
    for name in (m for m in METRICS if m in values):
        row[name], cis[f"{name}_ci"] = _mean_ci(values[name])
    row.update(cis)
    return row


def paired_difference(kind: str, method: str, product: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict:
    """One "paired" entry: {mask, method, n, hole_psnr_diff, hole_psnr_diff_ci, ssim_diff,
    ssim_diff_ci, product_better}. product / other: {metric: float64 (n,)} per image, the same
    images and masks in the same order; differences are product minus other (dB, SSIM units);
    images without a hole (NaN hole PSNR) are left out of the hole PSNR figures."""
    d_hole = product["hole_psnr"] - other["hole_psnr"]
    d_hole = d_hole[np.isfinite(d_hole)]
    row: dict = {"mask": kind, "method": method, "n": int(d_hole.size)}
    row["hole_psnr_diff"], row["hole_psnr_diff_ci"] = _mean_ci(d_hole)
    row["ssim_diff"], row["ssim_diff_ci"] = _mean_ci(product["ssim"] - other["ssim"])
    row["product_better"] = float(np.mean(d_hole > 0)) if d_hole.size else None
    return row


# per-image statistics of K samples: (JSON group, JSON key) for each
SAMPLE_STATS = {
    "best_of_k_hole_psnr": ("best_of_k", "hole_psnr"), "best_of_k_ssim": ("best_of_k", "ssim"),
    "mean_of_k_hole_psnr": ("mean_of_k", "hole_psnr"), "mean_of_k_ssim": ("mean_of_k", "ssim"),
    "before_refiner_pairwise_hole_psnr": ("before_refiner", "pairwise_hole_psnr"),
    "before_refiner_hole_std": ("before_refiner", "hole_std"),
    "after_refiner_pairwise_hole_psnr": ("after_refiner", "pairwise_hole_psnr"),
    "after_refiner_hole_std": ("after_refiner", "hole_std"),
}


def sample_statistics(truth: np.ndarray, masks: np.ndarray, searched: np.ndarray, final: np.ndarray) -> dict:
    """Per-image statistics of K samples (module docstring): truth uint8 (N,64,64,3), masks (N,64,64),
    searched / final uint8 (N,K,64,64,3) -> {SAMPLE_STATS key: float64 (N,)}."""
    n, k = final.shape[:2]
    flat = final.reshape(n * k, *final.shape[2:])
    truth_k, masks_k = np.repeat(truth, k, axis=0), np.repeat(masks, k, axis=0)
    hole = np.asarray(metrics.hole_psnr(flat, truth_k, masks_k)).reshape(n, k)
    ssim = np.asarray(metrics.ssim(flat, truth_k)).reshape(n, k)
    return {"best_of_k_hole_psnr": hole.max(axis=1), "best_of_k_ssim": ssim.max(axis=1),
            "mean_of_k_hole_psnr": hole.mean(axis=1), "mean_of_k_ssim": ssim.mean(axis=1),
            "before_refiner_pairwise_hole_psnr": metrics.pairwise_hole_psnr(searched, masks),
            "before_refiner_hole_std": metrics.hole_std(searched, masks),
            "after_refiner_pairwise_hole_psnr": metrics.pairwise_hole_psnr(final, masks),
            "after_refiner_hole_std": metrics.hole_std(final, masks)}



def summarise_samples(kind: str, k: int, values: dict[str, np.ndarray]) -> dict:
    """One mask kind's "samples" entry: {mask, method, samples, n, best_of_k, mean_of_k, diversity:
    {before_refiner, after_refiner}}, each metric a mean and its [lo, hi] 95% CI."""
    groups: dict = {"best_of_k": {}, "mean_of_k": {}, "before_refiner": {}, "after_refiner": {}}
    for key, (group, name) in SAMPLE_STATS.items():
        groups[group][name], groups[group][f"{name}_ci"] = _mean_ci(values[key])
    return {"mask": kind, "method": SAMPLED_METHOD, "samples": k, "n": int(len(values["best_of_k_ssim"])),
            "best_of_k": groups["best_of_k"], "mean_of_k": groups["mean_of_k"],
            "diversity": {"before_refiner": groups["before_refiner"], "after_refiner": groups["after_refiner"]}}
