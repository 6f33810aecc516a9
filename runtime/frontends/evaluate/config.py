"""What `edgefill evaluate` measures and on which holes: the method names (part of the JSON
contract), EvaluateConfig, the --mask/--methods parsers, the seeded masks and the masked input."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.starts import INITS
from ...errors import EdgefillError
from ...imaging.masks import MASK_KINDS, resolve_mask

METHODS = ("telea", "ns", "telea+refiner", "ns+refiner", "telea+baseline", "lsgan", "lsgan+poisson", "lsgan+refiner")
BASELINES = ("telea", "ns")
REFINED_BASELINES = ("telea+refiner", "ns+refiner")
LSGAN_METHODS = ("lsgan", "lsgan+poisson", "lsgan+refiner")
REFINER_METHODS = ("telea+refiner", "ns+refiner", "lsgan+refiner")
BASELINE_METHOD = "telea+baseline"  # the --baseline-bundle's refiner on Telea's fill
DEFAULT_METHODS = tuple(m for m in METHODS if m != BASELINE_METHOD)  # without a baseline bundle
SAMPLED_METHOD = "lsgan+refiner"  # what --samples K measures: the product
METRICS = ("psnr", "hole_psnr", "ssim", "ssim7", "seam")
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
        from ..inpainter import MAX_SAMPLES

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


