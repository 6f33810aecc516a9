"""`edgefill profile`: where the time of one inpainting goes, per stage, per backend, per batch size.

Backends measured side by side in ONE run: every onnxruntime provider that loads here (or the
ones asked for; one that cannot load is reported under "skipped", never fatal) and, with
compare_torch, the torch eager fallback (runtime.torch_fallback). Iterations ALTERNATE between
backends (A B B A A B ...), so machine drift (a background job, thermal state) hits all alike;
the torch and onnxruntime thread pools never run at the same time (OMP_WAIT_POLICY=PASSIVE is
set by the command before torch is imported, so torch's OpenMP threads do not spin while
onnxruntime runs). The first `warmup` iterations of every (backend, batch size) are dropped.

One pipeline iteration for a batch of b images (b x restarts search rows), timed by stage:
    preprocessing  masked images -> model tensors, importance weights W, initial z (numpy)
    search         the whole latent search (`steps` Adam steps + G at the best z):
                   search.OrtSearch / torch_fallback.TorchSearch, the runtime's own loops
    blending       G(z) -> uint8, paste into the known pixels (blend.paste)
    refiner        M*y + (1-M)*R(pasted) with refiner.onnx (also for torch eager: the torch
                   fallback only replaces the search; it refines on the first onnxruntime engine)
    total          the four above, end to end
Measured in the same iteration, outside `total`:
    search_step    one step inside the real search loop (step graph run, loss read back,
                   best-of-K update), from the loop's per-step progress callback; the first
                   step of every search (which also binds the buffers) is left out
    h2d            host-to-device copies the search makes (y, W repeated over restarts; z0)
    d2h            device-to-host copy of a (rows,3,64,64) float32 image batch
    blending_poisson  blend.poisson instead of paste, for comparison
On the CPU provider h2d/d2h are host memcpys (kept so that GPU runs have the same fields).

Statistics per stage (names after perf_analyzer / trtexec): count, mean_ms, std_ms, min_ms,
max_ms, p50_ms (median), p90_ms, p95_ms, p99_ms (numpy linear-interpolation percentiles).
Throughput: images per second of the whole pipeline = b / mean total. Speedup vs torch eager:
torch median / onnx median, per stage. FLOPs: runtime.flops (from the manifest's model
configs) x rows / median search step, beside a measured matmul peak (flops.measured_peak_gflops).
"""
from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Bundle
from .errors import EdgefillError

STAGES = ("preprocessing", "h2d", "search_step", "search", "refiner", "blending", "d2h", "total")
EXTRA_STAGES = ("blending_poisson",)
STAT_KEYS = ("count", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
TORCH_NAME = "torch-eager"


@dataclass(frozen=True)
class ProfileConfig:
    """batch_sizes: images per batch; steps: Adam steps per search (>= 2, so that a step other than
    the first is timed); restarts: starts per image (search rows = batch x restarts);
    iterations: timed pipeline runs per (backend, batch size) after `warmup` untimed ones;
    providers: None = every provider that loads; threads: intra-op threads (None = physical cores)."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    steps: int = 20
    restarts: int = 1
    iterations: int = 10
    warmup: int = 2
    providers: tuple[str, ...] | None = None
    compare_torch: bool = False
    threads: int | None = None
    mask: str = "center"
    seed: int = 0
    measure_peak: bool = True

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise EdgefillError("--batch-sizes: give positive batch sizes, e.g. 1,8,32")
        if self.steps < 2:
            raise EdgefillError("--steps must be at least 2 (the first step of a search also binds buffers)")
        if self.iterations < 1 or self.warmup < 0 or self.restarts < 1:
            raise EdgefillError("--iterations and --restarts must be >= 1 and --warmup >= 0")


def latency_stats(seconds) -> dict:
    """Per-sample durations in seconds -> {count, mean_ms, std_ms, min_ms, max_ms, p50..p99_ms}."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    if ms.size == 0:
        return {k: (0 if k == "count" else None) for k in STAT_KEYS}
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"count": int(ms.size), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "p50_ms": float(p50), "p90_ms": float(p90),
            "p95_ms": float(p95), "p99_ms": float(p99)}


# ----------------------------------------------------------------------------- backends


class _Backend:
    """One thing being timed. name: 'onnx-cpu', 'onnx-cuda', ..., or 'torch-eager'."""

    name: str
    provider: str
    threads: int

    def search(self, y, W, cfg, z0, progress):
        raise NotImplementedError

    def h2d(self, y_rep, W_rep, z0) -> None:
        raise NotImplementedError

    def d2h_buffer(self, images: np.ndarray):
        raise NotImplementedError

    def d2h(self, buffer) -> np.ndarray:
        raise NotImplementedError


class OrtBackend(_Backend):
    def __init__(self, engine):
        from .search import OrtSearch

        self.engine = self.refiner_engine = engine
        self.searcher = OrtSearch(engine)
        self.name = f"onnx-{engine.provider}"
        self.provider = engine.provider
        self.threads = engine.threads

    def search(self, y, W, cfg, z0, progress):
        return self.searcher.search(y, W, cfg, z0, progress=progress)

    def h2d(self, y_rep, W_rep, z0) -> None:
        for a in (y_rep, W_rep, z0):
            self.engine.ortvalue(a)

    def d2h_buffer(self, images):
        return self.engine.ortvalue(images)

    def d2h(self, buffer):
        return buffer.numpy()


class TorchBackend(_Backend):
    """threads: torch intra-op threads (None: torch's default, the physical cores). engine: the
    onnxruntime engine beside it: torch searches on its device (cuda when it is on a GPU and torch
    sees one, as Inpainter(backend="torch") does) and the refiner runs on it."""

    def __init__(self, bundle: Bundle, threads: int | None = None, engine=None):
        from .torch_fallback import TorchSearch, import_torch

        self.torch = import_torch()
        if threads:
            self.torch.set_num_threads(int(threads))
        device = "cuda" if engine is not None and engine.device == "cuda" else "cpu"
        self.searcher = TorchSearch(bundle, device=device)
        self.refiner_engine = engine
        self.name = TORCH_NAME
        self.provider = "torch-" + self.searcher.device
        self.threads = int(self.torch.get_num_threads())

    def search(self, y, W, cfg, z0, progress):
        return self.searcher.search(y, W, cfg, z0, progress=progress)

    def h2d(self, y_rep, W_rep, z0) -> None:
        dev = self.searcher.device
        for a in (y_rep, W_rep, z0):
            self.torch.from_numpy(np.array(a, copy=True)).to(dev)

    def d2h_buffer(self, images):
        return self.torch.from_numpy(np.array(images, copy=True)).to(self.searcher.device)

    def d2h(self, buffer):
        return buffer.detach().cpu().numpy().copy()


def load_backends(bundle: Bundle, cfg: ProfileConfig) -> tuple[list[_Backend], list[dict]]:
    """Every requested backend that loads -> (backends, skipped [{name, reason}]). Each backend's
    `refiner_engine` runs refiner.onnx: an onnxruntime backend's own engine; for torch eager the
    first onnxruntime backend's engine, as Inpainter(backend="torch") refines on its engine."""
    from .engine import AUTO_ORDER, Engine, PROVIDERS

    wanted = cfg.providers or AUTO_ORDER
    backends: list[_Backend] = []
    skipped: list[dict] = []
    for p in wanted:
        if p not in PROVIDERS:
            raise EdgefillError(f"unknown provider {p!r}; use any of {', '.join(PROVIDERS)}")
        try:
            backends.append(OrtBackend(Engine(bundle, provider=p, threads=cfg.threads)))
        except EdgefillError as exc:
            skipped.append({"name": f"onnx-{p}", "reason": str(exc)})
    if not backends:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped)
        raise EdgefillError(f"no onnxruntime provider could be loaded ({reasons})")
    if cfg.compare_torch:
        try:
            backends.append(TorchBackend(bundle, cfg.threads, engine=backends[0].engine))
        except EdgefillError as exc:
            skipped.append({"name": TORCH_NAME, "reason": str(exc)})
    return backends, skipped


# ----------------------------------------------------------------------------- one iteration


@dataclass
class Samples:
    """Raw per-sample durations (seconds) of one (backend, batch size)."""

    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in (*STAGES, *EXTRA_STAGES)})

    def add(self, other: "Samples") -> None:
        for k, v in other.stages.items():
            self.stages[k].extend(v)


def make_inputs(batch: int, mask: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic inputs: the committed-sample-like synthetic faces are not needed for timing,
    so images are seeded smooth noise, uint8 (b,64,64,3); masks uint8 (b,64,64) of kind `mask`."""
    import cv2

    from .masks import resolve_mask

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(batch, 8, 8, 3), dtype=np.uint8)
    images = np.stack([cv2.resize(s, (64, 64), interpolation=cv2.INTER_CUBIC) for s in small])
    masks = np.stack([resolve_mask(mask, np.random.default_rng([seed, i])) for i in range(batch)])
    return images, masks


def run_iteration(backend: _Backend, refiner_engine, images: np.ndarray, masks: np.ndarray, search_cfg,
                  z_dim: int, seed: int) -> Samples:
    """One timed pipeline run (module docstring) -> Samples with one value per stage
    (search_step: steps - 1 values)."""
    from . import blend
    from .images import from_model, to_model
    from .masks import importance_weights
    from .torch_search import initial_z

    s = Samples()
    perf = time.perf_counter
    k = search_cfg.restarts
    stamps: list[float] = []

    t0 = perf()
    known = np.where((masks >= 128)[..., None], np.uint8(128), images)
    y = to_model(known)
    W = importance_weights(masks)
    z0 = initial_z(len(images), k, z_dim, seed)
    t1 = perf()
    result = backend.search(y, W, search_cfg, z0, progress=lambda _n: stamps.append(perf()))
    t2 = perf()
    generated = from_model(result.images)
    pasted = blend.paste(known, generated, masks)
    t3 = perf()
    if refiner_engine is not None:
        refined = from_model(refiner_engine.forward("refiner", to_model(pasted)))
        blend.paste(known, refined, masks)
    t4 = perf()
    s.stages["preprocessing"].append(t1 - t0)
    s.stages["search"].append(t2 - t1)
    s.stages["blending"].append(t3 - t2)
    if refiner_engine is not None:
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
    blend.poisson(known, generated, masks)
    t9 = perf()
    s.stages["h2d"].append(t6 - t5)
    s.stages["d2h"].append(t8 - t7)
    s.stages["blending_poisson"].append(t9 - t8)
    return s


# ----------------------------------------------------------------------------- the whole run


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

    backends, skipped = load_backends(bundle, cfg)
    has_refiner = bundle.has_graph("refiner")
    search_cfg = bundle.search_defaults.replace(steps=cfg.steps, restarts=cfg.restarts, patience=0)
    z_dim = bundle.z_dim
    samples = {(b.name, bs): Samples() for b in backends for bs in cfg.batch_sizes}
    load_start = _loadavg()
    peaks = [F.measured_peak_gflops()] if cfg.measure_peak else []
    bar = tqdm(total=len(cfg.batch_sizes) * (cfg.warmup + cfg.iterations) * len(backends), desc="profile",
               unit="run", disable=not progress, leave=False)
    try:
        for bs in cfg.batch_sizes:
            images, masks = make_inputs(bs, cfg.mask, cfg.seed)
            for it in range(cfg.warmup + cfg.iterations):
                order = backends if it % 2 == 0 else backends[::-1]  # A B, B A, A B, ...
                for be in order:
                    s = run_iteration(be, be.refiner_engine if has_refiner else None, images, masks, search_cfg,
                                      z_dim, cfg.seed)
                    if it >= cfg.warmup:
                        samples[(be.name, bs)].add(s)
                    bar.update(1)
                    bar.set_postfix(batch=bs, backend=be.name)
    finally:
        bar.close()
    load_end = _loadavg()

    model_flops = F.model_flops(bundle.manifest.get("models", {}))
    if cfg.measure_peak:  # before and after the runs: the machine's load may change in between
        peaks.append(F.measured_peak_gflops())
    peak = max(peaks, key=lambda p: p["gflops"]) if peaks else None
    from .engine import physical_cores

    nominal = F.nominal_peak_gflops(physical_cores())
    runs = []
    for be in backends:
        for bs in cfg.batch_sizes:
            stages = {name: latency_stats(samples[(be.name, bs)].stages[name]) for name in (*STAGES, *EXTRA_STAGES)}
            rows = bs * cfg.restarts
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
    primary = next(b for b in backends if isinstance(b, OrtBackend))
    torch_be = next((b for b in backends if isinstance(b, TorchBackend)), None)
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
        "skipped": skipped,
        "flops": {
            "per_image": {k: v for k, v in model_flops.items() if k != "convention"},
            "convention": model_flops["convention"],
            "search_step_flops_per_row": model_flops["search_step"],
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
            "bundle": str(bundle.root), "batch_sizes": list(cfg.batch_sizes), "steps": cfg.steps,
            "restarts": cfg.restarts, "iterations": cfg.iterations, "warmup": cfg.warmup, "mask": cfg.mask,
            "seed": cfg.seed, "search": search_cfg.to_dict(), "backends": [b.name for b in backends],
            "alternation": "A B / B A per iteration, warm-up iterations dropped",
            "refiner": "refiner.onnx on each onnxruntime backend's provider; torch eager uses the first "
                       "onnxruntime backend's" if has_refiner else None,
            "percentiles": "numpy linear interpolation", "speedup": "torch-eager p50 / onnx p50",
            "throughput": "batch size / mean total",
        },
    }
    return ProfileResult(report=report, samples=samples)


# ----------------------------------------------------------------------------- environment


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_mb() -> dict:
    out: dict = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    try:
        with open("/proc/self/statm") as f:
            out["rss_mb"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    out["total_mb"] = int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return out


def gpu_info() -> list[dict] | None:
    """GPUs as nvidia-smi reports them (name, memory total/used MiB, this process's MiB), or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        apps = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    mine = sum(float(p[1]) for p in (ln.split(",") for ln in apps.stdout.splitlines() if ln.strip())
               if len(p) == 2 and p[0].strip() == str(os.getpid()))
    gpus = []
    for ln in out.stdout.splitlines():
        parts = [p.strip() for p in ln.split(",")]
        if len(parts) == 4:
            gpus.append({"index": int(parts[0]), "name": parts[1], "memory_total_mb": float(parts[2]),
                         "memory_used_mb": float(parts[3]), "this_process_mb": mine})
    return gpus or None


def _version(module: str) -> str | None:
    from importlib import metadata

    for dist in {"onnxruntime": ("onnxruntime-gpu", "onnxruntime"), "cv2": ("opencv-python-headless",
                                                                            "opencv-python")}.get(module, (module,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment(backends: list[_Backend], load_start=None, load_end=None) -> dict:
    """Versions, CPU/GPU, memory and load, recorded beside the numbers."""
    import cv2
    import onnxruntime as ort

    from . import __version__
    from .engine import physical_cores

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    env = {
        "edgefill": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "numpy": np.__version__, "onnxruntime": ort.__version__, "onnxruntime_build": _version("onnxruntime"),
        "onnxruntime_available_providers": ort.get_available_providers(), "opencv": cv2.__version__,
        "torch": None,
        "cpu": {"model": _cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
                "physical_cores": physical_cores()},
        "memory": _memory_mb(), "gpu": gpu_info(),
        "backends": [{"name": b.name, "provider": b.provider, "threads": b.threads} for b in backends],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_start": load_start, "loadavg_end": load_end,
    }
    torch_be = next((b for b in backends if isinstance(b, TorchBackend)), None)
    if torch_be is not None:
        env["torch"] = torch_be.torch.__version__
    return env


# ----------------------------------------------------------------------------- outputs


def csv_text(report: dict) -> str:
    """One row per (backend, batch size, stage) with every statistic and the run's throughput."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["backend", "provider", "threads", "batch_size", "rows", "stage", *STAT_KEYS,
                "throughput_images_per_s"])
    for r in report["runs"]:
        for stage, st in r["stages"].items():
            w.writerow([r["backend"], r["provider"], r["threads"], r["batch_size"], r["rows"], stage,
                        *["" if st[k] is None else (st[k] if k == "count" else f"{st[k]:.6g}") for k in STAT_KEYS],
                        f"{r['throughput_images_per_s']:.6g}"])
    return buf.getvalue()


def table_text(report: dict) -> str:
    """A plain-text summary: p50/p90/p99 per stage for every run, then throughput and speedup."""
    lines = []
    for r in report["runs"]:
        lines.append(f"{r['backend']} (threads {r['threads']}), batch {r['batch_size']} "
                     f"({r['rows']} rows): {r['throughput_images_per_s']:.2f} images/s"
                     + (f", {r['achieved_gflops']:.1f} GFLOP/s in the search step" if r["achieved_gflops"] else "")
                     + (f" ({100 * r['fraction_of_peak']:.0f}% of peak)" if r["fraction_of_peak"] else ""))
        lines.append(f"  {'stage':<17}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'n':>6}")
        for stage, st in r["stages"].items():
            if st["count"]:
                lines.append(f"  {stage:<17}{st['p50_ms']:>10.3f}{st['p90_ms']:>10.3f}{st['p99_ms']:>10.3f}"
                             f"{st['mean_ms']:>10.3f}{st['count']:>6}")
    if report["speedup_vs_torch_eager"]:
        for bs, d in report["speedup_vs_torch_eager_by_stage"].items():
            parts = ", ".join(f"{k} {v:.2f}x" for k, v in d.items() if v)
            lines.append(f"speedup vs torch eager at batch {bs} (p50): {parts}")
    fl = report["flops"]
    if fl["peak_gflops"]:
        lines.append(f"peak {fl['peak_gflops']:.1f} GFLOP/s ({fl['peak_method']})")
    if fl.get("nominal_peak_gflops"):
        lines.append(f"nominal peak {fl['nominal_peak_gflops']:.0f} GFLOP/s ({fl['nominal_peak_method']})")
    trace = report.get("ort_trace")
    if trace:
        ops = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in trace["top_ops"][:5])
        lines.append(f"onnxruntime trace ({trace['steps']} steps, batch {trace['batch_size']}): {ops} "
                     f"-> {trace['path']}")
    for s in report["skipped"]:
        lines.append(f"skipped {s['name']}: {s['reason']}")
    return "\n".join(lines) + "\n"


def plot_image(result: ProfileResult) -> np.ndarray:
    """RGB uint8 figure: stage latency distributions (primary backend, first batch size), the
    search-step distribution of every backend and batch size, throughput against batch size."""
    from .pictures import box_plot, line_plot, stack_panels

    rep = result.report
    primary, first = rep["backend"], rep["batch_size"]
    stage_groups = {k: np.asarray(v) * 1000.0 for k, v in result.samples[(primary, first)].stages.items() if v}
    step_groups = {f"{name} b{bs}": np.asarray(s.stages["search_step"]) * 1000.0
                   for (name, bs), s in result.samples.items() if s.stages["search_step"]}
    backends = list(dict.fromkeys(r["backend"] for r in rep["runs"]))
    sizes = rep["settings"]["batch_sizes"]
    thr = {b: [next(r["throughput_images_per_s"] for r in rep["runs"] if r["backend"] == b and r["batch_size"] == bs)
               for bs in sizes] for b in backends}
    panels = [
        box_plot(stage_groups, title=f"latency per stage, {primary}, batch {first} (log scale)", xlabel="ms",
                 size=(760, 40 + 34 * len(stage_groups) + 45)),
        box_plot(step_groups, title="one search step per backend and batch size (log scale)", xlabel="ms",
                 size=(760, 40 + 34 * len(step_groups) + 45)),
        line_plot(thr, title="throughput (whole inpaint) vs batch size", xlabel="batch size", ylabel="images/s",
                  size=(760, 320), x=sizes),
    ]
    return stack_panels(panels)


def ort_trace(engine, search_cfg, batch: int, steps: int, path, mask: str = "center", seed: int = 0) -> dict:
    """onnxruntime's own per-operator profile of `steps` search steps at `batch` images (chrome
    trace JSON from SessionOptions.enable_profiling / end_profiling), written to `path`.
    Returns {"path", "steps", "top_ops": [{"op", "calls", "total_ms", "share"}]} (top 10 by time)."""
    import json
    import tempfile

    import onnxruntime as ort

    from .atomic import write_bytes
    from .bundle import PRIOR_CODE
    from .engine import session_options
    from .images import to_model
    from .masks import importance_weights
    from .torch_search import initial_z

    base = engine.session("search_step")
    providers = base.get_providers()
    opts = base.get_provider_options()
    k = search_cfg.restarts
    images, masks = make_inputs(batch, mask, seed)
    feeds = {"z": initial_z(batch, k, engine.bundle.z_dim, seed), "y": np.repeat(to_model(images), k, axis=0),
             "W": np.repeat(importance_weights(masks), k, axis=0)}
    b = len(feeds["z"])
    feeds.update({"m": np.zeros_like(feeds["z"]), "v": np.zeros_like(feeds["z"]), "t": np.zeros(b, np.float32)})
    scal = {"lam": search_cfg.lam, "lr": search_cfg.lr, "beta1": search_cfg.beta1, "beta2": search_cfg.beta2,
            "eps": search_cfg.eps, "prior": PRIOR_CODE[search_cfg.prior]}
    feeds.update({n: np.array(v, np.float32) for n, v in scal.items()})
    with tempfile.TemporaryDirectory(prefix="edgefill-trace-") as tmp:
        so = session_options(engine.threads)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "search_step")
        sess = ort.InferenceSession(str(engine.bundle.graph_path("search_step")), so, providers=providers,
                                    provider_options=[opts.get(p, {}) for p in providers])
        names = [o.name for o in sess.get_outputs()]
        for _ in range(steps):
            out = dict(zip(names, sess.run(names, feeds)))
            feeds.update(z=out["z_next"], m=out["m_next"], v=out["v_next"], t=out["t_next"])
        trace_file = sess.end_profiling()
        raw = open(trace_file, "rb").read()
    write_bytes(path, raw)
    events = json.loads(raw)
    per_op: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            per_op.setdefault(op, []).append(float(e.get("dur", 0)) / 1000.0)
    total = sum(sum(v) for v in per_op.values()) or 1.0
    top = sorted(({"op": op, "calls": len(v), "total_ms": sum(v), "share": sum(v) / total}
                  for op, v in per_op.items()), key=lambda d: -d["total_ms"])[:10]
    return {"path": str(path), "steps": steps, "batch_size": batch, "provider": engine.provider, "top_ops": top}
