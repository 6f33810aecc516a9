"""`edgefill evaluate`: PSNR, hole PSNR and SSIM of every inpainting method on every mask type.

Methods (names are part of the JSON contract), in this order:
    telea          cv2.inpaint(..., radius 3, cv2.INPAINT_TELEA)   (no bundle needed)
    ns             cv2.inpaint(..., radius 3, cv2.INPAINT_NS)      (no bundle needed)
    telea+refiner  the bundle's refiner on Telea's fill: M*y + (1-M)*R(telea[, hole]) (issue 20)
    ns+refiner     the same on NS's fill
    telea+baseline a second bundle's refiner on Telea's fill (`--baseline-bundle B`, only then):
                   with B's refiner trained on Telea's fills, the strong baseline of issue 20
    lsgan          latent search, then paste: M*y + (1-M)*G(z)
    lsgan+poisson  the same search, Poisson-blended (blend.poisson, cv2.seamlessClone)
    lsgan+refiner  the product: the same search, blended as the bundle's defaults say (Poisson
                   for the shipped bundle), then refined: M*y + (1-M)*R(blended[, hole])
The search runs ONCE per batch of images; the three lsgan methods are derived from it. It
starts where the product does (`init` "auto": the bundle's encoder when it has one, with the
bundle's defaults for that start), or from "random"/"encoder" when asked.

telea+refiner / ns+refiner are in the default method set: beside lsgan+refiner they show what
the search adds over "a classical fill, then the same refiner". `--no-baselines` drops only the
plain OpenCV rows (telea, ns): the +refiner rows measure the bundle, so they stay unless
--methods leaves them out (their OpenCV fill is still computed, just not reported). They need a
bundle with a refiner; the default method set leaves every +refiner row out (with a notice)
for a bundle without one. They have ONE output per hole: K different fills need the search.

K samples per hole (`samples` K > 1, `--samples K`): the search of each batch is
Pipeline.run_samples with K (one batched call of N*K problems, the same start and seeds as the
single run), so sample 0 IS the single output and the lsgan rows are derived from it (the
numbers of the method table do not change with K). For lsgan+refiner, per mask kind, mean and
95% CI over the images ("samples" in the JSON, a second markdown table):
    best_of_k      hole PSNR and SSIM of the sample nearest the truth, each metric picking its
                   own best (an oracle: it needs the truth, which inference does not have)
    mean_of_k      hole PSNR and SSIM averaged over the K samples
    diversity      before the refiner (the blended search results) and after (the final
                   outputs): the mean pairwise hole PSNR between an image's K samples (lower =
                   more different; an identical pair counts as 100 dB, the PSNR cap) and the
                   per-pixel standard deviation over the K samples, mean over the hole (0..255)

Every method sees only the masked input (hole pixels set to grey 128 before anything runs), so
no ground truth leaks into the hole. Metrics (runtime.metrics): PSNR over the whole image, PSNR
over the hole, SSIM (`ssim`: the 11x11 Gaussian window of the paper; `ssim7`: scikit-image's
default 7x7 uniform window, the convention issue 20's goal was set in), the seam (the mean step
across the hole's border, 0..255, beside the truth's own step on the same border:
`seam_truth`); per (mask, method): mean and a 95% Student-t
interval over the images. Beside them, one number per (mask, method) over all its images: the
hole's realism, `hole_swd` (HOLE_SWD_DESCRIPTION; `hole_swd_floor`: real faces of other people in
the same holes), which hole PSNR cannot see: the mean of the faces the known pixels allow has the
best PSNR and a blurred, unreal texture; `hole_swd_levels` and `hole_swd_floor_levels` give it per
Laplacian level (64, 32, 16). With K samples, the samples' `hole_swd` before and after the refiner
(the mean over the K sample positions), overall and per level.

Reproducible: the mask of image i under mask type k is drawn from
np.random.default_rng([seed, crc32(k), i]) (independent of --limit, batch size and of the other
mask types); image i's random restarts start from initial_z(1, restarts, z_dim, seed + i) and
the encoder's start depends on image i alone (sample k >= 1 of image i on (seed + i, k) alone:
runtime.core.starts.sample_starts), so the numbers do not depend on --batch-size either. A rerun
with the same data, bundle and settings gives identical numbers.

Paired differences ("paired" in the JSON, a table of its own): with lsgan+refiner and at least one
other method, per mask kind and other method, the product's hole PSNR and SSIM minus that
method's on the same images and masks, mean and 95% CI of the per-image differences, and the
share of images where the product's hole PSNR is higher. Two methods whose own intervals overlap
can still differ clearly image by image: this is the test of which is ahead.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..imaging import metrics
from ..imaging.diffusion import INPAINT_RADIUS, opencv_inpaint
from ..errors import EdgefillError
from ..imaging.masks import MASK_KINDS, resolve_mask

METHODS = ("telea", "ns", "telea+refiner", "ns+refiner", "telea+baseline", "lsgan", "lsgan+poisson", "lsgan+refiner")
BASELINES = ("telea", "ns")
REFINED_BASELINES = ("telea+refiner", "ns+refiner")
LSGAN_METHODS = ("lsgan", "lsgan+poisson", "lsgan+refiner")
REFINER_METHODS = ("telea+refiner", "ns+refiner", "lsgan+refiner")
BASELINE_METHOD = "telea+baseline"  # the --baseline-bundle's refiner on Telea's fill
DEFAULT_METHODS = tuple(m for m in METHODS if m != BASELINE_METHOD)  # without a baseline bundle
SAMPLED_METHOD = "lsgan+refiner"  # what --samples K measures: the product
HOLE_GREY = 128
METRICS = ("psnr", "hole_psnr", "ssim", "ssim7", "seam")
INITS = ("auto", "random", "encoder")
BLEND_DESCRIPTION = {
    "telea+refiner": "cv2 Telea fill, then M*y + (1-M)*R(fill[, hole])",
    "ns+refiner": "cv2 NS fill, then M*y + (1-M)*R(fill[, hole])",
    "telea+baseline": "cv2 Telea fill, then M*y + (1-M)*R_baseline(fill[, hole]), the baseline bundle's refiner",
    "lsgan": "paste: M*y + (1-M)*G(z)",
    "lsgan+poisson": "poisson: cv2.seamlessClone (runtime.blend.poisson)",
    "lsgan+refiner": "the bundle's blend, then M*y + (1-M)*R(blended[, hole])",
}


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation. masks: mask kinds or mask-image paths; methods: a subset of METHODS, in
    METHODS order (telea+baseline needs evaluate()'s baseline); limit: first N images (0 = all);
    steps/restarts: None = the bundle's search defaults; batch_size: images per search batch;
    grid_rows: images per mask type in the grid; samples: K samples per hole of lsgan+refiner (1 =
    the single output only; module docstring)."""

    masks: tuple[str, ...] = ("center",)
    methods: tuple[str, ...] = DEFAULT_METHODS
    limit: int = 0
    seed: int = 0
    steps: int | None = None
    restarts: int | None = None
    batch_size: int = 64
    grid_rows: int = 4
    init: str = "auto"
    samples: int = 1
    sample_spread: float | None = None
    sample_steps: int | None = None

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise EdgefillError(f"--init must be one of {', '.join(INITS)}, not {self.init!r}")
        if not self.masks:
            raise EdgefillError("--mask: give at least one mask type")
        if not self.methods:
            raise EdgefillError("no methods to evaluate")
        for m in self.methods:
            if m not in METHODS:
                raise EdgefillError(f"unknown method {m!r}; use any of {', '.join(METHODS)}")
        if self.batch_size < 1 or self.limit < 0:
            raise EdgefillError("batch size must be >= 1 and limit >= 0")
        from .inpainter import MAX_SAMPLES

        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or \
                not 1 <= self.samples <= MAX_SAMPLES:
            raise EdgefillError(f"--samples must be 1..{MAX_SAMPLES}, got {self.samples!r}")
        if self.samples > 1 and SAMPLED_METHOD not in self.methods:
            raise EdgefillError(f"--samples {self.samples} measures {SAMPLED_METHOD} (the product), "
                                f"which is not among the methods")

    @property
    def needs_bundle(self) -> bool:
        return any(m in LSGAN_METHODS or m in REFINED_BASELINES for m in self.methods)

    @property
    def needs_search(self) -> bool:
        return any(m in LSGAN_METHODS for m in self.methods)


def parse_list(spec: str) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'), order kept, duplicates dropped."""
    out: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return tuple(out)


def parse_masks(spec: str) -> tuple[str, ...]:
    """--mask: comma-separated mask kinds or mask-image paths, each checked."""
    masks = parse_list(spec)
    if not masks:
        raise EdgefillError("--mask: give at least one mask type")
    for m in masks:
        if m not in MASK_KINDS and not Path(m).is_file():
            raise EdgefillError(f"--mask {m!r} is neither a mask kind ({', '.join(MASK_KINDS)}) nor an existing file")
    return masks


def select_methods(spec: str | None, baselines: bool, baseline_bundle: bool = False) -> tuple[str, ...]:
    """--methods (None: all; telea+baseline only with a baseline bundle) minus the plain OpenCV
    rows (telea, ns) when baselines is False (the +refiner rows stay: module docstring); METHODS
    order."""
    chosen = parse_list(spec) if spec else (METHODS if baseline_bundle else DEFAULT_METHODS)
    for m in chosen:
        if m not in METHODS:
            raise EdgefillError(f"unknown method {m!r}; use any of {', '.join(METHODS)}")
    if BASELINE_METHOD in chosen and not baseline_bundle:
        raise EdgefillError(f"{BASELINE_METHOD} needs --baseline-bundle (a bundle whose refiner was trained on "
                            f"Telea's fills)")
    if not baselines:
        chosen = tuple(m for m in chosen if m not in BASELINES)
    if not chosen:
        raise EdgefillError("no methods left to evaluate (--no-baselines removed them all)")
    return tuple(m for m in METHODS if m in chosen)


def mask_batch(kind: str, indices: np.ndarray, seed: int) -> np.ndarray:
    """uint8 (len(indices),64,64) masks, 255 = fill: image i's mask from rng([seed, crc32(kind), i])."""
    key = zlib.crc32(kind.encode("utf-8"))
    return np.stack([resolve_mask(kind, np.random.default_rng([seed, key, int(i)])) for i in indices])


def masked_input(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """uint8 (N,64,64,3) with the hole (mask >= 128) set to grey 128: all any method may see."""
    return np.where((masks >= 128)[..., None], np.uint8(HOLE_GREY), images).astype(np.uint8)


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


@dataclass
class BatchOutputs:
    """One batch's outputs: outputs[method] uint8 (N,64,64,3); samples: the lsgan+refiner
    SampleSet (runtime.core.pipeline) when K > 1, else None."""

    outputs: dict
    samples: object = None


def bundle_summary(inpainter) -> dict | None:
    """What the JSON says about the weights: path, toolkit version, model configs, precision,
    search defaults and the training record of the bundle (None without a bundle)."""
    if inpainter is None:
        return None
    man = inpainter.bundle.manifest
    return {"path": str(inpainter.bundle.root), "toolkit_version": man.get("toolkit_version"),
            "models": man.get("models"), "precision": man.get("precision", "fp32"), "search": man.get("search"),
            "training": man.get("training")}


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _mean_ci(values: np.ndarray) -> tuple[float | None, list]:
    mean, lo, hi, _ = metrics.mean_ci(values)
    return _finite_or_none(mean), [_finite_or_none(lo), _finite_or_none(hi)]


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


REALISM_IMAGES = 2000  # hole SWD over at most the first 2000 images of a mask kind (their outputs are kept in memory)
HOLE_SWD_DESCRIPTION = (
    "realism of the hole: the multi-scale sliced Wasserstein distance (x1e3, lower = closer to real faces; "
    "runtime.imaging.swd.hole_sliced_wasserstein) between the 7x7 neighbourhoods each method's outputs put in "
    "their holes and those of the true faces in the same holes (Laplacian levels 64/32/16, 64 window centres "
    f"per image and level drawn from the hole, seeded by --seed), over the first {REALISM_IMAGES} images of a "
    "mask kind (all of them when fewer): one number, no interval. hole_swd_floor: real faces of other people (the truths shifted by one image) against the "
    "truths in the same holes, the finite-sample floor. A blurred fill scores high, a sharp fill with real "
    "faces' texture near the floor; hole PSNR rewards the opposite (the mean of the faces the known pixels "
    "allow). hole_swd_levels: the same per Laplacian level (64: the finest texture, 32: features a few "
    "pixels across, 16: layout and colour); the fine level also falls when texture that is wrong for the face "
    "is added (another face's detail, matched noise: docs/model.md, Session 46), so read it with the pictures. "
    "samples: the mean over the K sample positions of each position's hole SWD (before the refiner: "
    "the blended search results; after: the final outputs), overall and per level")


def hole_realism(kept: dict, methods: tuple[str, ...], seed: int) -> dict:
    """One mask kind's hole SWD (HOLE_SWD_DESCRIPTION). kept: "truth" uint8 (N,64,64,3), "masks"
    uint8 (N,64,64), each method's outputs uint8 (N,64,64,3) and, with K samples, "searched" and
    "final" uint8 (N,K,64,64,3) -> {method: float | None, "floor": float | None, "levels":
    {method or "floor": {"64", "32", "16"} per Laplacian level}, "samples": {"before_refiner",
    "after_refiner", "before_refiner_levels", "after_refiner_levels"} or None}; None where no image
    has a hole (or, for the floor, fewer than 2 images)."""
    from ..imaging.swd import HoleRealism

    truth = kept["truth"]
    realism = HoleRealism(truth, kept["masks"], seed=seed)  # the truths' side computed once

    def swd(outputs: np.ndarray) -> dict[str, float | None]:
        return {k: _finite_or_none(v) for k, v in realism.score(outputs).items()}

    scores = {m: swd(kept[m]) for m in methods}
    scores["floor"] = swd(np.roll(truth, 1, axis=0)) if len(truth) > 1 else None
    out: dict = {m: None if sc is None else sc["swd"] for m, sc in scores.items()}
    out["levels"] = {m: _levels(sc) for m, sc in scores.items()}
    out["samples"] = None
    if "final" in kept:
        def mean_over_positions(stage: str) -> dict[str, float | None]:
            per = [swd(np.ascontiguousarray(kept[stage][:, j])) for j in range(kept[stage].shape[1])]
            return {k: None if any(p[k] is None for p in per) else float(np.mean([p[k] for p in per]))
                    for k in per[0]}

        before, after = mean_over_positions("searched"), mean_over_positions("final")
        out["samples"] = {"before_refiner": before["swd"], "after_refiner": after["swd"],
                          "before_refiner_levels": _levels(before), "after_refiner_levels": _levels(after)}
    return out


def _levels(score: dict | None) -> dict[str, float | None] | None:
    """HoleRealism.score's {"swd64", "swd32", "swd16", ...} -> {"64", "32", "16"} (None stays None)."""
    return None if score is None else {k[3:]: v for k, v in score.items() if k != "swd"}


def summarise_samples(kind: str, k: int, values: dict[str, np.ndarray]) -> dict:
    """One mask kind's "samples" entry: {mask, method, samples, n, best_of_k, mean_of_k, diversity:
    {before_refiner, after_refiner}}, each metric a mean and its [lo, hi] 95% CI."""
    groups: dict = {"best_of_k": {}, "mean_of_k": {}, "before_refiner": {}, "after_refiner": {}}
    for key, (group, name) in SAMPLE_STATS.items():
        groups[group][name], groups[group][f"{name}_ci"] = _mean_ci(values[key])
    return {"mask": kind, "method": SAMPLED_METHOD, "samples": k, "n": int(len(values["best_of_k_ssim"])),
            "best_of_k": groups["best_of_k"], "mean_of_k": groups["mean_of_k"],
            "diversity": {"before_refiner": groups["before_refiner"], "after_refiner": groups["after_refiner"]}}


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
                "seam_truth": _finite_or_none(float(np.nanmean(per_image[kind]["truth"]["seam"])))
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


def run_methods(truth: np.ndarray, masks: np.ndarray, methods: tuple[str, ...], inpainter, search_cfg,
                seeds: np.ndarray, progress=None, start=None, baseline=None) -> dict[str, np.ndarray]:
    """Every method's uint8 (N,64,64,3) output for one batch (run_batch with one sample)."""
    return run_batch(truth, masks, methods, inpainter, search_cfg, seeds, progress, start, baseline=baseline).outputs


def run_batch(truth: np.ndarray, masks: np.ndarray, methods: tuple[str, ...], inpainter, search_cfg,
              seeds: np.ndarray, progress=None, start=None, samples: int = 1, baseline=None) -> BatchOutputs:
    """Every method's uint8 (N,64,64,3) output for one batch; the search runs once, if at all.
    baseline: the Inpainter whose refiner makes telea+baseline (only with that method).
    start: the pipeline's Start (None: RandomStart); seeds (N,): image i's random restarts start
    from initial_z(1, restarts, z_dim, seeds[i]), so a result does not depend on the batch it was
    searched in. progress: called with 1 after every search step. samples K > 1: that one search
    is Pipeline.run_samples (K per image, the same start and seeds), the lsgan rows come from
    sample 0 (the single output) and BatchOutputs.samples holds the K samples."""
    from ..imaging import blend
    from ..imaging.images import from_model

    masked = masked_input(truth, masks)
    out: dict[str, np.ndarray] = {}
    fills: dict[str, np.ndarray] = {}
    for m in methods:
        if m in BASELINES or m in REFINED_BASELINES or m == BASELINE_METHOD:
            base = m.split("+")[0]
            if base not in fills:
                fills[base] = opencv_inpaint(masked, masks, base)
            refiner = baseline if m == BASELINE_METHOD else inpainter
            out[m] = fills[base] if m == base else refiner.refine(fills[base], masks)
    sset = None
    if any(m in LSGAN_METHODS for m in methods):
        if samples > 1:
            sset = inpainter.pipeline.run_samples(masked, masks, search_cfg, samples=samples, start=start,
                                                  seeds=[int(s) for s in seeds], refine=SAMPLED_METHOD in methods,
                                                  progress=progress)
            first = np.arange(len(masked)) * samples  # sample 0 of each image (start order, image-major)
            generated = from_model(sset.batch.search.images[first])
        else:
            z0 = inpainter.pipeline.start(masked, masks, search_cfg, start, seeds)
            result = inpainter.search(masked, masks, config=search_cfg, z0=z0, progress=progress or False)
            generated = from_model(result.images)
        pasted = blend.paste(masked, generated, masks)
        if "lsgan" in methods:
            out["lsgan"] = pasted
        if "lsgan+poisson" in methods:
            out["lsgan+poisson"] = blend.poisson(masked, generated, masks)
        if "lsgan+refiner" in methods:
            if sset is not None:  # sample 0 is the single output (Pipeline.run_samples)
                out["lsgan+refiner"] = sset.batch.final[first]
            else:
                blended = out.get(f"lsgan+{search_cfg.blend}") if search_cfg.blend == "poisson" else pasted
                if blended is None:
                    blended = blend.blend(search_cfg.blend, masked, generated, masks)
                out["lsgan+refiner"] = inpainter.refine(blended, masks)
    return BatchOutputs(outputs={m: out[m] for m in methods}, samples=sset)


def _cell(row: dict, name: str, fmt: str) -> str:
    mean, (lo, hi) = row[name], row[f"{name}_ci"]
    if mean is None:
        return "n/a"
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _number(value: float | None, reference: float | None) -> str:
    """'12.3 (45.6)': a value with its reference (the truth's seam, the realism floor) in brackets."""
    text = "n/a" if value is None else f"{value:.1f}"
    return text if reference is None else f"{text} ({reference:.1f})"


def _ssim7(row: dict) -> str:
    """A result row's SSIM7 mean, without its interval (the table's SSIM column has one)."""
    return "n/a" if row.get("ssim7") is None else f"{row['ssim7']:.4f}"


def markdown_table(report: dict) -> str:
    """The results as a GitHub markdown table: mean [95% CI] per metric; with K samples, a second
    table (samples_table)."""
    lines = ["| mask | method | n | PSNR dB [95% CI] | hole PSNR dB [95% CI] | SSIM [95% CI] | SSIM 7x7 | seam (truth) | "
             "hole SWD (floor) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        seam = _number(r.get("seam"), r.get("seam_truth"))
        realism = _number(r.get("hole_swd"), r.get("hole_swd_floor"))
        lines.append(f"| {r['mask']} | {r['method']} | {r['n']} | {_cell(r, 'psnr', '.2f')} | "
                     f"{_cell(r, 'hole_psnr', '.2f')} | {_cell(r, 'ssim', '.4f')} | {_ssim7(r)} | {seam} | {realism} |")
    table = "\n".join(lines) + "\n" + ("\nhole SWD: how far the texture, layout and colour a method puts in the hole "
                                      "are from real faces' in the same holes (lower = more like real faces; the "
                                      "floor: real faces of other people).\n")
    if report.get("paired"):
        table += "\n" + paired_table(report)
    if report.get("samples"):
        table += "\n" + samples_table(report)
    return table


def paired_table(report: dict) -> str:
    """The "paired" section as markdown: the product minus each other method, image by image."""
    lines = [f"{SAMPLED_METHOD} (the product) minus each method on the same images (paired; positive: the "
             "product is ahead):", "",
             "| mask | method | n | hole PSNR dB [95% CI] | SSIM [95% CI] | product ahead on |",
             "|---|---|---:|---:|---:|---:|"]
    for r in report["paired"]:
        share = "n/a" if r["product_better"] is None else f"{100 * r['product_better']:.0f}%"
        lines.append(f"| {r['mask']} | {r['method']} | {r['n']} | {_cell(r, 'hole_psnr_diff', '+.2f')} | "
                     f"{_cell(r, 'ssim_diff', '+.4f')} | {share} |")
    return "\n".join(lines) + "\n"


def samples_table(report: dict) -> str:
    """The "samples" section as markdown: quality (best-of-K, mean-of-K) and diversity (before and
    after the refiner) of lsgan+refiner's K samples per hole, mean [95% CI], then what they mean."""
    rows = report["samples"]
    k = rows[0]["samples"]
    lines = [f"K = {k} samples per hole of {SAMPLED_METHOD} (the product):", "",
             "| mask | K | n | best-of-K hole PSNR dB | best-of-K SSIM | mean-of-K hole PSNR dB | mean-of-K SSIM | "
             "pairwise hole PSNR dB, before refiner | after refiner | hole std, before refiner | after refiner | "
             "hole SWD, before refiner | after refiner |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b, m, d = r["best_of_k"], r["mean_of_k"], r["diversity"]
        lines.append(f"| {r['mask']} | {r['samples']} | {r['n']} | {_cell(b, 'hole_psnr', '.2f')} | "
                     f"{_cell(b, 'ssim', '.4f')} | {_cell(m, 'hole_psnr', '.2f')} | {_cell(m, 'ssim', '.4f')} | "
                     f"{_cell(d['before_refiner'], 'pairwise_hole_psnr', '.2f')} | "
                     f"{_cell(d['after_refiner'], 'pairwise_hole_psnr', '.2f')} | "
                     f"{_cell(d['before_refiner'], 'hole_std', '.2f')} | "
                     f"{_cell(d['after_refiner'], 'hole_std', '.2f')} | "
                     f"{_number((r.get('hole_swd') or {}).get('before_refiner'), None)} | "
                     f"{_number((r.get('hole_swd') or {}).get('after_refiner'), None)} |")
    lines += ["",
              "best-of-K: per image the sample nearest the truth, each metric picking its own (an oracle: "
              "inference has no truth); mean-of-K: the mean over the K samples.",
              f"Diversity: pairwise hole PSNR = the mean hole PSNR between two of an image's samples (lower = more "
              f"different; identical pairs count as {metrics.PSNR_CAP:g} dB, the cap); hole std = the per-pixel "
              f"standard deviation over the K samples, mean over the hole (0..255). Before refiner: the blended "
              f"search results; after: the final outputs. Hole SWD: the realism of each sample position's "
              f"fills (the main table's column), averaged over the K positions."]
    single = [m for m in REFINED_BASELINES if m in report.get("settings", {}).get("methods", ())]
    if single:
        lines.append(f"{' and '.join(single)} give one output per hole: K different fills need the latent search.")
    return "\n".join(lines) + "\n"


def grid_image(ev: Evaluation, scale: int = 2) -> np.ndarray:
    """RGB uint8 grid: one row per face (grid_rows per mask type, mask types in order); columns:
    masked input (hole grey), each method, ground truth."""
    from ..imaging.pictures import image_grid

    cols = None
    tiles = []
    for kind, rows in ev.grid_rows.items():
        if "input" not in rows:
            continue
        cols = ["input", *[m for m in rows if m not in ("input", "truth")], "truth"]
        for i in range(len(rows["input"])):
            tiles.extend(rows[c][i] for c in cols)
    if not tiles:
        raise EdgefillError("nothing to draw in the grid (no images evaluated)")
    return image_grid(np.stack(tiles), ncols=len(cols), scale=scale, col_titles=cols)


def _label_tile(lines: tuple[str, ...], size: int = 64) -> np.ndarray:
    """A white size x size RGB tile with a few short words on it."""
    tile = np.full((size, size, 3), 255, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(tile, text[:10], (2, 14 + 12 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def samples_grid_image(ev: Evaluation, scale: int = 2) -> np.ndarray:
    """RGB uint8 grid of the K samples: for each grid face (grid_rows per mask type), a row
    input | truth | sample 1..K before the refiner (the blended search results, best search loss
    first), then a row of the same K samples after the refiner."""
    from ..imaging.pictures import image_grid

    tiles, k = [], 0
    after = _label_tile(("after the", "refiner:"))
    blank = np.full_like(after, 255)
    for rows in ev.sample_rows.values():
        k = rows["searched"].shape[1]
        for i in range(len(rows["input"])):
            tiles += [rows["input"][i], rows["truth"][i], *rows["searched"][i]]
            tiles += [after, blank, *rows["final"][i]]
    if not tiles:
        raise EdgefillError("nothing to draw in the samples grid (evaluate with samples > 1)")
    cols = ["input", "truth", *[f"sample {j + 1}" for j in range(k)]]
    return image_grid(np.stack(tiles), ncols=k + 2, scale=scale, col_titles=cols)
