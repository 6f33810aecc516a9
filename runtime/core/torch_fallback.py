"""The torch fallback: the same latent search with torch autograd on the bundle's weights.

The only place the runtime touches torch. torch is imported inside the functions, only when
this backend is used, and a missing torch is one clear EdgefillError. It never imports
edgefill.train: G and D are rebuilt functionally (torch.nn.functional) from the manifest's
model configs and the bundle's state dicts, with exactly the structure and state-dict names of
train/generator.py and train/discriminator.py (eval mode: BatchNorm uses its running
statistics, dropout is off):

    G: z (N,z_dim) -> reshape (N,z_dim,1,1)
       -> [conv_transpose2d(convs.i.weight, stride 1 pad 0 for i=0, else 2/1), batch_norm(norms.i),
           relu or leaky_relu(0.2) per generator config "activation"] for i = 0..3
       -> conv_transpose2d(to_rgb.weight, stride 2, pad 1) -> tanh         (N,3,64,64) in [-1,1]
    D: x (N,3,64,64) -> leaky_relu(conv2d(convs.0, bias, 2, 1), 0.2)
       -> [leaky_relu(batch_norm(conv2d(convs.i, 2, 1), norms.{i-1}), 0.2)] for i = 1..3
       -> flatten -> linear(head)                                          (N,1) raw score

The search itself is runtime.core.torch_search.torch_search (the reference the step graph is
validated against), so with the same z0 both backends agree to float32 round-off growing
over the Adam steps. Tested (tests/test_runtime_search.py): best loss and loss history within
1e-5 relative; G(z_best) within 1e-5 after 10 steps and 5e-4 after 30 (images in [-1,1]); z
within 1e-4 after 10 steps. Measured on the tiny bundle: loss 3e-7 relative after 100 steps,
images 3e-5; z coordinates whose gradient is ~0 may drift apart (Adam normalises noise)
without changing G(z).
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Sequence

import numpy as np

from .bundle import Bundle
from ..errors import EdgefillError
from .search_config import SearchConfig
from .best_of_k import SearchResult
from .torch_search import torch_search

BN_EPS = 1e-5  # nn.BatchNorm2d's default; a model config may carry "bn_eps" to override it
LEAK = 0.2


NO_TORCH = "the torch backend needs torch, which is not installed (pip install 'edgefill[train]', or use --backend onnx)"


def torch_available() -> bool:
    """Whether torch can be found (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def import_torch():
    """torch, or one clear EdgefillError when it is not installed (or does not import)."""
    if not torch_available():
        raise EdgefillError(NO_TORCH)
    try:
        import torch
    except ImportError as exc:
        raise EdgefillError(f"{NO_TORCH.split(',')[0]}, but it does not import: {exc}") from None
    return torch


def _tensors(state: dict[str, np.ndarray], device: str) -> dict:
    torch = import_torch()
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).to(device) for k, v in state.items()}


def _batch_norm(h, p: dict, prefix: str, eps: float):
    import torch.nn.functional as F

    return F.batch_norm(h, p[f"{prefix}.running_mean"], p[f"{prefix}.running_var"], p[f"{prefix}.weight"],
                        p[f"{prefix}.bias"], training=False, momentum=0.0, eps=eps)


def _need(p: dict, names: list[str], model: str) -> None:
    missing = [n for n in names if n not in p]
    if missing:
        raise EdgefillError(f"bundle {model} weights lack {', '.join(missing[:3])}; not an edgefill {model}")


def functional_generator(config: dict, state: dict[str, np.ndarray], device: str = "cpu") -> Callable:
    """G as a function z (N,z_dim) float32 tensor -> (N,3,64,64) tensor, from a GeneratorConfig dict
    ({"z_dim", "width", "activation", ...}) and the generator state dict (numpy)."""
    import torch
    import torch.nn.functional as F

    p = _tensors(state, device)
    z_dim = int(config["z_dim"])
    eps = float(config.get("bn_eps", BN_EPS))
    _need(p, [f"convs.{i}.weight" for i in range(4)] + [f"norms.{i}.running_var" for i in range(4)]
          + ["to_rgb.weight"], "generator")
    activation = config.get("activation", "relu")
    if activation == "relu":
        act = F.relu
    elif activation == "leaky":
        def act(h):
            return F.leaky_relu(h, LEAK)
    else:
        raise EdgefillError(f"generator activation {activation!r} is not supported by the torch fallback")

    def generator(z):
        h = z.reshape(z.shape[0], z_dim, 1, 1)
        for i in range(4):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            # (N,z,1,1) -> (N,8w,4,4) -> (N,4w,8,8) -> (N,2w,16,16) -> (N,w,32,32)
            h = F.conv_transpose2d(h, p[f"convs.{i}.weight"], p.get(f"convs.{i}.bias"), stride, pad)
            h = act(_batch_norm(h, p, f"norms.{i}", eps))
        return torch.tanh(F.conv_transpose2d(h, p["to_rgb.weight"], p.get("to_rgb.bias"), 2, 1))  # (N,3,64,64)

    return generator


def functional_discriminator(config: dict, state: dict[str, np.ndarray], device: str = "cpu") -> Callable:
    """D as a function x (N,3,64,64) tensor -> raw score (N,1), from a DiscriminatorConfig dict and
    the discriminator state dict (numpy)."""
    import torch.nn.functional as F

    p = _tensors(state, device)
    eps = float(config.get("bn_eps", BN_EPS))
    _need(p, [f"convs.{i}.weight" for i in range(4)] + [f"norms.{i}.running_var" for i in range(3)]
          + ["head.weight", "head.bias"], "discriminator")

    def discriminator(x):
        # (N,3,64,64) -> (N,d,32,32) -> (N,2d,16,16) -> (N,4d,8,8) -> (N,8d,4,4)
        h = F.leaky_relu(F.conv2d(x, p["convs.0.weight"], p.get("convs.0.bias"), 2, 1), LEAK)
        for i in range(1, 4):
            h = F.conv2d(h, p[f"convs.{i}.weight"], p.get(f"convs.{i}.bias"), 2, 1)
            h = F.leaky_relu(_batch_norm(h, p, f"norms.{i - 1}", eps), LEAK)
        return F.linear(h.flatten(1), p["head.weight"], p["head.bias"])  # (N,1)

    return discriminator


class TorchSearch:
    """The latent search with torch autograd on a bundle's weights (backend "torch").

    device: "cpu" or "cuda" (torch's device; "cuda" only when torch sees a GPU)."""

    backend = "torch"

    def __init__(self, bundle: Bundle, device: str = "cpu"):
        torch = import_torch()
        if device == "cuda" and not torch.cuda.is_available():
            device = "cpu"
        self.device = device
        models = bundle.manifest.get("models", {})
        self.z_dim = bundle.z_dim
        self.generator = functional_generator(models["generator"], bundle.state_dict("generator"), device)
        self.discriminator = functional_discriminator(models["discriminator"], bundle.state_dict("discriminator"),
                                                      device)

    def search(self, y: np.ndarray, W: np.ndarray, cfg: SearchConfig, z0: np.ndarray,
               time_budget_ms: float | None = None, progress: Callable[[int], None] | None = None,
               record_at: Sequence[int] = ()) -> SearchResult:
        """Same contract as runtime.core.ort_search.OrtSearch.search."""
        result = torch_search(self.generator, self.discriminator, np.asarray(y, np.float32),
                              np.asarray(W, np.float32), cfg, self.z_dim, z0=z0, device=self.device,
                              time_budget_ms=time_budget_ms, progress=progress, record_at=record_at)
        result.extra = {**result.extra, "provider": "torch-" + self.device, "prior": cfg.prior}
        return result
