"""The latent search through the bundle's search-step graph (onnxruntime, IO binding).

One `session.run` is one Adam step for the whole batch (images x restarts, image-major rows as
in runtime.core.starts.initial_z). With IO binding every per-step tensor stays where the engine's
provider computes (GPU memory on CUDA/TensorRT, host memory on the CPU):

- y, W and the scalar hyper-parameters are bound once;
- m, v, t ping-pong between two preallocated buffer pairs;
- z is written into buffers from a small pool. A buffer that holds some image's best z so
  far (the z the step was evaluated at) is kept out of the pool until that image's best moves
  on, so the best z never has to be copied anywhere during the loop;
- the only per-step device-to-host copy is the loss vector (B floats), which the BestTracker
  needs for best-of-K and early stopping.

After the loop the best rows are read from their buffers once. The final images: on a device
(CUDA/TensorRT) generator.onnx runs once on the best z, so the step graph's `image` output
never leaves the device; on the CPU, where reading it is a host memcpy, each step's `image`
output is kept for the images whose best moved to that step (the torch backend's way), which
saves that generator pass: for K samples at 1 step it was about a quarter of their cost.

The LAST step of a search never uses its gradient either: it evaluates z_{S-1}, and the z_S
its update would make is never evaluated, so it cannot become anyone's best. So the last step
is a scoring pass: generator.onnx and discriminator.onnx forward, the step graph's loss in
numpy (score_loss). A search of ONE step is only that pass; `K samples` searches samples 2..K
this way (SearchConfig.sample_steps = 1). On 2 CPU cores a scoring pass costs about a third of
a step. The losses agree with the step graph's to float rounding (tests: 1e-5 relative).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .bundle import PRIOR_CODE, STEP_INPUTS, STEP_OUTPUTS
from .engine import Engine, _first_line
from ..errors import EdgefillError
from .search_config import SearchConfig
from .best_of_k import BestTracker, SearchResult, step_finished

SCALARS = ("lam", "lr", "beta1", "beta2", "eps", "prior")


class StepGraphError(EdgefillError):
    """The step graph is missing, foreign, or cannot run on the provider (the torch fallback may take over)."""


class OrtSearch:
    """Runs torch_search's algorithm with the bundle's search_step graph. Construction loads
    the graph and checks its input/output names; raises StepGraphError when it cannot."""

    backend = "onnx"

    def __init__(self, engine: Engine):
        self.engine = engine
        if not engine.bundle.has_graph("search_step"):
            raise StepGraphError(f"bundle {engine.bundle.root} has no search-step graph")
        try:
            self.session = engine.session("search_step")
        except EdgefillError as exc:
            raise StepGraphError(str(exc)) from None
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if inputs != set(STEP_INPUTS) or not set(STEP_OUTPUTS[:5]) <= outputs:
            raise StepGraphError(f"search-step graph has inputs {sorted(inputs)} and outputs {sorted(outputs)}; "
                                 f"expected {list(STEP_INPUTS)} -> {list(STEP_OUTPUTS)}")
        self.z_dim = engine.bundle.z_dim
        self.keeps_images = engine.device == "cpu" and "image" in outputs
        self.scores_one_step = engine.bundle.has_graph("generator") and engine.bundle.has_graph("discriminator")

    def search(self, y: np.ndarray, W: np.ndarray, cfg: SearchConfig, z0: np.ndarray,
               time_budget_ms: float | None = None, progress: Callable[[int], None] | None = None,
               record_at: Sequence[int] = ()) -> SearchResult:
        """y float32 (N,3,64,64) in [-1,1]; W float32 (N,1,64,64); z0 float32 (N*restarts, z_dim).

        Stops after cfg.steps steps, on a plateau (cfg.patience > 0) or once time_budget_ms has
        passed (checked after every step; the batch's images all search together, so this is
        each image's budget). Returns the best restart per image (SearchResult, backend "onnx").
        record_at: step counts s at which to copy each image's best z so far (over the first s
        evaluated z) to the host: SearchResult.extra["z_at"] = {s: (N, z_dim)}, ["seconds_at"] =
        {s: seconds since the start} (the steps-vs-quality curve from one search).
        """
        n, k = y.shape[0], cfg.restarts
        b = n * k
        if z0.shape != (b, self.z_dim):
            raise EdgefillError(f"z0 must be ({b}, {self.z_dim}), got {z0.shape}")
        if cfg.steps == 1 and self.scores_one_step:
            return self.score(y, W, cfg, z0, progress, record_at)
        return self.steps(y, W, cfg, z0, time_budget_ms, progress, record_at, score_last=self.scores_one_step)

    def score(self, y: np.ndarray, W: np.ndarray, cfg: SearchConfig, z0: np.ndarray,
              progress: Callable[[int], None] | None = None, record_at: Sequence[int] = ()) -> SearchResult:
        """The one-step search without its gradient (module docstring): each image's best
        restart at z0, the same result as `steps` with cfg.steps = 1."""
        start = time.perf_counter()
        n, k = y.shape[0], cfg.restarts
        loss, x = self._forward_loss(z0, np.repeat(y, k, axis=0), np.repeat(W, k, axis=0), cfg)
        tracker = BestTracker(n, k, cfg)
        tracker.update(loss, z0, x)
        step_finished(False, progress, start, None)
        extra = {"provider": self.engine.provider, "prior": cfg.prior, "scored": True}
        if record_at:
            extra.update(z_at={1: tracker.best_z.copy()} if 1 in record_at else {},
                         seconds_at={1: time.perf_counter() - start} if 1 in record_at else {})
        return SearchResult(z=tracker.best_z, images=tracker.best_x, loss=tracker.best_loss,
                            history=np.stack(tracker.history), steps_run=1, seconds=time.perf_counter() - start,
                            backend=self.backend, extra=extra)

    def _forward_loss(self, z: np.ndarray, y_rows: np.ndarray, W_rows: np.ndarray, cfg: SearchConfig):
        """The step graph's loss at z (B, z_dim) without its gradient: (loss (B,), G(z) (B,3,64,64)),
        y_rows/W_rows already repeated per restart."""
        try:
            x = self.engine.forward("generator", z)
            s = self.engine.forward("discriminator", x)
        except EdgefillError as exc:
            raise StepGraphError(str(exc)) from None
        return score_loss(x, s, y_rows, W_rows, cfg.lam, cfg.prior), x

    def steps(self, y: np.ndarray, W: np.ndarray, cfg: SearchConfig, z0: np.ndarray,
              time_budget_ms: float | None = None, progress: Callable[[int], None] | None = None,
              record_at: Sequence[int] = (), score_last: bool = False) -> SearchResult:
        """cfg.steps Adam steps through the step graph (`search`'s arguments, z0 checked);
        score_last: the last one as a scoring pass (module docstring), the same result."""
        start = time.perf_counter()
        eng, sess = self.engine, self.session
        n, k = y.shape[0], cfg.restarts
        b = n * k
        binding = sess.io_binding()
        y_rows = np.repeat(np.asarray(y, np.float32), k, axis=0)  # one row per restart, as z0
        W_rows = np.repeat(np.asarray(W, np.float32), k, axis=0)
        static = {"y": eng.ortvalue(y_rows), "W": eng.ortvalue(W_rows)}
        values = {"lam": cfg.lam, "lr": cfg.lr, "beta1": cfg.beta1, "beta2": cfg.beta2, "eps": cfg.eps,
                  "prior": PRIOR_CODE[cfg.prior]}
        static.update({name: eng.ortvalue(np.array(values[name], np.float32)) for name in SCALARS})
        for name, value in static.items():
            binding.bind_ortvalue_input(name, value)
        zeros = np.zeros((b, self.z_dim), np.float32)
        m = [eng.ortvalue(zeros), eng.empty((b, self.z_dim))]
        v = [eng.ortvalue(zeros), eng.empty((b, self.z_dim))]
        t = [eng.ortvalue(np.zeros(b, np.float32)), eng.empty((b,))]
        loss_buf = eng.empty((b,))
        binding.bind_ortvalue_output("loss", loss_buf)
        best_x = None
        if self.keeps_images:
            image_buf = eng.empty((b, 3, y.shape[2], y.shape[3]))
            binding.bind_ortvalue_output("image", image_buf)
            best_x = np.empty((n, 3, y.shape[2], y.shape[3]), np.float32)

        z_cur = eng.ortvalue(z0.astype(np.float32))
        pool = [z_cur]                      # every z buffer allocated so far (at most n + 2)
        holder: list = [None] * n           # buffer that holds image i's best z
        holder_row = np.zeros(n, np.int64)  # its row in that buffer
        tracker = BestTracker(n, k, cfg)
        steps_run = 0
        z_at: dict[int, np.ndarray] = {}
        seconds_at: dict[int, float] = {}
        graph_steps = cfg.steps - 1 if score_last else cfg.steps
        for step in range(cfg.steps):
            if step < graph_steps:
                z_next = self._free_buffer(pool, holder, z_cur, b)
                a, nxt = step % 2, (step + 1) % 2
                binding.bind_ortvalue_input("z", z_cur)
                binding.bind_ortvalue_input("m", m[a])
                binding.bind_ortvalue_input("v", v[a])
                binding.bind_ortvalue_input("t", t[a])
                binding.bind_ortvalue_output("z_next", z_next)
                binding.bind_ortvalue_output("m_next", m[nxt])
                binding.bind_ortvalue_output("v_next", v[nxt])
                binding.bind_ortvalue_output("t_next", t[nxt])
                try:
                    sess.run_with_iobinding(binding)
                except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
                    raise StepGraphError(f"search-step graph failed on {eng.provider}: {_first_line(exc)}") from None
                stop = tracker.update(loss_buf.numpy())
                image_now = image_buf.numpy() if best_x is not None else None
            else:  # the last step: its update would be thrown away, so only the loss at z_cur
                z_next = z_cur
                loss, image_now = self._forward_loss(z_cur.numpy(), y_rows, W_rows, cfg)
                stop = tracker.update(loss)
            moved = np.flatnonzero(tracker.replaced)
            for i in moved:
                holder[i] = z_cur
                holder_row[i] = tracker.rows[i]
            if best_x is not None and len(moved):
                best_x[moved] = image_now[tracker.rows[moved]]
            z_cur = z_next
            steps_run = step + 1
            if steps_run in record_at:
                z_at[steps_run] = self._best_z(holder, holder_row, n)
                seconds_at[steps_run] = time.perf_counter() - start
            if step_finished(stop, progress, start, time_budget_ms):
                break

        z_best = self._best_z(holder, holder_row, n)
        images = best_x if best_x is not None else eng.forward("generator", z_best)
        extra = {"provider": eng.provider, "prior": cfg.prior}
        if record_at:
            extra.update(z_at=z_at, seconds_at=seconds_at)
        return SearchResult(z=z_best, images=images, loss=tracker.best_loss, history=np.stack(tracker.history),
                            steps_run=steps_run, seconds=time.perf_counter() - start, backend=self.backend,
                            extra=extra)

    def _free_buffer(self, pool: list, holder: list, z_cur, b: int):
        """A z buffer from the pool that is neither z_cur nor some image's best (a new one if none)."""
        held = {id(h) for h in holder}
        buf = next((buf for buf in pool if buf is not z_cur and id(buf) not in held), None)
        if buf is None:
            buf = self.engine.empty((b, self.z_dim))
            pool.append(buf)
        return buf

    def _best_z(self, holder: list, holder_row: np.ndarray, n: int) -> np.ndarray:
        """Each image's best z so far, read from the device buffers that hold them -> (n, z_dim)."""
        z_best = np.empty((n, self.z_dim), np.float32)
        for buf in {id(h): h for h in holder}.values():
            host = buf.numpy()
            for i in (i for i in range(n) if holder[i] is buf):
                z_best[i] = host[holder_row[i]]
        return z_best


def score_loss(x: np.ndarray, score: np.ndarray, y: np.ndarray, W: np.ndarray, lam: float, prior: str) -> np.ndarray:
    """The step graph's per-row loss from its parts: x = G(z) float32 (B,3,64,64) in [-1,1],
    score = D(x) (B,) or (B,1), y (B,3,64,64), W (B,1,64,64) -> float32 (B,):
    sum |W * (x - y)| + lam * P(score), P = (s - 1)^2 (lsgan) or -softplus(s) (log)."""
    s = np.asarray(score, np.float32).reshape(-1)
    if prior == "lsgan":
        p = (s - 1.0) ** 2
    elif prior == "log":
        p = -(np.maximum(s, 0.0) + np.log1p(np.exp(-np.abs(s))))
    else:
        raise EdgefillError(f"unknown prior form {prior!r}")
    contextual = np.abs(W * (x - y)).sum(axis=(1, 2, 3), dtype=np.float32)
    return (contextual + np.float32(lam) * p).astype(np.float32)
