"""`edgefill evaluate`: PSNR, hole PSNR and SSIM of every inpainting method on every mask type.

Methods (names are part of the JSON contract):
    telea          cv2.inpaint(..., radius 3, cv2.INPAINT_TELEA)   (no bundle needed)
    ns             cv2.inpaint(..., radius 3, cv2.INPAINT_NS)      (no bundle needed)
    lsgan          latent search, then paste: M*y + (1-M)*G(z)
    lsgan+poisson  the same search, Poisson-blended (blend.poisson, cv2.seamlessClone)
    lsgan+refiner  the product: the same search, blended as the bundle's defaults say (Poisson
                   for the shipped bundle), then refined: M*y + (1-M)*R(blended[, hole])
The search runs ONCE per batch of images; the three lsgan methods are derived from it. It
starts where the product does (`init` "auto": the bundle's encoder when it has one, with the
bundle's defaults for that start), or from "random"/"encoder" when asked.

Every method sees only the masked input (hole pixels set to grey 128 before anything runs), so
no ground truth leaks into the hole. Metrics (runtime.metrics): PSNR over the whole image, PSNR
over the hole, SSIM, the seam (the mean step across the hole's border, 0..255, beside the
truth's own step on the same border: `seam_truth`); per (mask, method): mean and a 95% Student-t
interval over the images.

Reproducible: the mask of image i under mask type k is drawn from
np.random.default_rng([seed, crc32(k), i]) (independent of --limit, batch size and of the other
mask types); image i's random restarts start from initial_z(1, restarts, z_dim, seed + i) and
the encoder's start depends on image i alone, so the numbers do not depend on --batch-size either. A rerun with the same
data, bundle and settings gives identical numbers.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..imaging import metrics
from ..errors import EdgefillError
from ..imaging.masks import MASK_KINDS, resolve_mask

METHODS = ("telea", "ns", "lsgan", "lsgan+poisson", "lsgan+refiner")
BASELINES = ("telea", "ns")
LSGAN_METHODS = ("lsgan", "lsgan+poisson", "lsgan+refiner")
INPAINT_RADIUS = 3
HOLE_GREY = 128
METRICS = ("psnr", "hole_psnr", "ssim", "seam")
INITS = ("auto", "random", "encoder")
BLEND_DESCRIPTION = {
    "lsgan": "paste: M*y + (1-M)*G(z)",
    "lsgan+poisson": "poisson: cv2.seamlessClone (runtime.blend.poisson)",
    "lsgan+refiner": "the bundle's blend, then M*y + (1-M)*R(blended[, hole])",
}


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation. masks: mask kinds or mask-image paths; methods: a subset of METHODS, in
    METHODS order; limit: first N images (0 = all); steps/restarts: None = the bundle's search
    defaults; batch_size: images per search batch; grid_rows: images per mask type in the grid."""

    masks: tuple[str, ...] = ("center",)
    methods: tuple[str, ...] = METHODS
    limit: int = 0
    seed: int = 0
    steps: int | None = None
    restarts: int | None = None
    batch_size: int = 64
    grid_rows: int = 4
    init: str = "auto"

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

    @property
    def needs_bundle(self) -> bool:
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


def select_methods(spec: str | None, baselines: bool) -> tuple[str, ...]:
    """--methods (None: all) minus the OpenCV baselines when baselines is False; METHODS order."""
    chosen = parse_list(spec) if spec else METHODS
    for m in chosen:
        if m not in METHODS:
            raise EdgefillError(f"unknown method {m!r}; use any of {', '.join(METHODS)}")
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


def opencv_inpaint(masked: np.ndarray, masks: np.ndarray, method: str) -> np.ndarray:
    """The classical baselines: cv2.inpaint with radius INPAINT_RADIUS, per image -> uint8 (N,64,64,3)."""
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    return np.stack([cv2.inpaint(np.ascontiguousarray(masked[i]), (masks[i] >= 128).astype(np.uint8) * 255,
                                 INPAINT_RADIUS, flag) for i in range(len(masked))])


@dataclass
class Evaluation:
    """report: the JSON document ({"results", "bundle", "settings"}); per_image[mask][method][metric]:
    float64 (n,); grid_rows[mask]: {"input", method..., "truth"} -> uint8 (k,64,64,3) for the grid."""

    report: dict
    per_image: dict = field(default_factory=dict)
    grid_rows: dict = field(default_factory=dict)


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


def summarise(values: dict[str, np.ndarray]) -> dict:
    """{metric: per-image values} -> the result fields: n, metric means and [lo, hi] 95% CIs
    (for the METRICS present in `values`, in METRICS order)."""
    row: dict = {"n": int(len(next(iter(values.values()))))}
    cis = {}
    for name in (m for m in METRICS if m in values):
        mean, lo, hi, _ = metrics.mean_ci(values[name])
        row[name] = _finite_or_none(mean)
        cis[f"{name}_ci"] = [_finite_or_none(lo), _finite_or_none(hi)]
    row.update(cis)
    return row


def evaluate(images: np.ndarray, cfg: EvaluateConfig, inpainter=None, data_info: dict | None = None,
             progress: bool = True) -> Evaluation:
    """Evaluate cfg.methods on uint8 RGB images (N,64,64,3) under every mask type of cfg.

    inpainter: a runtime Inpainter (needed for the lsgan methods). data_info: extra settings
    recorded as they are (data path, sha256, ...).
    """
    from tqdm import tqdm

    if cfg.needs_bundle and inpainter is None:
        raise EdgefillError("the lsgan methods need a bundle (or choose --methods telea,ns)")
    if "lsgan+refiner" in cfg.methods and inpainter is not None and not inpainter.bundle.has_graph("refiner"):
        raise EdgefillError(f"bundle {inpainter.bundle.root} has no refiner; drop lsgan+refiner from --methods")
    images = np.ascontiguousarray(images[: cfg.limit] if cfg.limit > 0 else images)
    n = len(images)
    search_cfg, search_start = None, None
    if inpainter is not None and cfg.needs_bundle:
        search_start = inpainter.pipeline.make_start(cfg.init)
        search_cfg = inpainter.config_for(steps=cfg.steps, restarts=cfg.restarts, start=search_start.name)
    per_image: dict = {}
    grid: dict = {}
    bar = tqdm(total=n * len(cfg.masks), desc="evaluate", unit="img", disable=not progress, leave=False)
    try:
        for kind in cfg.masks:
            values = {m: {k: [] for k in METRICS} for m in cfg.methods}
            truth_seam = []
            grid[kind] = {}
            for start in range(0, n, cfg.batch_size):
                idx = np.arange(start, min(n, start + cfg.batch_size))
                truth = images[idx]
                masks = mask_batch(kind, idx, cfg.seed)
                steps_done = [0]

                def on_step(k: int, kind=kind) -> None:  # search progress inside a long batch
                    steps_done[0] += k
                    if steps_done[0] % 10 == 0:
                        bar.set_postfix(mask=kind, step=f"{steps_done[0]}/{search_cfg.steps}")

                outputs = run_methods(truth, masks, cfg.methods, inpainter, search_cfg, cfg.seed + idx,
                                      progress=on_step if progress else None, start=search_start)
                truth_seam.append(metrics.seam(truth, masks))
                for method, out in outputs.items():
                    values[method]["psnr"].append(metrics.psnr(out, truth))
                    values[method]["hole_psnr"].append(metrics.hole_psnr(out, truth, masks))
                    values[method]["ssim"].append(metrics.ssim(out, truth))
                    values[method]["seam"].append(metrics.seam(out, masks))
                take = max(0, cfg.grid_rows - start)
                if take:
                    _extend(grid[kind], "input", masked_input(truth[:take], masks[:take]))
                    for method in cfg.methods:
                        _extend(grid[kind], method, outputs[method][:take])
                    _extend(grid[kind], "truth", truth[:take])
                bar.set_postfix(mask=kind, refresh=False)
                bar.update(len(idx))
            per_image[kind] = {m: {k: np.concatenate(v[k]) for k in METRICS} for m, v in values.items()}
            per_image[kind]["truth"] = {"seam": np.concatenate(truth_seam)}
    finally:
        bar.close()
    results = [{"mask": kind, "method": method, **summarise(per_image[kind][method]),
                "seam_truth": _finite_or_none(float(np.nanmean(per_image[kind]["truth"]["seam"])))
                if np.isfinite(per_image[kind]["truth"]["seam"]).any() else None}
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
        "backend": getattr(inpainter, "backend", None) if search_cfg else None,
        "provider": getattr(inpainter, "provider", None) if search_cfg else None,
        "opencv_inpaint_radius": INPAINT_RADIUS,
        "hole_input": f"hole pixels set to {HOLE_GREY} before any method runs",
        "metrics": {"psnr": f"10 log10(255^2/MSE) on uint8 RGB, capped at {metrics.PSNR_CAP:g} dB",
                    "hole_psnr": "PSNR over the missing pixels only (all channels)",
                    "ssim": "Wang 2004; skimage gaussian_weights=True, sigma 1.5, population covariance, "
                            "data_range 255, valid region, mean over channels",
                    "seam": "mean |step| (0..255, mean over channels) between 4-neighbour pairs across the hole "
                            "border; seam_truth: the truth's own step there",
                    "ci": "95% Student-t interval of the mean"},
        **(data_info or {}),
    }
    report = {"results": results, "bundle": bundle_summary(inpainter if search_cfg else None), "settings": settings}
    return Evaluation(report=report, per_image=per_image, grid_rows=grid)


def _extend(d: dict, key: str, arr: np.ndarray) -> None:
    d[key] = arr if key not in d else np.concatenate([d[key], arr])


def run_methods(truth: np.ndarray, masks: np.ndarray, methods: tuple[str, ...], inpainter, search_cfg,
                seeds: np.ndarray, progress=None, start=None) -> dict[str, np.ndarray]:
    """Every method's uint8 (N,64,64,3) output for one batch; the search runs once, if at all.
    start: the pipeline's Start (None: RandomStart); seeds (N,): image i's random restarts start
    from initial_z(1, restarts, z_dim, seeds[i]), so a result does not depend on the batch it was
    searched in. progress: called with 1 after every search step."""
    from ..imaging import blend
    from ..imaging.images import from_model

    masked = masked_input(truth, masks)
    out: dict[str, np.ndarray] = {}
    for m in methods:
        if m in BASELINES:
            out[m] = opencv_inpaint(masked, masks, m)
    if any(m in LSGAN_METHODS for m in methods):
        z0 = inpainter.pipeline.start(masked, masks, search_cfg, start, seeds)
        result = inpainter.search(masked, masks, config=search_cfg, z0=z0, progress=progress or False)
        generated = from_model(result.images)
        pasted = blend.paste(masked, generated, masks)
        if "lsgan" in methods:
            out["lsgan"] = pasted
        if "lsgan+poisson" in methods:
            out["lsgan+poisson"] = blend.poisson(masked, generated, masks)
        if "lsgan+refiner" in methods:
            blended = out.get(f"lsgan+{search_cfg.blend}") if search_cfg.blend == "poisson" else pasted
            if blended is None:
                blended = blend.blend(search_cfg.blend, masked, generated, masks)
            out["lsgan+refiner"] = inpainter.refine(blended, masks)
    return {m: out[m] for m in methods}


def markdown_table(report: dict) -> str:
    """The results as a GitHub markdown table: mean [95% CI] per metric."""
    def cell(row, name, fmt):
        mean, (lo, hi) = row[name], row[f"{name}_ci"]
        if mean is None:
            return "n/a"
        return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"

    lines = ["| mask | method | n | PSNR dB [95% CI] | hole PSNR dB [95% CI] | SSIM [95% CI] | seam (truth) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        seam = "n/a" if r.get("seam") is None else f"{r['seam']:.1f}"
        truth = "" if r.get("seam_truth") is None else f" ({r['seam_truth']:.1f})"
        lines.append(f"| {r['mask']} | {r['method']} | {r['n']} | {cell(r, 'psnr', '.2f')} | "
                     f"{cell(r, 'hole_psnr', '.2f')} | {cell(r, 'ssim', '.4f')} | {seam}{truth} |")
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
