"""The things `edgefill profile` times side by side: one pipeline per backend, plus the probes
of host<->device copies that a pipeline does not expose as stages.

    OrtBackend     a Pipeline searching with the step graph on one onnxruntime provider
                   ("onnx-cpu", "onnx-cuda", "onnx-tensorrt"); refines on its own engine
    TorchBackend   a Pipeline with the torch eager fallback ("torch-eager"), sharing the first
                   onnxruntime backend's engine: it searches on that engine's device (cuda when
                   it is on a GPU and torch sees one) and refines on it, as
                   Inpainter(backend="torch") does
"""
from __future__ import annotations

import numpy as np

from ...core.bundle import Bundle
from ...core.pipeline import Pipeline
from ...errors import EdgefillError
from .config import TORCH_NAME, ProfileConfig


class OrtBackend:
    """name 'onnx-<provider>'; pipeline: the Pipeline timed; engine: its onnxruntime engine."""

    torch = None

    def __init__(self, engine):
        self.engine = engine
        self.pipeline = Pipeline(engine=engine, backend="onnx")
        if self.pipeline.backend != "onnx":
            raise EdgefillError(f"the step graph cannot run on {engine.provider}")
        self.name = f"onnx-{engine.provider}"
        self.provider = engine.provider
        self.threads = engine.threads

    def h2d(self, y_rep, W_rep, z0) -> None:
        """Copy the search's inputs to the device as the search does (host memcpy on the CPU)."""
        for a in (y_rep, W_rep, z0):
            self.engine.ortvalue(a)

    def d2h_buffer(self, images):
        return self.engine.ortvalue(images)

    def d2h(self, buffer):
        return buffer.numpy()


class TorchBackend:
    """threads: torch intra-op threads (None: torch's default, the physical cores)."""

    def __init__(self, engine, threads: int | None = None):
        from ...core.torch_fallback import import_torch

        self.torch = import_torch()
        if threads:
            self.torch.set_num_threads(int(threads))
        self.engine = engine
        self.pipeline = Pipeline(engine=engine, backend="torch")
        self.device = self.pipeline._searcher.device
        self.name = TORCH_NAME
        self.provider = "torch-" + self.device
        self.threads = int(self.torch.get_num_threads())

    def h2d(self, y_rep, W_rep, z0) -> None:
        for a in (y_rep, W_rep, z0):
            self.torch.from_numpy(np.array(a, copy=True)).to(self.device)

    def d2h_buffer(self, images):
        return self.torch.from_numpy(np.array(images, copy=True)).to(self.device)

    def d2h(self, buffer):
        return buffer.detach().cpu().numpy().copy()


def load_backends(bundle: Bundle, cfg: ProfileConfig) -> tuple[list, list[dict]]:
    """Every requested backend that loads -> (backends, skipped [{name, reason}])."""
    from ...core.engine import AUTO_ORDER, PROVIDERS, Engine

    wanted = cfg.providers or AUTO_ORDER
    backends: list = []
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
            backends.append(TorchBackend(backends[0].engine, cfg.threads))
        except EdgefillError as exc:
            skipped.append({"name": TORCH_NAME, "reason": str(exc)})
    return backends, skipped
