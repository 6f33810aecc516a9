"""The Python API front end: `Inpainter`, one image of any size (or N 64x64 problems) through
the pipeline (runtime.core.pipeline). The public API of the runtime: `Inpainter` (numpy + onnxruntime + OpenCV; torch only for the
optional torch backend).

    from edgefill.runtime import Inpainter

    inp = Inpainter()                      # default bundle, best provider, ONNX search
    res = inp.inpaint(image, "center")     # image: RGB uint8 (H,W,3), gray (H,W) or RGBA (H,W,4)
    res.image                              # RGB uint8 (H,W,3): the input with only the hole filled
    res.stats                              # steps_run, loss, seconds, backend, provider, ...

Inpainter(bundle=None, provider=None, backend="onnx", threads=None, flip_average=None, sample_scale=None)
    bundle:   a bundle folder or .zip path, an opened runtime.bundle.Bundle, or None for the default
              bundle ($EDGEFILL_BUNDLE, else the one shipped in the package). Hashes are checked.
    provider: None/"auto" (TensorRT > CUDA > CPU, the first that really loads), or "cpu", "cuda",
              "tensorrt" (forced: EdgefillError if it cannot load).
    backend:  "onnx" (the bundle's search-step graph in onnxruntime) or "torch" (autograd on the
              bundle's weights; needs torch). "onnx" falls back to "torch" with a one-line notice
              (logged to the "edgefill" logger: stderr by default) when the bundle has no step
              graph or the provider cannot run it.
    threads:  onnxruntime intra-op threads (None: the physical cores).
    flip_average: None (the bundle's "refine" setting, on by default) or True/False: refine the
              face and its mirror image as one batch and average (runtime.core.refine_config).
    sample_scale: None (the bundle's "refine" setting) or how far samples 2..K sit from the single
              output, in proportion to the refiner's uncertainty (RefineConfig; 0: unscaled).
    Attributes: bundle (Bundle), search_defaults (SearchConfig), backend and provider (str, the
    ones actually used; provider "cpu", "cuda" or "tensorrt"), engine (runtime.engine.Engine).

search(images, masks, config=None, seed=0, time_budget_ms=None, progress=False, *, z0=None)
    images uint8 (N,64,64,3) RGB; masks uint8 (N,64,64), 255 = fill; config: SearchConfig (None:
    the bundle's defaults). Starts: runtime.core.starts.initial_z(N, restarts, z_dim, seed)
    (the same on every backend), or z0 float32 (N*restarts, z_dim). Stops after config.steps,
    on a plateau (config.patience) or after time_budget_ms (the batch searches together, so this
    is each image's budget). -> runtime.core.best_of_k.SearchResult: images float32 (N,3,64,64) in
    [-1,1] = G(z_best), z (N,z_dim), loss (N,), history (steps_run, N) best-so-far loss,
    steps_run, seconds, backend; extra = {"provider", "prior"}.

refine(blended, masks) -> uint8 (N,64,64,3)
    blended uint8 (N,64,64,3) RGB (a blended search result), masks uint8 (N,64,64):
    M*y + (1-M)*R(blended), R flip-averaged unless flip_average is off. EdgefillError if the bundle
    has no refiner.

inpaint(image, mask, *, steps=None, restarts=None, lam=None, lr=None, prior=None, blend=None,
        refine=True, seed=0, box=None, time_budget_ms=None, patience=None, init=None) -> InpaintResult
    One image of any size and mode (gray/RGB/RGBA, uint8 or uint16). mask: a kind name
    (center, random-box, pattern, random, half, half-left, half-right, free-form; drawn from
    np.random.default_rng(seed)), a mask-image path, or a uint8 (H,W) array (255 = fill; the
    size policy is in runtime.preprocess). box: (x,y,w,h) or "x,y,w,h" face region (default:
    the whole image resized to 64x64). init: where the search starts, "auto"/None (the bundle's
    encoder when it has one, else random), "random" or "encoder"; None settings take the
    bundle's search defaults for that start (Bundle.search_defaults_for).
    refine=True uses the refiner when the bundle has one (stats["refined"] says whether it ran).
    -> InpaintResult(image uint8 (H,W,3) final, searched uint8 (64,64,3) blended search result,
       refined uint8 (64,64,3) or None, stats dict). A mask without holes returns the input
       unchanged without searching (stats["steps_run"] = 0).

inpaint(image, mask, ..., samples=K, sample_spread=None, sample_steps=None) -> list of K InpaintResult
    K different plausible fills of the same hole (1 <= K <= MAX_SAMPLES), best search loss
    first (Pipeline.run_samples). Start 0 gives the single output itself; start k >= 1 is the
    encoder's z + sample_spread * N(0, I) (the bundle's SearchConfig.sample_spread unless given),
    or a fresh random start without an encoder, drawn from (seed, k) alone: the same request
    gives the same K pictures anywhere. Samples k >= 1 take sample_steps Adam steps (the bundle's
    unless given; `steps` given alone applies to every sample). stats add "sample" (rank),
    "start_index", "samples", "sample_spread".

inpaint_samples(images, masks, samples, *, ...same settings as inpaint_batch...) -> SampleSet
    N 64x64 problems x K samples as one batch: arrays (N,K,...), runtime.core.pipeline.SampleSet.

inpaint_batch(images, masks, *, ...same settings..., seeds=None, progress=False, start=None) -> BatchResult
    N 64x64 problems at once (one search batch): images uint8 (N,64,64,3), masks uint8
    (N,64,64). start: a runtime.core.starts Start (overrides init; e.g. GivenStart(z) for a
    video's previous frame). Image i's random rows come from initial_z(1, restarts, z_dim,
    seed + i) (or seeds[i]; with the encoder, its z replaces restart 0), so its
    result does not depend on what else is in the batch, and inpaint(seed=s) equals the CLI's
    first image with --seed s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.bundle import Bundle
from ..core.pipeline import BACKENDS, BatchResult, Pipeline, SampleSet, check_batch
from ..core.best_of_k import SearchResult
from ..core.search_config import SearchConfig
from ..core.starts import Start
from ..errors import EdgefillError
from ..imaging.preprocess import paste_back, prepare

__all__ = ["BACKENDS", "BatchResult", "InpaintResult", "Inpainter", "MAX_SAMPLES", "SampleSet"]

MAX_SAMPLES = 16  # samples per hole: each is one more search row and one more refiner pass


def check_samples(samples) -> int:
    """K fills per hole as an int in 1..MAX_SAMPLES, or EdgefillError."""
    if int(samples) < 1 or int(samples) > MAX_SAMPLES:
        raise EdgefillError(f"samples must be 1..{MAX_SAMPLES}, got {samples}")
    return int(samples)


@dataclass
class InpaintResult:
    """image: RGB uint8 (H,W,3) final; searched: RGB uint8 (64,64,3) blended search result;
    refined: RGB uint8 (64,64,3) refiner output composited with the known pixels, or None."""

    image: np.ndarray
    searched: np.ndarray
    refined: np.ndarray | None
    stats: dict = field(default_factory=dict)


def _progress_callback(progress, total: int):
    """progress: False, True (a tqdm bar over `total` steps) or a callable(n) -> (callback, bar)."""
    if callable(progress):
        return progress, None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="search", unit="step", leave=False, dynamic_ncols=True)
        return bar.update, bar
    return None, None


class Inpainter:
    """LSGAN latent-search inpainting with a bundle (module docstring: the API contract)."""

    def __init__(self, bundle: str | Bundle | None = None, provider: str | None = None, backend: str = "onnx",
                 threads: int | None = None, flip_average: bool | None = None, sample_scale: float | None = None):
        self.pipeline = Pipeline(bundle, provider=provider, backend=backend, threads=threads,
                                 flip_average=flip_average, sample_scale=sample_scale)
        self.bundle = self.pipeline.bundle
        self.engine = self.pipeline.engine
        self.search_defaults: SearchConfig = self.pipeline.search_defaults
        self.provider: str = self.pipeline.provider

    @property
    def backend(self) -> str:
        """The search backend in use ("onnx", or "torch" after a fallback)."""
        return self.pipeline.backend

    # -- the three stages -------------------------------------------------------------------
    def search(self, images: np.ndarray, masks: np.ndarray, config: SearchConfig | None = None, seed: int = 0,
               time_budget_ms: float | None = None, progress: bool | Callable[[int], None] = False, *,
               z0: np.ndarray | None = None) -> SearchResult:
        """Latent search for N 64x64 images (module docstring)."""
        from ..core.starts import initial_z

        images, masks = check_batch(images, masks)
        cfg = config or self.search_defaults
        if z0 is None:
            z0 = initial_z(images.shape[0], cfg.restarts, self.bundle.z_dim, seed)
        z0 = np.asarray(z0, np.float32)
        y, W = self.pipeline.problem(images, masks)
        callback, bar = _progress_callback(progress, cfg.steps)
        try:
            return self.pipeline.search(y, W, cfg, z0, time_budget_ms, callback)
        finally:
            if bar is not None:
                bar.close()

    def refine(self, blended: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """M*y + (1-M)*R(blended): uint8 (N,64,64,3) RGB, masks uint8 (N,64,64) -> uint8 (N,64,64,3)."""
        return self.pipeline.refine(blended, masks)

    # -- whole pipelines --------------------------------------------------------------------
    def config_for(self, steps=None, restarts=None, lam=None, lr=None, prior=None, blend=None,
                   patience=None, start: str = "random", sample_spread=None, sample_steps=None) -> SearchConfig:
        """The bundle's search defaults for a start ("random", "encoder") with the given
        (non-None) settings replaced (Pipeline.config)."""
        return self.pipeline.config(steps, restarts, lam, lr, prior, blend, patience, start=start,
                                    sample_spread=sample_spread, sample_steps=sample_steps)

    def _plan(self, images, masks, steps, restarts, lam, lr, prior, blend, patience, seed, seeds, start, init,
              sample_spread=None, sample_steps=None):
        """The checked batch, its start, its SearchConfig and one seed per image."""
        images, masks = check_batch(images, masks)
        start = start or self.pipeline.make_start(init)
        cfg = self.config_for(steps, restarts, lam, lr, prior, blend, patience, start=start.name,
                              sample_spread=sample_spread, sample_steps=sample_steps)
        n = images.shape[0]
        seeds = list(seeds) if seeds is not None else [seed + i for i in range(n)]
        if len(seeds) != n:
            raise EdgefillError(f"{len(seeds)} seeds for {n} images")
        return images, masks, start, cfg, seeds

    def inpaint_batch(self, images: np.ndarray, masks: np.ndarray, *, steps=None, restarts=None, lam=None, lr=None,
                      prior=None, blend=None, refine=True, seed: int = 0, seeds=None, time_budget_ms=None,
                      patience=None, progress: bool | Callable[[int], None] = False,
                      start: Start | None = None, init: str | None = None) -> BatchResult:
        """Search, blend and (optionally) refine N 64x64 images (module docstring)."""
        images, masks, start, cfg, seeds = self._plan(images, masks, steps, restarts, lam, lr, prior, blend, patience,
                                                      seed, seeds, start, init)
        callback, bar = _progress_callback(progress, cfg.steps)
        try:
            return self.pipeline.run(images, masks, cfg, start=start, seeds=seeds, refine=refine,
                                     time_budget_ms=time_budget_ms, progress=callback)
        finally:
            if bar is not None:
                bar.close()

    def inpaint_samples(self, images: np.ndarray, masks: np.ndarray, samples: int, *, steps=None, restarts=None,
                        lam=None, lr=None, prior=None, blend=None, refine=True, seed: int = 0, seeds=None,
                        time_budget_ms=None, patience=None, progress: bool | Callable[[int], None] = False,
                        start: Start | None = None, init: str | None = None, sample_spread=None,
                        sample_steps=None) -> SampleSet:
        """K = `samples` different completions of each of N 64x64 holes (module docstring)."""
        samples = check_samples(samples)
        images, masks, start, cfg, seeds = self._plan(images, masks, steps, restarts, lam, lr, prior, blend, patience,
                                                      seed, seeds, start, init, sample_spread, sample_steps)
        callback, bar = _progress_callback(progress, cfg.steps_for(samples))
        try:
            return self.pipeline.run_samples(images, masks, cfg, samples=samples, start=start, seeds=seeds,
                                             refine=refine, time_budget_ms=time_budget_ms, progress=callback)
        finally:
            if bar is not None:
                bar.close()

    def inpaint(self, image: np.ndarray, mask, *, steps=None, restarts=None, lam=None, lr=None, prior=None,
                blend=None, refine=True, seed: int = 0, box=None, time_budget_ms=None,
                patience=None, init: str | None = None, samples: int | None = None,
                sample_spread=None, sample_steps=None) -> InpaintResult | list[InpaintResult]:
        """One image of any size and mode (module docstring); samples=K: a list of K results."""
        start = time.perf_counter()
        prep = prepare(image, mask, box, rng=np.random.default_rng(seed))
        settings = dict(steps=steps, restarts=restarts, lam=lam, lr=lr, prior=prior, blend=blend, refine=refine,
                        seed=seed, time_budget_ms=time_budget_ms, patience=patience, init=init)
        if samples is None:
            batch = self.inpaint_batch(prep.image64[None], prep.mask64[None], **settings) if prep.has_hole else None
            return self.finish(prep, batch, 0, start)
        if not prep.has_hole:
            return [self.finish(prep, None, 0, start) for _ in range(check_samples(samples))]
        sset = self.inpaint_samples(prep.image64[None], prep.mask64[None], samples, sample_spread=sample_spread,
                                    sample_steps=sample_steps, **settings)
        return [self.finish_sample(prep, sset, 0, k, start) for k in range(sset.samples)]

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
                         restarts=cfg.restarts, lam=cfg.lam, lr=cfg.lr, backend=res.backend, init=batch.start)
            out = InpaintResult(image=paste_back(prep, batch.final[i]), searched=batch.searched[i],
                                refined=None if batch.refined is None else batch.refined[i], stats=stats)
        if start is not None:
            stats["seconds"] = time.perf_counter() - start
        return out

    def finish_sample(self, prep, sset: SampleSet, i: int, k: int, start: float | None = None) -> InpaintResult:
        """Sample k (by loss rank) of image i of a SampleSet back to full resolution; stats add
        "sample" (its rank), "start_index" (0 = the single output's start) and "loss"."""
        out = self.finish(prep, sset.batch, int(i * sset.samples + sset.sample[i, k]), start)
        out.stats.update(sample=int(k), start_index=int(sset.sample[i, k]), samples=sset.samples,
                         sample_spread=float(sset.batch.config.sample_spread))
        if sset.sample[i, k] > 0:  # samples 2..K ran their own step count (Pipeline.run_samples)
            search = sset.batch.search
            out.stats.update(steps_run=int(search.extra.get("sample_steps_run", search.steps_run)),
                             steps=sset.batch.config.steps_of_samples)
        return out
