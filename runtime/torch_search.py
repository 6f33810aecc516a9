"""The latent search in torch with autograd: the reference implementation.

Used by training (refiner completions), by export (the reference the ONNX step graph is
validated against) and by the runtime as its torch fallback. torch is imported lazily,
inside the functions, so importing this module never pulls torch into the runtime.

Tensors: z (B, z_dim) float32 in [-1,1]; y (B,3,64,64) float32 in [-1,1]; W (B,1,64,64)
importance weights (see masks.importance_weights). `generator` and `discriminator` are any
callables (nn.Module in eval mode, or the runtime's functional rebuild from a bundle).
The per-image loss is L = ||W * (G(z) - y)||_1 + lam * L_p(D(G(z))).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .search_config import SearchConfig

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


@dataclass
class SearchResult:
    """Best restart per image. images: float32 (N,3,64,64) in [-1,1] = G(z_best);
    z: (N, z_dim); loss: (N,) best loss; history: (steps_run, N) best-so-far loss per step."""

    z: np.ndarray
    images: np.ndarray
    loss: np.ndarray
    history: np.ndarray
    steps_run: int
    seconds: float
    backend: str = "torch"
    extra: dict = field(default_factory=dict)


def initial_z(n: int, restarts: int, z_dim: int, seed: int | None) -> np.ndarray:
    """Uniform [-1,1] starts, (n * restarts, z_dim) float32, image-major (image i's restarts
    are rows i*restarts .. i*restarts+restarts-1). Shared by every backend so a seed means
    the same starts everywhere."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n * restarts, z_dim)).astype(np.float32)


class BestTracker:
    """Keeps, per image, the best (lowest-loss) restart over all steps seen so far, and decides
    early stopping. Backend-neutral (numpy).

    z and x are optional: a backend that keeps z on a device passes only the loss and reads
    `replaced` (bool (n,): images whose best moved to this step; all True at the first step)
    and `rows` (int (n,): the winning row of each image in this step's batch) to keep its own
    record of where each image's best z lives.
    """

    def __init__(self, n: int, restarts: int, cfg: SearchConfig):
        self.n, self.k, self.cfg = n, restarts, cfg
        self.best_loss = np.full(n, np.inf, np.float32)
        self.best_z: np.ndarray | None = None
        self.best_x: np.ndarray | None = None
        self.history: list[np.ndarray] = []
        self.replaced = np.zeros(n, bool)
        self.rows = np.zeros(n, np.int64)
        self._since_improved = 0
        self._reference = np.full(n, np.inf, np.float32)

    def update(self, loss: np.ndarray, z: np.ndarray | None = None, x: np.ndarray | None = None) -> bool:
        """loss (n*k,), z (n*k, z_dim), x (n*k,3,H,W) evaluated at the same z (z, x optional).
        Returns True when the search should stop early."""
        per = np.asarray(loss).reshape(self.n, self.k)
        idx = per.argmin(axis=1)
        cand = per[np.arange(self.n), idx]
        better = cand < self.best_loss
        rows = np.arange(self.n) * self.k + idx
        first = not self.history
        self.replaced = np.ones(self.n, bool) if first else better
        self.rows = rows
        if z is not None:
            if self.best_z is None:
                self.best_z = z[rows].copy()
            elif better.any():
                self.best_z[better] = z[rows[better]]
        if x is not None:
            if self.best_x is None:
                self.best_x = x[rows].copy()
            elif better.any():
                self.best_x[better] = x[rows[better]]
        self.best_loss = np.where(better, cand, self.best_loss)
        self.history.append(self.best_loss.copy())
        if self.cfg.patience <= 0:
            return False
        improved = self.best_loss < self._reference * (1.0 - self.cfg.min_delta)
        if improved.any():
            self._reference = np.where(improved, self.best_loss, self._reference)
            self._since_improved = 0
        else:
            self._since_improved += 1
        return self._since_improved >= self.cfg.patience


def torch_search(generator: Callable, discriminator: Callable, y: np.ndarray, W: np.ndarray,
                 cfg: SearchConfig, z_dim: int, seed: int | None = 0, z0: np.ndarray | None = None,
                 device: str = "cpu", time_budget_ms: float | None = None,
                 progress: Callable[[int], None] | None = None) -> SearchResult:
    """Search z for a batch of images with torch autograd.

    y: float32 (N,3,64,64) in [-1,1]; W: float32 (N,1,64,64); z0 optional (N*restarts, z_dim).
    The loss and image recorded at step t are those of z_t (before the t-th update), so the
    result is the best z actually evaluated. time_budget_ms bounds the whole call per image
    batch (checked after every step).
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
    for step in range(cfg.steps):
        z_leaf = z.detach().requires_grad_(True)
        loss, x = search_loss(generator, discriminator, z_leaf, yk, wk, cfg.lam, cfg.prior)
        (grad,) = torch.autograd.grad(loss.sum(), z_leaf)
        with torch.no_grad():
            stop = tracker.update(loss.detach().cpu().numpy(), z_leaf.detach().cpu().numpy(),
                                  x.detach().cpu().numpy())
            z, m, v, t = adam_step(z_leaf.detach(), grad, m, v, t, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
        steps_run = step + 1
        if progress is not None:
            progress(1)
        if stop:
            break
        if time_budget_ms is not None and (time.perf_counter() - start) * 1000.0 >= time_budget_ms:
            break
    return SearchResult(z=tracker.best_z, images=tracker.best_x, loss=tracker.best_loss,
                        history=np.stack(tracker.history), steps_run=steps_run,
                        seconds=time.perf_counter() - start, backend="torch")
