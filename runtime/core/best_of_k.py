"""What every search backend shares: the result type and the best-of-K tracker (numpy only).

A search runs N images x K restarts as B = N*K rows, image-major (image i's restarts are rows
i*K .. i*K+K-1). The tracker keeps, per image, the lowest-loss row over all steps and decides
early stopping; the result carries the best z and G(z) per image.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .search_config import SearchConfig


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


def step_finished(stop: bool, progress, started: float, time_budget_ms: float | None) -> bool:
    """Every backend's end-of-step bookkeeping: report one step to `progress` (callable(n) or
    None) and say whether the loop ends: early stop (`stop`, from BestTracker.update) or the
    time budget since perf_counter() was `started` spent."""
    if progress is not None:
        progress(1)
    return stop or (time_budget_ms is not None and (time.perf_counter() - started) * 1000.0 >= time_budget_ms)
