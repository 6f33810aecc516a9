"""One declarative spec per exported graph: file, input/output names and dims, dynamic axes,
opset and the validation tolerances. Read by the exporter (names, axes, opset) and by the
validation (names, shapes, tolerances), so the two cannot disagree.

Dims are ints or the symbol "batch" (the dynamic first axis of every batched tensor).
Scalars are []. All graph inputs and outputs are float32, in both precisions.

Tolerances: an output passes when max|onnx - torch| <= atol + rtol * max|torch| (the relative
part is measured against the reference's own scale, so it does not explode near zero).
`fp32` applies to the fp32 bundle against the torch model; `fp16` to the fp16 bundle against
the torch model whose weights were rounded to float16 (the same numbers the graph computes
with: a correctness check); `fp16_cost` bounds the fp16 bundle against the original fp32
torch model (what half-precision storage costs in accuracy).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from edgefill.runtime.core.bundle import STEP_INPUTS, STEP_OUTPUTS

OPSET = 17
BATCH = "batch"
IMAGE = (BATCH, 3, 64, 64)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float = 0.0

    def limit(self, ref_scale: float) -> float:
        return self.atol + self.rtol * ref_scale


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle."""

    name: str
    inputs: tuple[tuple[str, tuple], ...]
    outputs: tuple[tuple[str, tuple], ...]
    fp32: Tolerance
    fp16: Tolerance
    fp16_cost: Tolerance
    opset: int = OPSET
    doc: str = ""
    # per-output overrides: {output name: (fp32, fp16, fp16_cost)}
    per_output: dict = field(default_factory=dict)

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's dynamic_axes: axis 0 named 'batch' wherever the dims say so."""
        return {n: {i: d for i, d in enumerate(dims) if isinstance(d, str)}
                for n, dims in (*self.inputs, *self.outputs) if any(isinstance(d, str) for d in dims)}

    def tolerance(self, output: str, kind: str) -> Tolerance:
        """kind: 'fp32', 'fp16' or 'fp16_cost'."""
        if output in self.per_output:
            return self.per_output[output][("fp32", "fp16", "fp16_cost").index(kind)]
        return getattr(self, kind)

    def concrete(self, dims: tuple, batch: int) -> tuple[int, ...]:
        return tuple(batch if isinstance(d, str) else d for d in dims)

    def manifest_entry(self) -> dict:
        return {"file": self.file, "inputs": {n: list(d) for n, d in self.inputs},
                "outputs": {n: list(d) for n, d in self.outputs}, "opset": self.opset,
                "dynamic_axes": {n: {str(i): a for i, a in ax.items()} for n, ax in self.dynamic_axes().items()},
                "doc": self.doc}


def generator_spec(z_dim: int) -> GraphSpec:
    return GraphSpec("generator", (("z", (BATCH, z_dim)),), (("image", IMAGE),),
                     fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2),
                     doc="z (N,z_dim) f32 in [-1,1] -> image (N,3,64,64) f32 in [-1,1]")


def discriminator_spec() -> GraphSpec:
    return GraphSpec("discriminator", (("image", IMAGE),), (("score", (BATCH, 1)),),
                     fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2, 5e-2),
                     doc="image (N,3,64,64) f32 in [-1,1] -> raw critic score (N,1) f32")


def refiner_spec(in_channels: int = 3, name: str = "refiner") -> GraphSpec:
    """3 channels: the first refiner (blended RGB); 4: blended RGB + the hole (1 = hole); 7: those
    + Telea's fill of the hole; the input name telling them apart (runtime.imaging.images.refiner_input builds both).
    name: "refiner", or "samples_refiner" (the refiner of K samples per hole, trained to keep their differences)."""
    if in_channels == 7:
        return GraphSpec(name, (("image_hole_telea", (BATCH, 7, 64, 64)),), (("refined", IMAGE),),
                         fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2),
                         doc="image_hole_telea (N,7,64,64) f32: blended RGB in [-1,1] + hole mask (1 = hole) + "
                             "OpenCV Telea's fill of the hole, RGB in [-1,1] -> refined image (N,3,64,64) f32 "
                             "in [-1,1] (the product keeps its hole)")
    if in_channels == 4:
        return GraphSpec(name, (("image_hole", (BATCH, 4, 64, 64)),), (("refined", IMAGE),),
                         fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2),
                         doc="image_hole (N,4,64,64) f32: blended RGB in [-1,1] + hole mask (1 = hole, 0 = known) "
                             "-> refined image (N,3,64,64) f32 in [-1,1] (the product keeps its hole)")
    return GraphSpec(name, (("image", IMAGE),), (("refined", IMAGE),),
                     fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2),
                     doc="image (N,3,64,64) f32 in [-1,1] -> refined image (N,3,64,64) f32 in [-1,1]")


def encoder_spec(z_dim: int) -> GraphSpec:
    return GraphSpec("encoder", (("masked", (BATCH, 4, 64, 64)),), (("z", (BATCH, z_dim)),),
                     fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2),
                     doc="masked (N,4,64,64) f32: known RGB in [-1,1] (0 in the hole) + known mask (1 known) "
                         "-> z (N,z_dim) f32 in [-1,1], the search's start (runtime.core.starts.encoder_input)")


def search_step_spec(z_dim: int) -> GraphSpec:
    dims = {"z": (BATCH, z_dim), "m": (BATCH, z_dim), "v": (BATCH, z_dim), "t": (BATCH,), "y": IMAGE,
            "W": (BATCH, 1, 64, 64)}
    inputs = tuple((n, dims.get(n, ())) for n in STEP_INPUTS)
    out_dims = {"z_next": dims["z"], "m_next": dims["m"], "v_next": dims["v"], "t_next": dims["t"],
                "loss": (BATCH,), "image": IMAGE}
    outputs = tuple((n, out_dims[n]) for n in STEP_OUTPUTS)
    loose = Tolerance(1e-4, 1e-4)
    return GraphSpec(
        "search_step", inputs, outputs,
        fp32=Tolerance(1e-5, 1e-5), fp16=Tolerance(1e-5, 1e-5), fp16_cost=Tolerance(5e-2, 5e-2),
        # m_next/v_next carry the gradient (a sum over 12k pixels with sign() terms): relative.
        # z_next's fp16 cost: a first Adam step (m = v = 0) moves every coordinate by +-lr whatever
        # the gradient's size, so a near-zero gradient coordinate whose sign the fp16 weights flip
        # moves by 2 lr (0.06 at the default lr 0.03); the gradient itself is bounded by m_next.
        per_output={"m_next": (loose, loose, Tolerance(0.0, 0.2)), "v_next": (loose, loose, Tolerance(0.0, 0.4)),
                    "z_next": (Tolerance(1e-5, 1e-5), Tolerance(1e-5, 1e-5), Tolerance(0.1))},
        doc="one Adam step of the latent search on z; loss (B,) and image = G(z) at the input z; "
            "prior 0.0 = lsgan (s-1)^2, 1.0 = log -softplus(s)")


# dL/dz against torch.autograd, relative to max|grad|; the 200-step search against torch.
GRADIENT_TOL = {"fp32": Tolerance(0.0, 1e-4), "fp16": Tolerance(0.0, 1e-4), "fp16_cost": Tolerance(0.0, 0.2)}
SEARCH_STEPS = 200


@dataclass(frozen=True)
class SearchTolerance:
    """The SEARCH_STEPS-step search, onnxruntime vs torch from the same start.

    The search amplifies rounding: the contextual loss is an L1 norm (its gradient flips sign
    where a residual crosses zero) and Adam normalises each coordinate (a coordinate whose
    gradient is near eps moves by lr * g / eps, so absolute rounding noise in g moves z). Two
    float32 implementations with different kernels therefore drift apart in z over 200 steps
    (measured: ~1e-1 on the base model, ~1e-2 on the tiny random model); their loss curves
    usually agree to ~1e-4 relative, but with a noisy (collapsed, early) generator they drift
    too (measured 1.7e-3 relative). So: z must agree tightly over the first `early_steps` steps
    (within z_early, or spread_factor x torch32's own distance from float64 over those steps when
    rounding alone moves it further: measured 1.7e-4 with a sharper critic);
    the final z must be as close to the exact (float64 torch) search as torch's own float32
    search is: |z_onnx - z_64| <= spread_factor * |z_torch32 - z_64| + z_floor; and the loss
    curve likewise: |L_onnx - L_64| <= max(`loss` relative, spread_factor * |L_torch32 - L_64|).
    """

    early_steps: int = 10
    z_early: Tolerance = Tolerance(1e-4)
    z_floor: float = 1e-3
    spread_factor: float = 4.0
    loss: Tolerance = Tolerance(0.0, 1e-3)
    loss_fp16_cost: Tolerance = Tolerance(0.0, 5e-2)


SEARCH_TOL = SearchTolerance()


def all_specs(z_dim: int, with_refiner: bool, with_encoder: bool = False,
              refiner_channels: int = 3, samples_refiner_channels: int | None = None) -> dict[str, GraphSpec]:
    specs = {"generator": generator_spec(z_dim), "discriminator": discriminator_spec()}
    if with_refiner:
        specs["refiner"] = refiner_spec(refiner_channels)
    if samples_refiner_channels is not None:
        specs["samples_refiner"] = refiner_spec(samples_refiner_channels, "samples_refiner")
    if with_encoder:
        specs["encoder"] = encoder_spec(z_dim)
    specs["search_step"] = search_step_spec(z_dim)
    return specs
