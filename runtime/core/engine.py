"""The execution engine: onnxruntime sessions for one bundle's graphs on one execution provider.

Provider choice (`provider=None` or "auto"): TensorRT, then CUDA, then CPU, each only when it
really loads. onnxruntime-gpu lists the CUDA and TensorRT providers even on machines where
their libraries (CUDA, cuDNN, TensorRT) or a GPU are missing, and then quietly runs on the CPU,
so a provider counts as loaded only when a session created with it reports it first in
`session.get_providers()`. The probe session is the generator's (every bundle has one and the
runtime needs it anyway). A forced provider ("cpu", "cuda", "tensorrt") that does not load is
an EdgefillError with one line.

Session options, set deliberately (see `session_options`): intra-op threads = physical cores
(affinity-aware) unless given, no busy-waiting of idle threads, one inter-op thread,
sequential execution, graph optimisation
ORT_ENABLE_ALL (safe for the search step: Adam's eps is a graph INPUT, so constant folding
cannot delete it; tests/test_runtime_engine.py checks a zero-gradient step stays finite),
memory-pattern planning and the CPU arena on (the search runs the same shapes every step).

onnxruntime's own log lines (expected provider-load failures, EP-assignment warnings) are
kept off the terminal: while probing, the process-wide default logger is raised to FATAL and
afterwards left at ERROR; edgefill's own sessions log only FATAL. Failures reach the user as
one EdgefillError line carrying onnxruntime's message.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .bundle import Bundle
from ..errors import EdgefillError

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
PROVIDER_NAMES = {v: k for k, v in PROVIDERS.items()}
AUTO_ORDER = ("tensorrt", "cuda", "cpu")
# What each choice asks onnxruntime for: nodes a provider cannot take go to the next one.
CHAINS = {"tensorrt": ("tensorrt", "cuda", "cpu"), "cuda": ("cuda", "cpu"), "cpu": ("cpu",)}
LOG_ERROR, LOG_FATAL = 3, 4


def physical_cores() -> int:
    """Physical cores this process may use: min(affinity CPUs, distinct (socket, core) pairs)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        phys = core = None
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip():
                    if core is not None:
                        cores.add((phys or "0", core))
                    phys = core = None
            if core is not None:
                cores.add((phys or "0", core))
    except OSError:
        pass
    return max(1, min(usable, len(cores)) if cores else usable)


def session_options(threads: int | None = None, spin: bool = False) -> ort.SessionOptions:
    """The options every edgefill session uses (module docstring); threads None = physical cores.

    spin: let idle intra-op threads busy-wait between ops. Off by default: on a 2-core machine
    shared with one other busy process, spinning made a base search step 1.6-1.8x SLOWER
    (B=1: 49 ms vs 28 ms; B=4: 159 ms vs 99 ms), and edge devices rarely run the search alone.
    """
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.intra_op_num_threads = int(threads) if threads else physical_cores()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_mem_pattern = True
    so.enable_cpu_mem_arena = True
    so.log_severity_level = LOG_FATAL  # failures arrive as exceptions, reworded as one EdgefillError line
    return so


def _trt_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return str(Path(base) / "edgefill" / "tensorrt")


def _provider_list(choice: str) -> list:
    """The onnxruntime `providers` argument for one choice (its chain, with TensorRT's engine cache)."""
    out: list = []
    for name in CHAINS[choice]:
        if name == "tensorrt":
            out.append((PROVIDERS[name], {"trt_engine_cache_enable": "True", "trt_engine_cache_path": _trt_cache_dir()}))
        else:
            out.append(PROVIDERS[name])
    return out


def _first_line(exc: BaseException) -> str:
    """onnxruntime's message as one short line, without its C++ source location prefix."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    text = re.sub(r"^\S+\.(cc|h|cpp):\d+ .*?\) ", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


def _create(path: Path, options: ort.SessionOptions, choice: str) -> ort.InferenceSession:
    # enable_fallback=0: onnxruntime would otherwise print its own retry banner to stdout.
    return ort.InferenceSession(str(path), options, providers=_provider_list(choice), enable_fallback=0)


class Engine:
    """Sessions for one bundle on one provider.

    provider: None/"auto" (TensorRT > CUDA > CPU, first that loads) or "cpu", "cuda",
    "tensorrt" (forced). Attributes: `provider` (the choice actually used), `device` ("cuda"
    or "cpu": where IO-bound buffers live), `threads` (intra-op threads).
    """

    def __init__(self, bundle: Bundle, provider: str | None = None, threads: int | None = None):
        requested = (provider or "auto").lower()
        if requested != "auto" and requested not in PROVIDERS:
            raise EdgefillError(f"unknown provider {provider!r}; use one of auto, {', '.join(PROVIDERS)}")
        if threads is not None and int(threads) < 1:
            raise EdgefillError("threads must be at least 1")
        self.bundle = bundle
        self.requested = requested
        self.threads = int(threads) if threads else physical_cores()
        self.options = session_options(self.threads)
        self._sessions: dict[str, ort.InferenceSession] = {}
        self.provider = self._resolve()

    @property
    def device(self) -> str:
        return "cuda" if self.provider in ("cuda", "tensorrt") else "cpu"

    def _resolve(self) -> str:
        """Find the provider by loading the generator with it; keeps that session."""
        path = self.bundle.graph_path("generator")
        available = ort.get_available_providers()
        candidates = AUTO_ORDER if self.requested == "auto" else (self.requested,)
        ort.set_default_logger_severity(LOG_FATAL)
        try:
            reasons = []
            for choice in candidates:
                if PROVIDERS[choice] not in available:
                    reasons.append(f"this onnxruntime build has no {choice} provider (it has "
                                   f"{', '.join(PROVIDER_NAMES.get(p, p) for p in available)})")
                    continue
                try:
                    sess = _create(path, self.options, choice)
                except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
                    if choice == "cpu":
                        raise EdgefillError(f"{path.name} does not load in onnxruntime: {_first_line(exc)}") from None
                    reasons.append(f"it did not load on this machine ({_first_line(exc)})")
                    continue
                if sess.get_providers()[0] != PROVIDERS[choice]:
                    reasons.append("its libraries or device did not load on this machine")
                    continue
                self._sessions["generator"] = sess
                return choice
        finally:
            ort.set_default_logger_severity(LOG_ERROR)
        raise EdgefillError(f"provider {self.requested} cannot be used: {reasons[-1] if reasons else 'unavailable'}")

    def session(self, name: str) -> ort.InferenceSession:
        """The session of one bundle graph ('generator', 'discriminator', 'refiner', 'search_step')."""
        if name not in self._sessions:
            path = self.bundle.graph_path(name)
            try:
                self._sessions[name] = _create(path, self.options, self.provider)
            except Exception as exc:  # noqa: BLE001
                raise EdgefillError(f"{name} graph ({path.name}) does not load on {self.provider}: "
                                    f"{_first_line(exc)}") from None
        return self._sessions[name]

    def run(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Plain host-to-host run of one graph: inputs by name -> outputs by name (numpy)."""
        sess = self.session(name)
        names = [o.name for o in sess.get_outputs()]
        try:
            values = sess.run(names, inputs)
        except Exception as exc:  # noqa: BLE001
            raise EdgefillError(f"{name} graph failed on {self.provider}: {_first_line(exc)}") from None
        return dict(zip(names, values))

    def forward(self, name: str, x: np.ndarray) -> np.ndarray:
        """Single-input, single-output graphs (generator, discriminator, refiner): x -> y (float32)."""
        sess = self.session(name)
        return self.run(name, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[
            sess.get_outputs()[0].name]

    def ortvalue(self, array: np.ndarray) -> ort.OrtValue:
        """A copy of a host array on the engine's device (never aliases `array`, also on the CPU)."""
        return ort.OrtValue.ortvalue_from_numpy(np.array(array, order="C", copy=True), self.device, 0)

    def empty(self, shape: tuple[int, ...], dtype=np.float32) -> ort.OrtValue:
        """An uninitialised buffer on the engine's device."""
        return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, self.device, 0)
