"""evaluate(): every method on every mask kind, batch by batch, into the report, the per-image
values and the grid rows (the package docstring says what each number means)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import EdgefillError
from ...imaging import metrics
from ...imaging.masks import masked_input
from .config import BASELINE_METHOD, METRICS, REFINER_METHODS, SAMPLED_METHOD, EvaluateConfig, mask_batch
from .methods import BatchOutputs, run_batch
from .realism import REALISM_IMAGES, hole_realism
from .settings import settings_record
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

    check_bundles(cfg, inpainter, baseline)
    images = np.ascontiguousarray(images[: cfg.limit] if cfg.limit > 0 else images)
    n = len(images)
    search_cfg, search_start = None, None
    if inpainter is not None and cfg.needs_search:
        search_start = inpainter.pipeline.make_start(cfg.init)
        search_cfg = inpainter.config_for(steps=cfg.steps, restarts=cfg.restarts, start=search_start.name,
                                          sample_spread=cfg.sample_spread, sample_steps=cfg.sample_steps)
    records: dict[str, KindRecord] = {}
    bar = tqdm(total=n * len(cfg.masks), desc="evaluate", unit="img", disable=not progress, leave=False)
    try:
        for kind in cfg.masks:
            record = records[kind] = KindRecord(cfg.methods, cfg.grid_rows)
            for start in range(0, n, cfg.batch_size):
                idx = np.arange(start, min(n, start + cfg.batch_size))
                truth = images[idx]
                masks = mask_batch(kind, idx, cfg.seed)
                on_step = _search_progress(bar, kind, search_cfg.steps) if progress and search_cfg else None
                batch = run_batch(truth, masks, cfg.methods, inpainter, search_cfg, cfg.seed + idx,
                                  progress=on_step, start=search_start, samples=cfg.samples, baseline=baseline)
                record.add(start, truth, masks, batch)
                bar.set_postfix(mask=kind, refresh=False)
                bar.update(len(idx))
            record.finish(cfg.seed)
    finally:
        bar.close()
    per_image = {kind: r.per_image for kind, r in records.items()}
    report: dict = {"results": [result_row(kind, method, r) for kind, r in records.items() for method in cfg.methods]}
    paired = SAMPLED_METHOD in cfg.methods and len(cfg.methods) > 1
    if paired:
        report["paired"] = [paired_difference(kind, method, per_image[kind][SAMPLED_METHOD], per_image[kind][method])
                            for kind in cfg.masks for method in cfg.methods if method != SAMPLED_METHOD]
    if cfg.samples > 1:
        report["samples"] = [{**summarise_samples(kind, cfg.samples, r.per_sample), "hole_swd": r.realism["samples"]}
                             for kind, r in records.items()]
    report["bundle"] = bundle_summary(inpainter if cfg.needs_bundle else None)
    report["settings"] = settings_record(cfg, n, search_cfg, search_start, inpainter, data_info, paired)
    if BASELINE_METHOD in cfg.methods:
        report["baseline_bundle"] = bundle_summary(baseline)
    return Evaluation(report=report, per_image=per_image, grid_rows={k: r.grid for k, r in records.items()},
                      per_sample={k: r.per_sample for k, r in records.items() if cfg.samples > 1},
                      sample_rows={k: r.sample_grid for k, r in records.items() if r.sample_grid})


def check_bundles(cfg: EvaluateConfig, inpainter, baseline) -> None:
    """One clear error before any work when cfg's methods need a bundle, a refiner or a baseline
    bundle that is not there."""
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


def _search_progress(bar, kind: str, steps: int):
    """run_batch's progress callback: the search's step count on the bar inside a long batch."""
    done = [0]

    def on_step(k: int) -> None:
        done[0] += k
        if done[0] % 10 == 0:
            bar.set_postfix(mask=kind, step=f"{done[0]}/{steps}")

    return on_step


class KindRecord:
    """One mask kind's evaluation, filled batch by batch (add), then closed (finish).

    After finish: per_image[method][metric] float64 (n,) and per_image["truth"]["seam"]; per_sample
    [SAMPLE_STATS key] float64 (n,) (empty without K samples); realism: hole_realism's dict over the
    first REALISM_IMAGES images; grid / sample_grid: Evaluation.grid_rows / sample_rows of this kind
    (the first grid_rows images)."""

    def __init__(self, methods: tuple[str, ...], grid_rows: int) -> None:
        self.methods, self.grid_rows = methods, grid_rows
        self._values = {m: {k: [] for k in METRICS} for m in methods}
        self._sample_values: dict = {k: [] for k in SAMPLE_STATS}
        self._truth_seam: list = []
        self._kept: dict = {"truth": [], "masks": [], **{m: [] for m in methods}, "searched": [], "final": []}
        self.grid: dict = {}
        self.sample_grid: dict = {}
        self.per_image: dict = {}
        self.per_sample: dict = {}
        self.realism: dict = {}

    def add(self, start: int, truth: np.ndarray, masks: np.ndarray, batch: BatchOutputs) -> None:
        """One batch: images start.. of the kind, truth uint8 (B,64,64,3), masks uint8 (B,64,64) and
        every method's outputs."""
        outputs, samples = batch.outputs, batch.samples
        self._truth_seam.append(metrics.seam(truth, masks))
        keep = max(0, min(len(truth), REALISM_IMAGES - start))  # images of this batch kept for hole_swd
        self._kept["truth"].append(truth[:keep])
        self._kept["masks"].append(masks[:keep])
        for method, out in outputs.items():
            values = self._values[method]
            self._kept[method].append(out[:keep])
            values["psnr"].append(metrics.psnr(out, truth))
            values["hole_psnr"].append(metrics.hole_psnr(out, truth, masks))
            values["ssim"].append(metrics.ssim(out, truth))
            values["ssim7"].append(metrics.ssim7(out, truth))
            values["seam"].append(metrics.seam(out, masks))
        if samples is not None:
            for key, v in sample_statistics(truth, masks, samples.searched, samples.final).items():
                self._sample_values[key].append(v)
            self._kept["searched"].append(samples.searched[:keep])
            self._kept["final"].append(samples.final[:keep])
        take = max(0, self.grid_rows - start)
        if take:
            _extend(self.grid, "input", masked_input(truth[:take], masks[:take]))
            for method in self.methods:
                _extend(self.grid, method, outputs[method][:take])
            _extend(self.grid, "truth", truth[:take])
            if samples is not None:
                _extend(self.sample_grid, "input", masked_input(truth[:take], masks[:take]))
                _extend(self.sample_grid, "truth", truth[:take])
                _extend(self.sample_grid, "searched", samples.searched[:take])
                _extend(self.sample_grid, "final", samples.final[:take])

    def finish(self, seed: int) -> None:
        """Join the batches and score the hole's realism (seeded by seed)."""
        self.per_image = {m: {k: np.concatenate(v[k]) for k in METRICS} for m, v in self._values.items()}
        self.per_image["truth"] = {"seam": np.concatenate(self._truth_seam)}
        self.realism = hole_realism({key: np.concatenate(v) for key, v in self._kept.items() if v}, self.methods, seed)
        self.per_sample = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self._sample_values.items()}


def result_row(kind: str, method: str, record: KindRecord) -> dict:
    """One "results" entry: the method's means and intervals on this kind, the truth's seam, hole SWD."""
    seam_truth = record.per_image["truth"]["seam"]
    return {"mask": kind, "method": method, **summarise(record.per_image[method]),
            "seam_truth": finite_or_none(float(np.nanmean(seam_truth))) if np.isfinite(seam_truth).any() else None,
            "hole_swd": record.realism[method], "hole_swd_floor": record.realism["floor"],
            "hole_swd_levels": record.realism["levels"][method],
            "hole_swd_floor_levels": record.realism["levels"]["floor"]}


def _extend(d: dict, key: str, arr: np.ndarray) -> None:
    d[key] = arr if key not in d else np.concatenate([d[key], arr])
