"""`edgefill profile`, the measuring loop: where the time of one inpainting goes, per stage, per backend, per batch size.

Backends measured side by side in ONE run: every onnxruntime provider that loads here (or the
ones asked for; one that cannot load is reported under "skipped", never fatal) and, with
compare_torch, the torch eager fallback (runtime.core.torch_fallback). Iterations ALTERNATE between
backends (A B B A A B ...), so machine drift (a background job, thermal state) hits all alike;
the torch and onnxruntime thread pools never run at the same time (OMP_WAIT_POLICY=PASSIVE is
set by the command before torch is imported, so torch's OpenMP threads do not spin while
onnxruntime runs). The first `warmup` iterations of every (backend, batch size) are dropped.

What is timed is what `edgefill inpaint` runs: the search starts where the product's does (the
bundle's encoder when it has one: `init` "auto") with the bundle's settings for that start (steps,
restarts, blend), unless the config names others. One pipeline iteration for a batch of b images
(b x restarts search rows), timed by stage:
    preprocessing  masked images -> model tensors, importance weights W (Pipeline.problem)
    start          the initial z (Pipeline.start: the encoder graph, or seeded random draws)
    search         the whole latent search (`steps` Adam steps + G at the best z):
                   Pipeline.search, i.e. the runtime's own OrtSearch / TorchSearch loops
    blending       G(z) -> uint8, blended into the known pixels with the search settings' blend
                   (Pipeline.blend: Poisson for the shipped bundle, or paste)
    refiner        Pipeline.refine: M*y + (1-M)*R(blended) with refiner.onnx, mirror-averaged
                   when the bundle says so (for torch eager on the first onnxruntime engine: the
                   torch fallback only replaces the search)
    total          the five above, end to end
Measured in the same iteration, outside `total`:
    search_step    one step inside the real search loop (step graph run, loss read back,
                   best-of-K update), from the loop's per-step progress callback; the first
                   step of every search (which also binds the buffers) is left out
    h2d            host-to-device copies the search makes (y, W repeated over restarts; z0)
    d2h            device-to-host copy of a (rows,3,64,64) float32 image batch
    blending_poisson  blend.poisson, for comparison when the product pastes (when it already
                   Poisson-blends, the blending stage's own time: not run a second time)
On the CPU provider h2d/d2h are host memcpys (kept so that GPU runs have the same fields).
With samples K > 1 ("samples" in the report; None otherwise): the whole inpaint of one 64x64
problem (Pipeline.run_samples: search of K x restarts rows, blend, refiner) with K samples and
with 1, alternating on the first onnxruntime backend, and the ratio of their medians.

Statistics per stage (names after perf_analyzer / trtexec): count, mean_ms, std_ms, min_ms,
max_ms, p50_ms (median), p90_ms, p95_ms, p99_ms (numpy linear-interpolation percentiles).
Throughput: images per second of the whole pipeline = b / mean total. Speedup vs torch eager:
torch median / onnx median, per stage. FLOPs: runtime.flops (from the manifest's model
configs) x rows / median search step, beside a measured matmul peak (flops.measured_peak_gflops).

The modules beside this one: config (settings, stage names), backends (what is timed), inputs,
stats, environment, report (text/CSV), trace (onnxruntime's operator profile), flops; the
plot is drawn by runtime.imaging.plots.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...core.bundle import Bundle
from ...imaging.images import from_model
from ...imaging.masks import masked_input
from .backends import load_backends
from .config import EXTRA_STAGES, STAGES, ProfileConfig
from .inputs import make_inputs
from .stats import Samples, latency_stats


def run_iteration(backend, images: np.ndarray, masks: np.ndarray, search_cfg, seed: int, start) -> Samples:
    """One timed pipeline run of `backend.pipeline` from `start` (a runtime.core.starts Start;
    module docstring) -> Samples with one value per stage (search_step: steps - 1 values)."""
    pipe = backend.pipeline
    s = Samples()
    perf = time.perf_counter
    k = search_cfg.restarts
    stamps: list[float] = []
    seeds = [seed] if len(images) == 1 else list(range(seed, seed + len(images)))

    t0 = perf()
    known = masked_input(images, masks)
    y, W = pipe.problem(known, masks)
    t_start = perf()
    z0 = pipe.start(known, masks, search_cfg, start, seeds)
    t1 = perf()
    result = pipe.search(y, W, search_cfg, z0, progress=lambda _n: stamps.append(perf()))
    t2 = perf()
    generated = from_model(result.images)
    blended = pipe.blend(known, generated, masks, search_cfg.blend)
    t3 = perf()
    if pipe.has_refiner:
        pipe.refine(blended, masks)
    t4 = perf()
    s.stages["preprocessing"].append(t_start - t0)
    s.stages["start"].append(t1 - t_start)
    s.stages["search"].append(t2 - t1)
    s.stages["blending"].append(t3 - t2)
    if pipe.has_refiner:
        s.stages["refiner"].append(t4 - t3)
    s.stages["total"].append(t4 - t0)
    s.stages["search_step"].extend(np.diff(stamps).tolist())

    y_rep, W_rep = np.repeat(y, k, axis=0), np.repeat(W, k, axis=0)
    t5 = perf()
    backend.h2d(y_rep, W_rep, z0)
    t6 = perf()
    buffer = backend.d2h_buffer(np.repeat(result.images, k, axis=0))
    t7 = perf()
    backend.d2h(buffer)
    t8 = perf()
    poisson_s = t3 - t2
    if search_cfg.blend != "poisson":
        pipe.blend(known, generated, masks, "poisson")
        poisson_s = perf() - t8
    s.stages["h2d"].append(t6 - t5)
    s.stages["d2h"].append(t8 - t7)
    s.stages["blending_poisson"].append(poisson_s)
    return s


def time_samples(backend, search_cfg, cfg: ProfileConfig, start, tick=lambda: None) -> dict:
    """The whole inpaint of one 64x64 problem with cfg.samples samples against 1, alternating
    (1 K, K 1, ...), warm-up runs dropped -> the report's "samples" entry (module docstring)."""
    images, masks = make_inputs(1, cfg.mask, cfg.seed)
    k = cfg.samples
    seconds: dict[int, list[float]] = {1: [], k: []}
    for it in range(cfg.warmup + cfg.iterations):
        for n in ((1, k) if it % 2 == 0 else (k, 1)):
            t0 = time.perf_counter()
            backend.pipeline.run_samples(images, masks, search_cfg, samples=n, start=start, seeds=[cfg.seed])
            if it >= cfg.warmup:
                seconds[n].append(time.perf_counter() - t0)
            tick()
    single, many = latency_stats(seconds[1]), latency_stats(seconds[k])
    ratio = _ratio(many["p50_ms"], single["p50_ms"])
    return {"backend": backend.name, "samples": k, "rows": k * search_cfg.restarts, "single": single,
            "k_samples": many, "ratio_p50": ratio, "ratio_p50_per_sample": ratio / k if ratio else None,
            "method": "Pipeline.run_samples on one 64x64 problem (search, blend, refiner), K samples vs 1 "
                      "alternating, warm-up runs dropped; ratio = K-samples p50 / single p50"}


@dataclass
class ProfileResult:
    """report: the JSON document; samples[(backend name, batch size)]: raw Samples (for plots)."""

    report: dict
    samples: dict


def _ratio(num, den):
    return float(num / den) if num and den else None


def profile(bundle: Bundle, cfg: ProfileConfig, progress: bool = True) -> ProfileResult:
    """Run the alternating measurement (module docstring) and build the report."""
    from tqdm import tqdm

    from . import flops as F
    from .environment import environment, loadavg

    backends, skipped = load_backends(bundle, cfg)
    has_refiner = bundle.has_graph("refiner")
    primary = next(b for b in backends if b.torch is None)
    start = primary.pipeline.make_start(cfg.init)
    search_cfg = primary.pipeline.config(steps=cfg.steps, restarts=cfg.restarts, patience=0, start=start.name)
    samples = {(b.name, bs): Samples() for b in backends for bs in cfg.batch_sizes}
    load_start = loadavg()
    peaks = [F.measured_peak_gflops()] if cfg.measure_peak else []
    runs_per_round = len(cfg.batch_sizes) * len(backends) + (2 if cfg.samples > 1 else 0)
    bar = tqdm(total=runs_per_round * (cfg.warmup + cfg.iterations), desc="profile", unit="run",
               disable=not progress, leave=False)
    sample_report = None
    try:
        for bs in cfg.batch_sizes:
            images, masks = make_inputs(bs, cfg.mask, cfg.seed)
            for it in range(cfg.warmup + cfg.iterations):
                order = backends if it % 2 == 0 else backends[::-1]  # A B, B A, A B, ...
                for be in order:
                    s = run_iteration(be, images, masks, search_cfg, cfg.seed, start)
                    if it >= cfg.warmup:
                        samples[(be.name, bs)].add(s)
                    bar.update(1)
                    bar.set_postfix(batch=bs, backend=be.name)
        if cfg.samples > 1:
            bar.set_postfix(samples=cfg.samples, backend=primary.name)
            sample_report = time_samples(primary, search_cfg, cfg, start, lambda: bar.update(1))
    finally:
        bar.close()
    load_end = loadavg()

    model_flops = F.model_flops(bundle.manifest.get("models", {}))
    if cfg.measure_peak:  # before and after the runs: the machine's load may change in between
        peaks.append(F.measured_peak_gflops())
    peak = max(peaks, key=lambda p: p["gflops"]) if peaks else None
    from ...core.engine import physical_cores

    nominal = F.nominal_peak_gflops(physical_cores())
    runs = []
    for be in backends:
        for bs in cfg.batch_sizes:
            stages = {name: latency_stats(samples[(be.name, bs)].stages[name]) for name in (*STAGES, *EXTRA_STAGES)}
            rows = bs * search_cfg.restarts
            step_p50 = stages["search_step"]["p50_ms"]
            achieved = model_flops["search_step"] * rows / (step_p50 / 1000.0) / 1e9 if step_p50 else None
            runs.append({
                "backend": be.name, "provider": be.provider, "threads": be.threads, "batch_size": bs, "rows": rows,
                "stages": stages,
                "throughput_images_per_s": bs / (stages["total"]["mean_ms"] / 1000.0),
                "search_steps_per_s": rows / (step_p50 / 1000.0) if step_p50 else None,
                "achieved_gflops": achieved,
                "fraction_of_peak": achieved / peak["gflops"] if achieved and peak else None,
            })
    torch_be = next((b for b in backends if b.torch is not None), None)
    by = {(r["backend"], r["batch_size"]): r for r in runs}
    first = cfg.batch_sizes[0]
    speedup = speedup_stages = None
    if torch_be is not None:
        speedup, speedup_stages = {}, {}
        for bs in cfg.batch_sizes:
            o, t = by[(primary.name, bs)]["stages"], by[(torch_be.name, bs)]["stages"]
            speedup[str(bs)] = _ratio(t["search_step"]["p50_ms"], o["search_step"]["p50_ms"])
            speedup_stages[str(bs)] = {k: _ratio(t[k]["p50_ms"], o[k]["p50_ms"]) for k in ("search_step", "search",
                                                                                          "total")}
    report = {
        "backend": primary.name,
        "batch_size": first,
        "stages": by[(primary.name, first)]["stages"],
        "throughput_images_per_s": {str(bs): by[(primary.name, bs)]["throughput_images_per_s"]
                                    for bs in cfg.batch_sizes},
        "speedup_vs_torch_eager": speedup,
        "speedup_vs_torch_eager_by_stage": speedup_stages,
        "runs": runs,
        "samples": sample_report,
        "skipped": skipped,
        "flops": {
            "per_image": {k: v for k, v in model_flops.items() if k != "convention"},
            "convention": model_flops["convention"],
            "search_step_flops_per_row": model_flops["search_step"],
            "refiner_passes_per_image": (2 if primary.pipeline.refine_config.flip_average else 1) if has_refiner
            else 0,
            "achieved_gflops": {f"{r['backend']}@{r['batch_size']}": r["achieved_gflops"] for r in runs},
            "peak_gflops": peak["gflops"] if peak else None,
            "peak_method": (peak["method"] + "; the higher of one measurement before and one after the runs")
            if peak else None,
            "peak_measurements_gflops": [p["gflops"] for p in peaks],
            "nominal_peak_gflops": nominal["gflops"] if nominal else None,
            "nominal_peak_method": nominal["method"] if nominal else None,
            "achieved_from": "search_step p50_ms",
        },
        "environment": environment(backends, load_start, load_end),
        "settings": {
            "bundle": str(bundle.root), "batch_sizes": list(cfg.batch_sizes), "steps": search_cfg.steps,
            "restarts": search_cfg.restarts, "init": cfg.init, "start": start.name, "blend": search_cfg.blend,
            "refine": primary.pipeline.refine_config.to_dict() if has_refiner else None, "iterations": cfg.iterations, "warmup": cfg.warmup, "mask": cfg.mask,
            "seed": cfg.seed, "samples": cfg.samples, "search": search_cfg.to_dict(),
            "backends": [b.name for b in backends],
            "alternation": "A B / B A per iteration, warm-up iterations dropped",
            "refiner": "refiner.onnx on each onnxruntime backend's provider; torch eager uses the first "
                       "onnxruntime backend's" if has_refiner else None,
            "percentiles": "numpy linear interpolation", "speedup": "torch-eager p50 / onnx p50",
            "throughput": "batch size / mean total",
        },
    }
    return ProfileResult(report=report, samples=samples)
