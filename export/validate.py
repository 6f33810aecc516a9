"""Export validation: the written bundle, run by onnxruntime, against torch.

Every check becomes one Row of a table (check, output, shape, max|diff|, relative diff, limit,
ok); the export fails unless every row passes. Checks:
- bundle: runtime.bundle.open_bundle accepts the folder (format, hashes);
- checker: onnx.checker full check (strict shape inference included) on every graph, and the
  inferred output shapes equal the spec's;
- graphs: generator / discriminator / refiner / search_step against the torch modules on seeded
  inputs at two batch sizes (the dynamic axis) and on real faces (samples/faces, center mask),
  both prior forms for the search step;
- dL/dz: the step graph's gradient (m_next with beta1 = 0 and m = 0 is exactly the gradient)
  against torch.autograd of runtime.core.torch_search.search_loss;
- epsilon: a step with a zero gradient (W = 0, lam = 0, m = v = 0) leaves z finite and unchanged;
- search: SEARCH_STEPS Adam steps in onnxruntime and in torch (search_loss + autograd +
  adam_step, i.e. the torch fallback) from the same start: final z and the loss curve.
For an fp16 bundle the reference is the torch model with the same float16-rounded weights
(correctness, fp16 tolerances); `fp16 cost` rows compare against the original fp32 model.

Differences: max_abs = max|onnx - torch|; rel = max_abs / max|torch|.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from edgefill.runtime.core.bundle import PRIOR_CODE, open_bundle
from edgefill.runtime.imaging.images import read_image, to_model
from edgefill.runtime.imaging.masks import center_mask, importance_weights, pattern_mask
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.torch_search import adam_step, search_loss
from edgefill.runtime.core.starts import initial_z

from .specs import GRADIENT_TOL, SEARCH_STEPS, SEARCH_TOL, GraphSpec, Tolerance

SAMPLE_FACES = Path(__file__).resolve().parents[1] / "samples" / "faces"


@dataclass
class Row:
    check: str
    output: str
    shape: str
    max_abs: float | None
    rel: float | None
    limit: float | None
    ok: bool
    note: str = ""


@dataclass
class TorchModels:
    """Eval-mode torch modules; refiner may be None."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    refiner: torch.nn.Module | None
    encoder: torch.nn.Module | None = None
    samples_refiner: torch.nn.Module | None = None


def format_table(rows: list[Row]) -> str:
    head = ("check", "output", "shape", "max|diff|", "rel", "limit", "ok")
    def num(x):
        return "-" if x is None else f"{x:.2e}"
    body = [(r.check, r.output, r.shape, num(r.max_abs), num(r.rel), num(r.limit), ("ok" if r.ok else "FAIL")
             + (f" ({r.note})" if r.note else "")) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *(line(b) for b in body)])


def rows_as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


def compare(check: str, output: str, got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Row:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return Row(check, output, f"{got.shape} vs {ref.shape}", None, None, None, False, "shape mismatch")
    if not np.all(np.isfinite(got)):
        return Row(check, output, str(tuple(got.shape)), math.inf, math.inf, None, False, "non-finite output")
    max_abs = float(np.max(np.abs(got - ref))) if got.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    limit = tol.limit(scale)
    return Row(check, output, "x".join(map(str, got.shape)), max_abs, rel, limit, max_abs <= limit)


# ---------------------------------------------------------------- torch references
@torch.no_grad()
def _forward(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    return module(torch.from_numpy(x)).numpy()


def torch_step(G, D, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference for the step graph: search_loss + torch.autograd + adam_step (the torch
    fallback's computation), scalars passed as Python floats like torch_search does."""
    z = torch.from_numpy(feeds["z"]).requires_grad_(True)
    t_ = {k: torch.from_numpy(feeds[k]) for k in ("m", "v", "t", "y", "W")}
    s = {k: float(feeds[k]) for k in ("lam", "lr", "beta1", "beta2", "eps", "prior")}
    prior = "log" if s["prior"] > 0.5 else "lsgan"
    loss, x = search_loss(G, D, z, t_["y"], t_["W"], s["lam"], prior)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    with torch.no_grad():
        zn, mn, vn, tn = adam_step(z.detach(), grad, t_["m"], t_["v"], t_["t"], s["lr"], s["beta1"], s["beta2"],
                                   s["eps"])
    return {"z_next": zn.numpy(), "m_next": mn.numpy(), "v_next": vn.numpy(), "t_next": tn.numpy(),
            "loss": loss.detach().numpy(), "image": x.detach().numpy(), "grad": grad.numpy()}


def step_feeds(z, y, W, m=None, v=None, t=None, cfg: SearchConfig | None = None, prior: str | None = None,
               **scalars) -> dict[str, np.ndarray]:
    cfg = cfg or SearchConfig()
    b = z.shape[0]
    feeds = {"z": z, "m": np.zeros_like(z) if m is None else m, "v": np.zeros_like(z) if v is None else v,
             "t": np.zeros(b, np.float32) if t is None else t, "y": y, "W": W}
    vals = {"lam": cfg.lam, "lr": cfg.lr, "beta1": cfg.beta1, "beta2": cfg.beta2, "eps": cfg.eps,
            "prior": PRIOR_CODE[prior or cfg.prior], **scalars}
    feeds.update({k: np.asarray(val, np.float32) for k, val in vals.items()})
    return {k: np.array(val, dtype=np.float32, order="C") for k, val in feeds.items()}  # keeps 0-d scalars


def real_faces(n: int = 8) -> np.ndarray:
    """float32 (n,3,64,64) in [-1,1] from samples/faces."""
    files = sorted(SAMPLE_FACES.glob("*.png"))[:n]
    if not files:
        raise FileNotFoundError(f"no sample faces in {SAMPLE_FACES}")
    return to_model(np.stack([read_image(f) for f in files]))


def _mixed_masks(n: int) -> np.ndarray:
    from edgefill.runtime.imaging.masks import TRAINING_MASK_KINDS, make_mask

    rng = np.random.default_rng(7)
    return np.stack([make_mask(TRAINING_MASK_KINDS[i % len(TRAINING_MASK_KINDS)], rng) for i in range(n)])


def masked_faces(faces: np.ndarray) -> np.ndarray:
    """The encoder's input for real faces (float32 (n,3,64,64) in [-1,1]) under masks of every
    training kind: runtime.core.starts.encoder_input, as the runtime feeds it."""
    from edgefill.runtime.core.starts import encoder_input
    from edgefill.runtime.imaging.images import from_model

    return encoder_input(from_model(faces), _mixed_masks(len(faces)))


def refiner_faces(faces: np.ndarray, channels: int) -> np.ndarray:
    """The refiner's input for real faces under masks of every training kind (channels 4: the
    hole as the fourth channel; 7: and Telea's fill): runtime.imaging.images.refiner_input, as
    the runtime feeds it."""
    from edgefill.runtime.imaging.images import from_model, refiner_input

    return refiner_input(from_model(faces), _mixed_masks(len(faces)), channels)


# ---------------------------------------------------------------- the checks
class Validator:
    """Runs every check on a written bundle folder; rows accumulate in `self.rows`."""

    def __init__(self, root: Path, specs: dict[str, GraphSpec], ref: TorchModels, original: TorchModels | None,
                 precision: str, search: SearchConfig, say: Callable[[str], None] = lambda s: None):
        import onnxruntime as ort

        self.root, self.specs, self.ref, self.original = Path(root), specs, ref, original
        self.kind = precision  # tolerance kind for correctness rows: 'fp32' or 'fp16'
        self.search, self.say = search, say
        self.rows: list[Row] = []
        self.timing: dict = {}
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no spin-waiting: torch runs right after onnxruntime here and must not fight idle spinners
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {name: ort.InferenceSession(str(self.root / spec.file), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])
                         for name, spec in specs.items()}
        self.rng = np.random.default_rng(1234)

    def run(self, name: str, feeds: dict) -> dict[str, np.ndarray]:
        spec = self.specs[name]
        outs = self.sessions[name].run(spec.output_names, {k: feeds[k] for k in spec.input_names})
        return dict(zip(spec.output_names, outs))

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def all(self) -> list[Row]:
        self.check_loader()
        self.check_checker()
        self.check_forward_graphs()
        self.check_step()
        self.check_gradient()
        self.check_epsilon()
        self.check_search()
        return self.rows

    # -- structure
    def check_loader(self) -> None:
        try:
            open_bundle(self.root)
            self.add(Row("bundle: open_bundle (format, sha256)", "-", "-", None, None, None, True))
        except Exception as exc:  # reported as a failing row, the export then fails
            self.add(Row("bundle: open_bundle (format, sha256)", "-", "-", None, None, None, False, str(exc)))

    def check_checker(self) -> None:
        for name, spec in self.specs.items():
            path = self.root / spec.file
            try:
                onnx.checker.check_model(str(path), full_check=True)
                inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False),
                                                             strict_mode=True)
                got = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                       for o in inferred.graph.output}
                want = {n: list(d) for n, d in spec.outputs}
                ok, note = got == want, "" if got == want else f"inferred {got}"
            except Exception as exc:
                ok, note = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.add(Row("onnx.checker full + shape inference", name, "-", None, None, None, ok, note))

    # -- forward graphs
    def _graph_rows(self, name: str, label: str, feeds: dict, ref_out: dict, original_out: dict | None) -> None:
        spec = self.specs[name]
        got = self.run(name, feeds)
        for out in spec.output_names:
            self.add(compare(f"{name} {label}", out, got[out], ref_out[out], spec.tolerance(out, self.kind)))
            if original_out is not None:
                self.add(compare(f"{name} {label} fp16 cost", out, got[out], original_out[out],
                                 spec.tolerance(out, "fp16_cost")))

    def check_forward_graphs(self) -> None:
        self.say("validating generator / discriminator / refiner against torch")
        faces = real_faces()
        for name in ("generator", "discriminator", "refiner", "samples_refiner", "encoder"):
            if name not in self.specs:
                continue
            spec = self.specs[name]
            (inp, dims), out = spec.inputs[0], spec.output_names[0]
            inputs = [(f"seeded B={b}", self.rng.uniform(-1, 1, spec.concrete(dims, b)).astype(np.float32))
                      for b in (1, 3)]
            if name == "encoder":
                inputs.append((f"real faces, mixed masks B={len(faces)}", masked_faces(faces)))
            elif name in ("refiner", "samples_refiner") and dims[1] in (4, 7):
                inputs.append((f"real faces, mixed masks B={len(faces)}", refiner_faces(faces, dims[1])))
            elif name != "generator":
                inputs.append((f"real faces B={len(faces)}", faces))
            for label, x in inputs:
                ref = {out: _forward(getattr(self.ref, name), x)}
                orig = {out: _forward(getattr(self.original, name), x)} if self.original else None
                self._graph_rows(name, label, {inp: x}, ref, orig)

    # -- search step
    def _step_cases(self) -> list[tuple[str, dict]]:
        z_dim = self.specs["generator"].inputs[0][1][1]
        b = 3
        z = self.rng.uniform(-1, 1, (b, z_dim)).astype(np.float32)
        y = self.rng.uniform(-1, 1, (b, 3, 64, 64)).astype(np.float32)
        W = importance_weights(np.stack([pattern_mask(np.random.default_rng(i)) for i in range(b)]))
        m = (self.rng.standard_normal((b, z_dim)) * 0.05).astype(np.float32)
        v = (self.rng.uniform(0, 1e-2, (b, z_dim))).astype(np.float32)
        t = np.array([0, 5, 40], np.float32)
        face = real_faces(1)
        Wc = importance_weights(center_mask())
        z1 = initial_z(1, 1, z_dim, seed=0)
        cases = []
        for prior in ("lsgan", "log"):
            cases.append((f"seeded B=3 {prior}", step_feeds(z, y, W, m, v, t, self.search, prior)))
            cases.append((f"real face B=1 {prior}", step_feeds(z1, face, Wc, cfg=self.search, prior=prior)))
        return cases

    def check_step(self) -> None:
        self.say("validating the search step against torch (search_loss + autograd + adam_step)")
        for label, feeds in self._step_cases():
            ref = torch_step(self.ref.generator, self.ref.discriminator, feeds)
            orig = torch_step(self.original.generator, self.original.discriminator, feeds) if self.original else None
            self._graph_rows("search_step", label, feeds, ref, orig)

    def check_gradient(self) -> None:
        """m_next = beta1*m + (1-beta1)*grad is exactly grad with beta1 = 0 and m = 0."""
        self.say("validating dL/dz against torch.autograd")
        for label, feeds in self._step_cases():
            feeds = {**feeds, "beta1": np.asarray(0.0, np.float32), "m": np.zeros_like(feeds["m"])}
            grad = self.run("search_step", feeds)["m_next"]
            ref = torch_step(self.ref.generator, self.ref.discriminator, feeds)["grad"]
            self.add(compare(f"dL/dz vs autograd {label}", "grad", grad, ref, GRADIENT_TOL[self.kind]))
            if self.original:
                orig = torch_step(self.original.generator, self.original.discriminator, feeds)["grad"]
                self.add(compare(f"dL/dz vs autograd {label} fp16 cost", "grad", grad, orig,
                                 GRADIENT_TOL["fp16_cost"]))

    def check_epsilon(self) -> None:
        """Zero gradient, zero moments: Adam's update is 0 / (0 + eps) = 0; a graph that lost eps
        gives 0/0 = NaN."""
        z_dim = self.specs["generator"].inputs[0][1][1]
        z = self.rng.uniform(-1, 1, (2, z_dim)).astype(np.float32)
        feeds = step_feeds(z, np.zeros((2, 3, 64, 64), np.float32), np.zeros((2, 1, 64, 64), np.float32),
                           cfg=self.search, lam=0.0)
        got = self.run("search_step", feeds)
        finite = all(np.all(np.isfinite(got[k])) for k in ("z_next", "m_next", "v_next"))
        row = compare("epsilon: zero gradient -> z unchanged, finite", "z_next", got["z_next"], z, Tolerance(0.0))
        row.ok = row.ok and finite
        self.add(row)

    def _torch_search(self, models: TorchModels, z0: np.ndarray, y: np.ndarray, W: np.ndarray,
                      cfg: SearchConfig, steps: int, dtype=torch.float32) -> tuple[list[np.ndarray], np.ndarray, float]:
        """search_loss + autograd + adam_step loop (the torch fallback's computation) in `dtype`.
        Returns (z after each step, loss curve (steps,B) at the input z of each step, seconds)."""
        G, D = models.generator, models.discriminator
        if dtype != torch.float32:
            G, D = copy.deepcopy(G).to(dtype), copy.deepcopy(D).to(dtype)
        z = torch.from_numpy(z0.copy()).to(dtype)
        m, v, t = torch.zeros_like(z), torch.zeros_like(z), torch.zeros(z.shape[0], dtype=dtype)
        yt, Wt = torch.from_numpy(y).to(dtype), torch.from_numpy(W).to(dtype)
        zs, losses = [], []
        start = time.perf_counter()
        for _ in range(steps):
            zl = z.detach().requires_grad_(True)
            loss, _ = search_loss(G, D, zl, yt, Wt, cfg.lam, cfg.prior)
            (grad,) = torch.autograd.grad(loss.sum(), zl)
            with torch.no_grad():
                z, m, v, t = adam_step(zl.detach(), grad, m, v, t, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
            losses.append(loss.detach().numpy())
            zs.append(z.numpy())
        return zs, np.stack(losses), time.perf_counter() - start

    def check_search(self) -> None:
        steps, tol = SEARCH_STEPS, SEARCH_TOL
        self.say(f"validating a {steps}-step search: onnxruntime vs torch")
        face = real_faces(1)
        cfg = self.search.replace(restarts=2)
        k = cfg.restarts
        z0 = initial_z(1, k, self.specs["generator"].inputs[0][1][1], seed=0)
        y, W = np.repeat(face, k, 0), np.repeat(importance_weights(center_mask()), k, 0)
        feeds = step_feeds(z0.copy(), y, W, cfg=cfg)
        onnx_z, onnx_loss = [], []
        start = time.perf_counter()
        for _ in range(steps):
            out = self.run("search_step", feeds)
            onnx_loss.append(out["loss"])
            onnx_z.append(out["z_next"])
            feeds.update(z=out["z_next"], m=out["m_next"], v=out["v_next"], t=out["t_next"])
        onnx_s = time.perf_counter() - start
        onnx_loss = np.stack(onnx_loss)
        torch_z, torch_loss, torch_s = self._torch_search(self.ref, z0, y, W, cfg, steps)
        # the exact search (float64 torch, same weights): how far float32 rounding alone takes torch
        exact_z, exact_loss, _ = self._torch_search(self.ref, z0, y, W, cfg, steps, dtype=torch.float64)
        spread = float(np.max(np.abs(torch_z[-1] - exact_z[-1])))
        loss_spread = float(np.max(np.abs(torch_loss - exact_loss)))
        label = f"search {steps} steps B={k} {cfg.prior}"
        e = tol.early_steps
        # early z: tight, unless float32 rounding alone already moves torch further from the
        # exact search over these steps (a sharper critic amplifies it), the rule the final z uses
        torch_early = np.stack(torch_z[:e])
        early_spread = float(np.max(np.abs(torch_early - np.stack(exact_z[:e]))))
        row = compare(f"{label}: z over steps 1-{e}", "z", np.stack(onnx_z[:e]), torch_early,
                      Tolerance(max(tol.z_early.atol, tol.spread_factor * early_spread)))
        row.note = f"torch32 vs float64 over steps 1-{e}: {early_spread:.2e}"
        self.add(row)
        row = compare(f"{label} vs float64 torch", "final z", onnx_z[-1], exact_z[-1],
                      Tolerance(tol.z_floor + tol.spread_factor * spread))
        row.note = f"torch32 vs float64: {spread:.2e}; onnx vs torch32: {np.max(np.abs(onnx_z[-1] - torch_z[-1])):.2e}"
        self.add(row)
        # the loss curve, like the final z, is judged against the exact search: onnxruntime must
        # stay within `loss` of it, or within spread_factor x torch32's own distance from it when
        # float32 rounding alone moves torch further (a noisy generator makes the search chaotic)
        limit = max(tol.loss.rtol * float(np.max(np.abs(exact_loss))), tol.spread_factor * loss_spread)
        row = compare(f"{label} vs float64 torch", "loss curve", onnx_loss, exact_loss, Tolerance(limit))
        row.note = (f"torch32 vs float64: {loss_spread:.2e}; onnx vs torch32: "
                    f"{float(np.max(np.abs(onnx_loss - torch_loss))):.2e}; "
                    f"loss {float(exact_loss[0].mean()):.4g} -> {float(exact_loss[-1].mean()):.4g}")
        self.add(row)
        if self.original is not None:
            _, orig_loss, _ = self._torch_search(self.original, z0, y, W, cfg, steps)
            self.add(compare(f"{label} fp16 cost", "loss curve", onnx_loss, orig_loss, tol.loss_fp16_cost))
        self.timing = {"batch": k, "steps": steps, "onnxruntime_ms_per_step": round(1000 * onnx_s / steps, 3),
                       "torch_ms_per_step": round(1000 * torch_s / steps, 3)}


def validate_bundle(root: Path, specs: dict[str, GraphSpec], ref: TorchModels, original: TorchModels | None,
                    precision: str, search: SearchConfig, say: Callable[[str], None] = lambda s: None
                    ) -> tuple[list[Row], dict]:
    """Run every check; returns (rows, timing). `original` is given for fp16 bundles only."""
    v = Validator(root, specs, ref, original, precision, search, say)
    rows = v.all()
    return rows, v.timing
