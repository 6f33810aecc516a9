"""The Python API of the runtime: `Inpainter` (numpy + onnxruntime + OpenCV; torch only for the
optional torch backend).

    from edgefill.runtime import Inpainter

    inp = Inpainter()                      # default bundle, best provider, ONNX search
    res = inp.inpaint(image, "center")     # image: RGB uint8 (H,W,3), gray (H,W) or RGBA (H,W,4)
    res.image                              # RGB uint8 (H,W,3): the input with only the hole filled
    res.stats                              # steps_run, loss, seconds, backend, provider, ...

Inpainter(bundle=None, provider=None, backend="onnx", threads=None)
    bundle:   a bundle folder or .zip path, an opened runtime.bundle.Bundle, or None for the default
              bundle ($EDGEFILL_BUNDLE, else the one shipped in the package). Hashes are checked.
    provider: None/"auto" (TensorRT > CUDA > CPU, the first that really loads), or "cpu", "cuda",
              "tensorrt" (forced: EdgefillError if it cannot load).
    backend:  "onnx" (the bundle's search-step graph in onnxruntime) or "torch" (autograd on the
              bundle's weights; needs torch). "onnx" falls back to "torch" with a one-line notice
              (logged to the "edgefill" logger: stderr by default) when the bundle has no step
              graph or the provider cannot run it.
    threads:  onnxruntime intra-op threads (None: the physical cores).
    Attributes: bundle (Bundle), search_defaults (SearchConfig), backend and provider (str, the
    ones actually used; provider "cpu", "cuda" or "tensorrt"), engine (runtime.engine.Engine).

search(images, masks, config=None, seed=0, time_budget_ms=None, progress=False, *, z0=None)
    images uint8 (N,64,64,3) RGB; masks uint8 (N,64,64), 255 = fill; config: SearchConfig (None:
    the bundle's defaults). Starts: runtime.torch_search.initial_z(N, restarts, z_dim, seed)
    (the same on every backend), or z0 float32 (N*restarts, z_dim). Stops after config.steps,
    on a plateau (config.patience) or after time_budget_ms (the batch searches together, so this
    is each image's budget). -> runtime.torch_search.SearchResult: images float32 (N,3,64,64) in
    [-1,1] = G(z_best), z (N,z_dim), loss (N,), history (steps_run, N) best-so-far loss,
    steps_run, seconds, backend; extra = {"provider", "prior"}.

refine(blended, masks) -> uint8 (N,64,64,3)
    blended uint8 (N,64,64,3) RGB (a blended search result), masks uint8 (N,64,64):
    M*y + (1-M)*R(blended). EdgefillError if the bundle has no refiner.

inpaint(image, mask, *, steps=None, restarts=None, lam=None, lr=None, prior=None, blend=None,
        refine=True, seed=0, box=None, time_budget_ms=None, patience=None) -> InpaintResult
    One image of any size and mode (gray/RGB/RGBA, uint8 or uint16). mask: a kind name
    (center, random-box, pattern, random, half, half-left, half-right, free-form; drawn from
    np.random.default_rng(seed)), a mask-image path, or a uint8 (H,W) array (255 = fill; the
    size policy is in runtime.preprocess). box: (x,y,w,h) or "x,y,w,h" face region (default:
    the whole image resized to 64x64). None settings take the bundle's search defaults.
    refine=True uses the refiner when the bundle has one (stats["refined"] says whether it ran).
    -> InpaintResult(image uint8 (H,W,3) final, searched uint8 (64,64,3) blended search result,
       refined uint8 (64,64,3) or None, stats dict). A mask without holes returns the input
       unchanged without searching (stats["steps_run"] = 0).

inpaint_batch(images, masks, *, ...same settings..., seeds=None, progress=False) -> BatchResult
    N 64x64 problems at once (one search batch): images uint8 (N,64,64,3), masks uint8
    (N,64,64). Image i starts from initial_z(1, restarts, z_dim, seed + i) (or seeds[i]), so its
    result does not depend on what else is in the batch, and inpaint(seed=s) equals the CLI's
    first image with --seed s.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import blend as blending
from .bundle import Bundle, open_bundle
from .engine import Engine
from .errors import EdgefillError
from .images import IMAGE_SIZE, from_model, to_model
from .masks import importance_weights
from .preprocess import paste_back, prepare
from .search import OrtSearch, StepGraphError
from .search_config import SearchConfig
from .torch_search import SearchResult, initial_z

BACKENDS = ("onnx", "torch")
log = logging.getLogger("edgefill")


@dataclass
class InpaintResult:
    """image: RGB uint8 (H,W,3) final; searched: RGB uint8 (64,64,3) blended search result;
    refined: RGB uint8 (64,64,3) refiner output composited with the known pixels, or None."""

    image: np.ndarray
    searched: np.ndarray
    refined: np.ndarray | None
    stats: dict = field(default_factory=dict)


@dataclass
class BatchResult:
    """N 64x64 results. searched: uint8 (N,64,64,3) blended search results; refined: uint8
    (N,64,64,3) or None; final: uint8 (N,64,64,3) (refined if refined else searched);
    search: the SearchResult; config: the SearchConfig used; blend: the blend mode."""

    searched: np.ndarray
    refined: np.ndarray | None
    final: np.ndarray
    search: SearchResult
    config: SearchConfig
    blend: str


def _check_batch(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim == 3:
        images = images[None]
    if masks.ndim == 2:
        masks = masks[None]
    n = images.shape[0]
    if images.shape != (n, IMAGE_SIZE, IMAGE_SIZE, 3) or images.dtype != np.uint8:
        raise EdgefillError(f"images must be uint8 (N,64,64,3) RGB, got {images.dtype} {images.shape}")
    if masks.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or masks.dtype != np.uint8:
        raise EdgefillError(f"masks must be uint8 (N,64,64) matching the images, got {masks.dtype} {masks.shape}")
    return images, masks


class Inpainter:
    """LSGAN latent-search inpainting with a bundle (module docstring: the API contract)."""

    def __init__(self, bundle: str | Bundle | None = None, provider: str | None = None, backend: str = "onnx",
                 threads: int | None = None):
        if backend not in BACKENDS:
            raise EdgefillError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.bundle = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
        self.search_defaults: SearchConfig = self.bundle.search_defaults
        self.engine = Engine(self.bundle, provider, threads)
        self.provider: str = self.engine.provider
        self.backend: str = backend
        self._searcher = None
        if backend == "onnx":
            try:
                self._searcher = OrtSearch(self.engine)
            except StepGraphError as exc:
                self._fall_back(str(exc))
        else:
            self._searcher = self._torch_searcher()

    def _torch_searcher(self):
        from .torch_fallback import TorchSearch

        return TorchSearch(self.bundle, device="cuda" if self.engine.device == "cuda" else "cpu")

    def _fall_back(self, reason: str) -> None:
        from .torch_fallback import torch_available

        if not torch_available():
            raise EdgefillError(f"{reason}; the torch fallback needs torch, which is not installed")
        log.warning("edgefill: notice: %s; using the torch backend", reason)
        self._searcher = self._torch_searcher()
        self.backend = "torch"

    # -- the three stages -------------------------------------------------------------------
    def search(self, images: np.ndarray, masks: np.ndarray, config: SearchConfig | None = None, seed: int = 0,
               time_budget_ms: float | None = None, progress: bool | Callable[[int], None] = False, *,
               z0: np.ndarray | None = None) -> SearchResult:
        """Latent search for N 64x64 images (module docstring)."""
        images, masks = _check_batch(images, masks)
        cfg = config or self.search_defaults
        if time_budget_ms is not None and time_budget_ms <= 0:
            raise EdgefillError("the time budget must be positive (milliseconds)")
        n = images.shape[0]
        if z0 is None:
            z0 = initial_z(n, cfg.restarts, self.bundle.z_dim, seed)
        z0 = np.asarray(z0, np.float32)
        if z0.shape != (n * cfg.restarts, self.bundle.z_dim):
            raise EdgefillError(f"z0 must be ({n * cfg.restarts}, {self.bundle.z_dim}), got {z0.shape}")
        y, W = to_model(images), importance_weights(masks)
        bar, callback = None, progress if callable(progress) else None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, desc="search", unit="step", leave=False, dynamic_ncols=True)
            callback = bar.update
        try:
            try:
                return self._searcher.search(y, W, cfg, z0, time_budget_ms, callback)
            except StepGraphError as exc:
                if self.backend != "onnx":
                    raise
                self._fall_back(str(exc))
                return self._searcher.search(y, W, cfg, z0, time_budget_ms, callback)
        finally:
            if bar is not None:
                bar.close()

    def refine(self, blended: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """M*y + (1-M)*R(blended): uint8 (N,64,64,3) RGB, masks uint8 (N,64,64) -> uint8 (N,64,64,3)."""
        if not self.bundle.has_graph("refiner"):
            raise EdgefillError(f"bundle {self.bundle.root} has no refiner")
        blended, masks = _check_batch(blended, masks)
        refined = from_model(self.engine.forward("refiner", to_model(blended)))
        return blending.paste(blended, refined, masks)

    # -- whole pipelines --------------------------------------------------------------------
    def config_for(self, steps=None, restarts=None, lam=None, lr=None, prior=None, blend=None,
                   patience=None) -> SearchConfig:
        """The bundle's search defaults with the given (non-None) settings replaced."""
        return self.search_defaults.replace(steps=steps, restarts=restarts, lam=lam, lr=lr, prior=prior, blend=blend,
                                            patience=patience)

    def inpaint_batch(self, images: np.ndarray, masks: np.ndarray, *, steps=None, restarts=None, lam=None, lr=None,
                      prior=None, blend=None, refine=True, seed: int = 0, seeds=None, time_budget_ms=None,
                      patience=None, progress: bool | Callable[[int], None] = False) -> BatchResult:
        """Search, blend and (optionally) refine N 64x64 images (module docstring)."""
        images, masks = _check_batch(images, masks)
        cfg = self.config_for(steps, restarts, lam, lr, prior, blend, patience)
        n = images.shape[0]
        seeds = list(seeds) if seeds is not None else [seed + i for i in range(n)]
        if len(seeds) != n:
            raise EdgefillError(f"{len(seeds)} seeds for {n} images")
        z0 = np.concatenate([initial_z(1, cfg.restarts, self.bundle.z_dim, s) for s in seeds])
        result = self.search(images, masks, cfg, time_budget_ms=time_budget_ms, progress=progress, z0=z0)
        generated = from_model(result.images)
        searched = blending.blend(cfg.blend, images, generated, masks)
        refined = self.refine(searched, masks) if refine and self.bundle.has_graph("refiner") else None
        return BatchResult(searched=searched, refined=refined, final=refined if refined is not None else searched,
                           search=result, config=cfg, blend=cfg.blend)

    def inpaint(self, image: np.ndarray, mask, *, steps=None, restarts=None, lam=None, lr=None, prior=None,
                blend=None, refine=True, seed: int = 0, box=None, time_budget_ms=None,
                patience=None) -> InpaintResult:
        """One image of any size and mode (module docstring)."""
        start = time.perf_counter()
        prep = prepare(image, mask, box, rng=np.random.default_rng(seed))
        batch = None
        if prep.has_hole:
            batch = self.inpaint_batch(prep.image64[None], prep.mask64[None], steps=steps, restarts=restarts, lam=lam,
                                       lr=lr, prior=prior, blend=blend, refine=refine, seed=seed,
                                       time_budget_ms=time_budget_ms, patience=patience)
        return self.finish(prep, batch, 0, start)

    def finish(self, prep, batch: BatchResult | None, i: int, start: float | None = None) -> InpaintResult:
        """Image i of a batch back to full resolution (None batch: the mask has no hole)."""
        stats = {"backend": self.backend, "provider": self.provider, "box": list(prep.box),
                 "hole_fraction": float((prep.mask >= 128).mean())}
        if batch is None:
            cfg = self.search_defaults
            stats.update(steps_run=0, loss=None, search_seconds=0.0, prior=cfg.prior, blend=None, refined=False)
            out = InpaintResult(image=prep.original.copy(), searched=prep.image64.copy(), refined=None, stats=stats)
        else:
            res, cfg = batch.search, batch.config
            stats.update(steps_run=int(res.steps_run), loss=float(res.loss[i]), search_seconds=float(res.seconds),
                         prior=cfg.prior, blend=batch.blend, refined=batch.refined is not None, steps=cfg.steps,
                         restarts=cfg.restarts, lam=cfg.lam, lr=cfg.lr, backend=res.backend)
            out = InpaintResult(image=paste_back(prep, batch.final[i]), searched=batch.searched[i],
                                refined=None if batch.refined is None else batch.refined[i], stats=stats)
        if start is not None:
            stats["seconds"] = time.perf_counter() - start
        return out
