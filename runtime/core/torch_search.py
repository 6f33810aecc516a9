"""The latent search in torch with autograd: the reference implementation.

It lives in the runtime's core (not in train/) because three parts share one algorithm: it is used by
training (refiner completions), by export (the reference the ONNX step graph is
validated against) and by the runtime as its torch fallback. torch is imported lazily,
inside the functions, so importing this module never pulls torch into the runtime.

Tensors: z (B, z_dim) float32 in [-1,1]; y (B,3,64,64) float32 in [-1,1]; W (B,1,64,64)
importance weights (see masks.importance_weights). `generator` and `discriminator` are any
callables (nn.Module in eval mode, or the runtime's functional rebuild from a bundle).
The per-image loss is L = ||W * (G(z) - y)||_1 + lam * L_p(D(G(z))).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .best_of_k import BestTracker, SearchResult, step_finished
from .search_config import SearchConfig
from .starts import initial_z

PRIOR_CODES = {"lsgan": 0, "log": 1}


def prior_loss(score, prior: str):
    """Per-image prior loss from raw critic scores (B,) or (B,1) -> (B,)."""
    import torch.nn.functional as F

    s = score.reshape(-1)
    if prior == "lsgan":
        return (s - 1.0) ** 2
    if prior == "log":
        return -F.softplus(s)  # log(1 - sigmoid(s)), computed stably
    raise ValueError(f"unknown prior form {prior!r}")


def search_loss(generator: Callable, discriminator: Callable, z, y, W, lam: float, prior: str):
    """Per-image total loss (B,) and the generated images G(z) (B,3,64,64)."""
    x = generator(z)
    contextual = (W * (x - y)).abs().sum(dim=(1, 2, 3))
    return contextual + lam * prior_loss(discriminator(x), prior), x


def adam_step(z, grad, m, v, t, lr, beta1, beta2, eps):
    """One Adam step on z, then clip to [-1, 1]. t is the step count BEFORE this step (B,).

    The exported search-step graph computes exactly these formulas.
    """
    import torch

    t_new = t + 1.0
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    m_hat = m_new / (1.0 - torch.pow(torch.as_tensor(beta1, dtype=z.dtype), t_new)).unsqueeze(1)
    v_hat = v_new / (1.0 - torch.pow(torch.as_tensor(beta2, dtype=z.dtype), t_new)).unsqueeze(1)
    z_new = torch.clamp(z - lr * m_hat / (torch.sqrt(v_hat) + eps), -1.0, 1.0)
    return z_new, m_new, v_new, t_new


def torch_search(generator: Callable, discriminator: Callable, y: np.ndarray, W: np.ndarray,
                 cfg: SearchConfig, z_dim: int, seed: int | None = 0, z0: np.ndarray | None = None,
                 device: str = "cpu", time_budget_ms: float | None = None,
                 progress: Callable[[int], None] | None = None, record_at: Sequence[int] = ()) -> SearchResult:
    """Search z for a batch of images with torch autograd.

    y: float32 (N,3,64,64) in [-1,1]; W: float32 (N,1,64,64); z0 optional (N*restarts, z_dim).
    The loss and image recorded at step t are those of z_t (before the t-th update), so the
    result is the best z actually evaluated; the last step evaluates without a gradient (its
    update could never be evaluated). time_budget_ms bounds the whole call per image
    batch (checked after every step). record_at: as runtime.core.ort_search.OrtSearch.search
    (extra["z_at"], extra["seconds_at"]).
    """
    import torch

    start = time.perf_counter()
    n, k = y.shape[0], cfg.restarts
    z_np = z0 if z0 is not None else initial_z(n, k, z_dim, seed)
    dev = torch.device(device)
    yk = torch.from_numpy(np.repeat(y, k, axis=0)).to(dev)
    wk = torch.from_numpy(np.repeat(W, k, axis=0)).to(dev)
    z = torch.from_numpy(z_np.copy()).to(dev)
    m = torch.zeros_like(z)
    v = torch.zeros_like(z)
    t = torch.zeros(z.shape[0], device=dev)
    tracker = BestTracker(n, k, cfg)
    steps_run = 0
    z_at: dict[int, np.ndarray] = {}
    seconds_at: dict[int, float] = {}
    for step in range(cfg.steps):
        if step == cfg.steps - 1:  # the last update would never be evaluated: only the loss at z
            with torch.no_grad():
                loss, x = search_loss(generator, discriminator, z, yk, wk, cfg.lam, cfg.prior)
                stop = tracker.update(loss.cpu().numpy(), z.cpu().numpy(), x.cpu().numpy())
        else:
            z_leaf = z.detach().requires_grad_(True)
            loss, x = search_loss(generator, discriminator, z_leaf, yk, wk, cfg.lam, cfg.prior)
            (grad,) = torch.autograd.grad(loss.sum(), z_leaf)
            with torch.no_grad():
                stop = tracker.update(loss.detach().cpu().numpy(), z_leaf.detach().cpu().numpy(),
                                      x.detach().cpu().numpy())
                z, m, v, t = adam_step(z_leaf.detach(), grad, m, v, t, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
        steps_run = step + 1
        if steps_run in record_at:
            z_at[steps_run] = tracker.best_z.copy()
            seconds_at[steps_run] = time.perf_counter() - start
        if step_finished(stop, progress, start, time_budget_ms):
            break
    return SearchResult(z=tracker.best_z, images=tracker.best_x, loss=tracker.best_loss,
                        history=np.stack(tracker.history), steps_run=steps_run,
                        seconds=time.perf_counter() - start, backend="torch",
                        extra={"z_at": z_at, "seconds_at": seconds_at} if record_at else {})
