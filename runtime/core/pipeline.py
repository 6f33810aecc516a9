"""The one inpainting pipeline every front end calls: N 64x64 problems in, N results out.

    bundle -> engine (providers, sessions) -> start z (runtime.core.starts) -> search backend
    (the ONNX step graph, or torch autograd) -> blend (paste | poisson) -> refiner

Arrays: images uint8 (N,64,64,3) RGB; masks uint8 (N,64,64), 255 = fill. Model tensors: y float32
(N,3,64,64) in [-1,1], W float32 (N,1,64,64) importance weights. Front ends (the Python API,
`edgefill inpaint`, evaluate, profile, video, serving) own their inputs, outputs and loops and call
these stages; none re-implements one.

Pipeline(bundle=None, provider=None, backend="onnx", threads=None, engine=None, flip_average=None,
         sample_scale=None)
    bundle: folder/.zip path, an opened Bundle, or None (the default bundle). provider: None/"auto"
    (TensorRT > CUDA > CPU, the first that really loads) or a forced "cpu"/"cuda"/"tensorrt".
    backend: "onnx" (the bundle's search-step graph) or "torch" (autograd on the bundle's weights,
    needs torch). "onnx" falls back to "torch" with a one-line notice when the step graph is
    missing or cannot run. engine: share an existing Engine (profile runs two backends on one).
    flip_average, sample_scale: None (the bundle's RefineConfig) or this pipeline's choice
    (refine and run_samples below).

Stages (each usable alone; `run` composes them):
    problem(images, masks) -> (y, W)
    make_start(init) -> Start ("auto": the encoder when the bundle has one, else random)
    config(steps=..., start=name) -> SearchConfig (the bundle's defaults for that start)
    start(images, masks, cfg, start, seeds) -> z0 float32 (N*restarts, z_dim)
    search(y, W, cfg, z0, time_budget_ms, progress) -> SearchResult (G(z_best), z_best, loss, ...)
    blend(images, generated, masks, mode) -> uint8 (N,64,64,3)
    refine(blended, masks) -> uint8 (N,64,64,3) = M*y + (1-M)*R(blended[, hole[, Telea fill]]) (the
        extra channels that the bundle's refiner takes: runtime.imaging.images.refiner_input);
        with refine_config.flip_average, the refiner graph's R is the mean of R(face) and
        mirror(R(mirror(face))), one batch (the samples refiner runs once)
    run(images, masks, cfg, start=RandomStart(), seeds=..., refine=True) -> BatchResult
    run_samples(images, masks, cfg, samples=K, start=..., seeds=...) -> SampleSet: K different
        completions of each hole (runtime.core.starts.sample_starts): sample 0 is `run`'s single
        output, samples 1..K-1 one more batch (cfg.steps_of_samples steps) refined by the
        samples refiner and placed around sample 0 (blend.calibrated); ordered by search loss
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import EdgefillError
from ..imaging import blend as blending
from ..imaging.images import IMAGE_SIZE, from_model, refiner_input, to_model
from ..imaging.masks import importance_weights
from ..imaging.metrics import hole_mean_square
from .best_of_k import SearchResult
from .bundle import Bundle, open_bundle
from .engine import Engine
from .ort_search import OrtSearch, StepGraphError
from .refine_config import RefineConfig
from .search_config import SearchConfig
from .starts import RandomStart, Start, make_start, sample_starts

BACKENDS = ("onnx", "torch")
log = logging.getLogger("edgefill")


@dataclass
class BatchResult:
    """N 64x64 results. searched: uint8 (N,64,64,3) blended search results; refined: uint8
    (N,64,64,3) or None; final: uint8 (N,64,64,3) (refined if refined else searched);
    search: the SearchResult (search.z: the best z per image, a video's next start);
    config: the SearchConfig used; blend: the blend mode; start: the start's name."""

    searched: np.ndarray
    refined: np.ndarray | None
    final: np.ndarray
    search: SearchResult
    config: SearchConfig
    blend: str
    start: str = "random"


@dataclass
class SampleSet:
    """K samples per image, best search loss first. searched, final: uint8 (N,K,64,64,3) RGB;
    refined: the same or None; loss: float32 (N,K), ascending per image; z: float32 (N,K,z_dim);
    sample: int64 (N,K), the start each came from (0 = the single output's start; k >= 1 was
    placed by starts.sample_seed_rng(seeds[i], k)); seeds: the per-image seeds; batch: the
    underlying BatchResult over the N*K problems (image-major, in start order). unplaced: the
    refined samples before they were placed around sample 0 (blend.calibrated or blend.anchored),
    uint8 (N,K,64,64,3) in START order (index 0: the single output's start), None without a
    refiner or for K = 1; views_apart: float64 (N,), the refiner's view disagreement D the
    calibrated placement sized the samples by, None when it did not run (benchmarks/samples_bound.py
    re-places the samples from these two)."""

    searched: np.ndarray
    refined: np.ndarray | None
    final: np.ndarray
    loss: np.ndarray
    z: np.ndarray
    sample: np.ndarray
    seeds: list
    batch: BatchResult
    unplaced: np.ndarray | None = None
    views_apart: np.ndarray | None = None

    @property
    def samples(self) -> int:
        return int(self.final.shape[1])


def check_batch(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate N 64x64 problems: images uint8 (N,64,64,3) (or one HWC), masks uint8 (N,64,64)."""
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


class Pipeline:
    """The inpainting pipeline over one bundle (module docstring)."""

    def __init__(self, bundle: str | Bundle | None = None, provider: str | None = None, backend: str = "onnx",
                 threads: int | None = None, engine: Engine | None = None, flip_average: bool | None = None,
                 sample_scale: float | None = None):
        if backend not in BACKENDS:
            raise EdgefillError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if engine is not None:
            self.bundle = engine.bundle
        else:
            self.bundle = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
        self.search_defaults: SearchConfig = self.bundle.search_defaults
        self.refine_config: RefineConfig = self.bundle.refine_defaults.replace(flip_average=flip_average,
                                                                                sample_scale=sample_scale)
        self.engine = engine or Engine(self.bundle, provider, threads)
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

    @property
    def has_refiner(self) -> bool:
        return self.bundle.has_graph("refiner")

    @property
    def refiner_channels(self) -> int:
        """3 (the first refiner: blended RGB), 4 (+ the hole) or 7 (+ Telea's fill of the hole),
        read off the graph (runtime.imaging.images.refiner_input)."""
        return self.graph_channels("refiner")

    def graph_channels(self, graph: str) -> int:
        """A refiner graph's input channels ("refiner" or "samples_refiner")."""
        return int(self.engine.session(graph).get_inputs()[0].shape[1])

    def samples_refiner(self, samples: int) -> str:
        """The refiner graph for `samples` completions per hole: "samples_refiner" (trained to keep
        the samples' differences) when K > 1 and the bundle ships one, else "refiner"."""
        return "samples_refiner" if samples > 1 and self.bundle.has_graph("samples_refiner") else "refiner"

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

    def make_start(self, init: str | None = None) -> Start:
        """The start for a user's choice: "auto"/None (the encoder when the bundle has one, else
        random), "random" or "encoder" (runtime.core.starts.make_start)."""
        return make_start(init, self.engine)

    def config(self, steps=None, restarts=None, lam=None, lr=None, prior=None, blend=None,
               patience=None, start: str = "random", sample_spread=None, sample_steps=None) -> SearchConfig:
        """The bundle's search defaults for `start` (a start's name: "random", "encoder", "given";
        Bundle.search_defaults_for) with the given (non-None) settings replaced. `steps` given
        without `sample_steps` applies to every sample of run_samples."""
        if sample_steps is None and steps is not None:
            sample_steps = steps
        return self.bundle.search_defaults_for(start).replace(steps=steps, restarts=restarts, lam=lam, lr=lr,
                                                              prior=prior, blend=blend, patience=patience,
                                                              sample_spread=sample_spread, sample_steps=sample_steps)

    # -- the stages -------------------------------------------------------------------------
    @staticmethod
    def problem(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (N,64,64,3), masks (N,64,64) -> y float32 (N,3,64,64) in [-1,1], W float32 (N,1,64,64)."""
        return to_model(images), importance_weights(masks)

    def start(self, images: np.ndarray, masks: np.ndarray, cfg: SearchConfig, start: Start | None = None,
              seeds: Sequence[int] | None = None) -> np.ndarray:
        """z0 float32 (N*cfg.restarts, z_dim) from `start` (default RandomStart); seeds: one per
        image (default 0..N-1)."""
        n = len(images)
        seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
        z0 = np.asarray((start or RandomStart()).z0(self.engine, images, masks, cfg.restarts, seeds), np.float32)
        if z0.shape != (n * cfg.restarts, self.bundle.z_dim):
            raise EdgefillError(f"start {getattr(start, 'name', start)!r} gave z0 {z0.shape}, "
                                f"expected ({n * cfg.restarts}, {self.bundle.z_dim})")
        return z0

    def search(self, y: np.ndarray, W: np.ndarray, cfg: SearchConfig, z0: np.ndarray,
               time_budget_ms: float | None = None,
               progress: Callable[[int], None] | None = None, record_at: Sequence[int] = ()) -> SearchResult:
        """The latent search on the chosen backend; a step graph that fails mid-run hands over
        to torch (with a notice) and the search reruns from the same z0. record_at: step counts
        at which each image's best z so far is kept (extra["z_at"], extra["seconds_at"])."""
        if time_budget_ms is not None and time_budget_ms <= 0:
            raise EdgefillError("the time budget must be positive (milliseconds)")
        if z0.shape != (len(y) * cfg.restarts, self.bundle.z_dim):
            raise EdgefillError(f"z0 must be ({len(y) * cfg.restarts}, {self.bundle.z_dim}), got {z0.shape}")
        try:
            return self._searcher.search(y, W, cfg, z0, time_budget_ms, progress, record_at)
        except StepGraphError as exc:
            if self.backend != "onnx":
                raise
            self._fall_back(str(exc))
            return self._searcher.search(y, W, cfg, z0, time_budget_ms, progress, record_at)

    @staticmethod
    def blend(images: np.ndarray, generated: np.ndarray, masks: np.ndarray, mode: str) -> np.ndarray:
        """Known pixels from `images`, the hole from `generated` (uint8, both (N,64,64,3))."""
        return blending.blend(mode, images, generated, masks)

    def refine(self, blended: np.ndarray, masks: np.ndarray, graph: str = "refiner",
               flip_average: bool | None = None) -> np.ndarray:
        """M*y + (1-M)*R(blended): uint8 (N,64,64,3) RGB, masks uint8 (N,64,64) -> uint8 (N,64,64,3).
        graph: "refiner", or "samples_refiner" for K samples of one hole (samples_refiner()).
        With refine_config.flip_average and graph "refiner", R is the mean of the graph's output
        for the face and the mirrored-back output for the face mirrored left-right (its input
        built from the mirrored face and mask), run as one batch of 2N. The samples refiner runs
        once: its samples are placed around the single output (run_samples), which already has
        the average, and averaging it too changed no K = 5 number by 0.02 dB at 1.2x the cost.
        flip_average: None (refine_config's) or this call's choice (video sets its own)."""
        return self._refine(blended, masks, graph, flip_average)[0]

    def _refine(self, blended: np.ndarray, masks: np.ndarray, graph: str, flip_average: bool | None,
                disagreement: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """refine(), and with disagreement=True (graph "refiner") also each face's mean squared
        difference between the refiner's two views, the face and its mirror image: float64 (N,)
        in levels^2 (0..255 scale) over the hole, all channels. The mirror view is run for it even
        when flip averaging is off (the output is then the first view alone, as refine gives)."""
        if not self.bundle.has_graph(graph):
            raise EdgefillError(f"bundle {self.bundle.root} has no {graph.replace('_', ' ')}")
        blended, masks = check_batch(blended, masks)
        channels, n = self.graph_channels(graph), len(blended)
        x = refiner_input(blended, masks, channels)
        flip = self.refine_config.flip_average if flip_average is None else flip_average
        views_apart = None
        if (flip or disagreement) and n and graph == "refiner":
            # the mirror view is built from the mirrored face (its own Telea fill, which is not
            # mirror-symmetric: +0.08 dB on random holes over mirroring x's Telea channels)
            mirrored = refiner_input(blended[:, :, ::-1], masks[:, :, ::-1], channels)
            both = self.engine.forward(graph, np.concatenate([x, mirrored]))
            first, second = both[:n], both[n:, ..., ::-1]
            out = 0.5 * (first + second) if flip else first
            if disagreement:
                views_apart = np.nan_to_num(hole_mean_square(np.moveaxis(first - second, 1, -1) * 127.5, masks))
        else:
            out = self.engine.forward(graph, x)
        return blending.paste(blended, from_model(out), masks), views_apart

    # -- all stages -------------------------------------------------------------------------
    def run(self, images: np.ndarray, masks: np.ndarray, cfg: SearchConfig | None = None, *,
            start: Start | None = None, seeds: Sequence[int] | None = None, z0: np.ndarray | None = None,
            refine: bool = True, time_budget_ms: float | None = None,
            progress: Callable[[int], None] | None = None, refiner: str = "refiner") -> BatchResult:
        """Search, blend and (when asked and the bundle has one) refine N 64x64 problems with the
        `refiner` graph. z0 (N*restarts, z_dim) overrides `start`."""
        images, masks = check_batch(images, masks)
        cfg = cfg or self.search_defaults
        start = start or RandomStart()
        if z0 is None:
            z0 = self.start(images, masks, cfg, start, seeds)
        y, W = self.problem(images, masks)
        result = self.search(y, W, cfg, np.asarray(z0, np.float32), time_budget_ms, progress)
        searched = self.blend(images, from_model(result.images), masks, cfg.blend)
        refined = self.refine(searched, masks, refiner) if refine and self.has_refiner else None
        return BatchResult(searched=searched, refined=refined, final=refined if refined is not None else searched,
                           search=result, config=cfg, blend=cfg.blend, start=getattr(start, "name", "given"))

    def run_samples(self, images: np.ndarray, masks: np.ndarray, cfg: SearchConfig | None = None, *,
                    samples: int = 1, start: Start | None = None, seeds: Sequence[int] | None = None,
                    refine: bool = True, time_budget_ms: float | None = None,
                    progress: Callable[[int], None] | None = None) -> SampleSet:
        """K = `samples` completions of each of N holes, then each image's samples ordered by
        search loss. K starts per image (starts.sample_starts, spread cfg.sample_spread):

        - sample 0 is `run`'s single output, exactly: its start, cfg.steps, the bundle's refiner;
        - samples k >= 1, the N*(K-1) other problems, are ONE more batch through `run`, searched
          cfg.steps_of_samples steps (unrefined);
        - with a samples refiner in the bundle (samples_refiner()), all N*K blended results go
          through it in one batch (without one, the bundle's refiner refines samples k >= 1);
        - placement, with refine_config.sample_scale > 0 (the default): blend.calibrated keeps
          the refined samples' differences from each other and sets each one's distance from
          the single output to sample_scale * sqrt(D + 1) levels RMS over the hole, D the
          refiner's disagreement between the face and its mirror image (_refine), so a face the
          refiner is unsure of gets samples further apart; sample_scale 0: blend.anchored
          (sample k = the single output + R_s(x_k) - R_s(x_0)) with a samples refiner, the
          refined samples as they are without one.

        samples=1 gives exactly `run`'s output. time_budget_ms is shared by the two searches."""
        images, masks = check_batch(images, masks)
        cfg = cfg or self.search_defaults
        start = start or RandomStart()
        k, n, r, z_dim = int(samples), len(images), cfg.restarts, self.bundle.z_dim
        seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != n:
            raise EdgefillError(f"{len(seeds)} seeds for {n} images")
        z0 = sample_starts(start, self.engine, images, masks, r, seeds, k, cfg.sample_spread).reshape(n, k, r, z_dim)
        calibrate = k > 1 and refine and self.has_refiner and self.refine_config.sample_scale > 0
        first = self.run(images, masks, cfg, start=start, z0=z0[:, 0].reshape(n * r, z_dim),
                         refine=refine and not calibrate, time_budget_ms=time_budget_ms, progress=progress)
        views_apart = None
        if calibrate:  # the single output exactly as run() refines it, and how unsure the refiner is
            refined, views_apart = self._refine(first.searched, masks, "refiner", None, disagreement=True)
            first = dataclasses.replace(first, refined=refined, final=refined)
        batch, unplaced = (first, None) if k == 1 else self._other_samples(
            images, masks, cfg, start, z0[:, 1:], first, refine, time_budget_ms, progress, views_apart)
        loss = np.asarray(batch.search.loss, np.float32).reshape(n, k)
        order = np.argsort(loss, axis=1, kind="stable")

        rows = np.arange(n)[:, None]

        def ranked(flat):
            flat = np.asarray(flat)
            return flat.reshape(n, k, *flat.shape[1:])[rows, order]

        refined = None if batch.refined is None else ranked(batch.refined)
        return SampleSet(searched=ranked(batch.searched), refined=refined,
                         final=refined if refined is not None else ranked(batch.final), loss=ranked(loss.reshape(-1)),
                         z=ranked(batch.search.z), sample=order.astype(np.int64), seeds=seeds, batch=batch,
                         unplaced=unplaced, views_apart=views_apart)

    def _other_samples(self, images, masks, cfg: SearchConfig, start: Start, z0: np.ndarray, first: BatchResult,
                       refine: bool, time_budget_ms, progress,
                       views_apart: np.ndarray | None = None) -> tuple[BatchResult, np.ndarray | None]:
        """Samples 1..K-1 (z0 (N, K-1, restarts, z_dim)) searched as one batch and joined with
        sample 0's BatchResult `first` into one image-major BatchResult of N*K problems, returned
        with the refined samples before placement (SampleSet.unplaced; None unrefined). views_apart
        (N,): the refiner's view disagreement on sample 0 (_refine), given when the samples are
        placed by blend.calibrated; None: the old placement (run_samples)."""
        n, k = len(images), z0.shape[1] + 1
        left = None if time_budget_ms is None else max(time_budget_ms - first.search.seconds * 1000.0, 1e-3)
        rest = self.run(np.repeat(images, k - 1, axis=0), np.repeat(masks, k - 1, axis=0),
                        cfg.replace(steps=cfg.steps_of_samples), start=start, z0=z0.reshape(-1, z0.shape[-1]),
                        refine=False, time_budget_ms=left, progress=progress)
        searched = _join(first.searched, rest.searched, k)
        refined = kept = None
        if refine and self.has_refiner:
            graph = self.samples_refiner(k)
            if graph == "refiner":
                refined = _join(first.refined, self.refine(rest.searched, np.repeat(masks, k - 1, axis=0)), k)
                kept = refined.reshape(n, k, *searched.shape[1:])
            else:
                kept = self.refine(searched, np.repeat(masks, k, axis=0), graph).reshape(n, k, *searched.shape[1:])
            if views_apart is not None:
                sizes = self.refine_config.sample_scale * np.sqrt(views_apart + 1.0)
                refined = blending.calibrated(first.refined, kept, masks, sizes).reshape(n * k, *searched.shape[1:])
            elif graph != "refiner":
                refined = blending.anchored(first.refined, kept, masks).reshape(n * k, *searched.shape[1:])
        a, b = first.search, rest.search
        steps = max(len(a.history), len(b.history))
        search = SearchResult(z=_join(a.z, b.z, k), images=_join(a.images, b.images, k), loss=_join(a.loss, b.loss, k),
                              history=_join(_pad_steps(a.history, steps).T, _pad_steps(b.history, steps).T, k).T,
                              steps_run=a.steps_run, seconds=a.seconds + b.seconds, backend=a.backend,
                              extra={**a.extra, "sample_steps_run": b.steps_run})
        return BatchResult(searched=searched, refined=refined, final=refined if refined is not None else searched,
                           search=search, config=cfg, blend=cfg.blend, start=first.start), kept


def _join(first: np.ndarray, rest: np.ndarray, k: int) -> np.ndarray:
    """Rows of sample 0 (N, ...) and of samples 1..K-1 (N*(K-1), ...) -> image-major (N*K, ...)."""
    first, rest = np.asarray(first), np.asarray(rest)
    n = len(first)
    return np.concatenate([first[:, None], rest.reshape(n, k - 1, *first.shape[1:])], axis=1).reshape(
        n * k, *first.shape[1:])


def _pad_steps(history: np.ndarray, steps: int) -> np.ndarray:
    """A (steps_run, B) best-so-far loss history held at its last row up to `steps` rows."""
    history = np.asarray(history)
    return np.pad(history, ((0, steps - len(history)), (0, 0)), mode="edge")
