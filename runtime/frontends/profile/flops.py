"""FLOPs of the models and of one latent-search step, counted from layer shapes (numpy only).

Counting convention (as in most papers and in fvcore/ptflops x 2): a multiply-accumulate is 2
FLOPs; only convolutions, transposed convolutions and linear layers are counted. BatchNorm
(eval: a per-channel scale and shift), activations, the loss and the Adam update are
elementwise and add well under 1% for these models; they are left out.

    Conv2d          Cin -> Cout, k x k, output Ho x Wo:  MACs = Cin * Cout * k^2 * Ho * Wo
    ConvTranspose2d Cin -> Cout, k x k, input  Hi x Wi:  MACs = Cin * Cout * k^2 * Hi * Wi
    Linear          F -> O:                            MACs = F * O

One search step per batch row (image x restart) = forward G + forward D + the backward pass to z.
The backward needs only input gradients (no weight gradients): the input-gradient of a
(transposed) convolution is a (transposed) convolution with the same weight and the same
MAC count, and of a linear layer a linear layer. So backward = forward, and one step is
2 x (G + D) forward MACs, i.e. 4 x (G + D) MACs in FLOPs.

Shapes follow edgefill.train's models (DESIGN section 1), read from the manifest configs:
generator {"z_dim", "width"}, discriminator {"width"}, refiner {"width", "arch", "mask_channel", "telea_channels"}.
"""
from __future__ import annotations

from dataclasses import dataclass

KERNEL = 4


@dataclass(frozen=True)
class Layer:
    """One counted layer: name, kind ('conv', 'convT', 'linear'), output shape (C,H,W) or (O,), MACs."""

    name: str
    kind: str
    out_shape: tuple[int, ...]
    macs: int


def generator_layers(z_dim: int = 100, width: int = 64) -> list[Layer]:
    """z (z_dim) -> 4x4x8w -> 8x8x4w -> 16x16x2w -> 32x32xw -> 64x64x3 (ConvTranspose2d 4x4)."""
    chans = [z_dim, 8 * width, 4 * width, 2 * width, width, 3]
    layers, size_in = [], 1
    for i in range(5):
        size_out = 4 if i == 0 else size_in * 2
        macs = chans[i] * chans[i + 1] * KERNEL * KERNEL * size_in * size_in
        layers.append(Layer(f"G.convT{i}", "convT", (chans[i + 1], size_out, size_out), macs))
        size_in = size_out
    return layers


def _strided_encoder(prefix: str, width: int, in_channels: int = 3) -> list[Layer]:
    """The critic's and the refiner encoder's shared stack: 64x64xC -> 32x32xw -> 16x16x2w ->
    8x8x4w -> 4x4x8w, Conv2d 4x4 stride 2."""
    chans = [in_channels, width, 2 * width, 4 * width, 8 * width]
    layers, size = [], 64
    for i in range(4):
        size //= 2
        layers.append(Layer(f"{prefix}.conv{i}", "conv", (chans[i + 1], size, size),
                            chans[i] * chans[i + 1] * KERNEL * KERNEL * size * size))
    return layers


def discriminator_layers(width: int = 64) -> list[Layer]:
    """64x64x3 -> 32x32xd -> 16x16x2d -> 8x8x4d -> 4x4x8d (Conv2d 4x4 stride 2) -> linear -> 1."""
    layers = _strided_encoder("D", width)
    layers.append(Layer("D.linear", "linear", (1,), 4 * 4 * 8 * width))
    return layers


def refiner_layers(width: int = 64, arch: str = "autoencoder", in_channels: int = 3, blocks: int = 0) -> list[Layer]:
    """autoencoder: 64x64xC -> 4x4x8r (4 strided convs), decoder back to 64x64x3 (4 transposed
    convs). unet (train/refiner.py): the same encoder, a 3x3 conv at 4x4, transposed convs whose
    inputs are widened by the skips, `blocks` residual blocks at 4x4 to 32x32, a 3x3 output conv
    on r + C channels."""
    if arch == "unet":
        return _unet_refiner_layers(width, in_channels, blocks)
    layers, size = _strided_encoder("R", width, in_channels), 4
    dec = [8 * width, 4 * width, 2 * width, width, 3]
    for i in range(4):
        layers.append(Layer(f"R.convT{i}", "convT", (dec[i + 1], size * 2, size * 2),
                            dec[i] * dec[i + 1] * KERNEL * KERNEL * size * size))
        size *= 2
    return layers


def _unet_refiner_layers(r: int, c: int, blocks: int = 0) -> list[Layer]:
    layers = _strided_encoder("R", r, c)
    layers.append(Layer("R.mid", "conv", (8 * r, 4, 4), 8 * r * 8 * r * 9 * 16))
    layers += _block_layers("R.b4", 8 * r, 4, blocks)
    ups = [(8 * r, 4 * r), (8 * r, 2 * r), (4 * r, r), (2 * r, r)]  # (in with skip, out)
    size = 4
    for i, (cin, cout) in enumerate(ups):
        layers.append(Layer(f"R.up{i}", "convT", (cout, size * 2, size * 2), cin * cout * KERNEL * KERNEL * size * size))
        size *= 2
        if size <= 32:  # residual blocks after the ups to 8x8, 16x16 and 32x32
            layers += _block_layers(f"R.b{size}", cout, size, blocks)
    layers.append(Layer("R.out", "conv", (3, 64, 64), (r + c) * 3 * 9 * 64 * 64))
    return layers


def _block_layers(name: str, c: int, size: int, blocks: int) -> list[Layer]:
    """A U-Net refiner's residual blocks at one scale: two 3x3 c->c convs each."""
    return [Layer(f"{name}.{k}.{j}", "conv", (c, size, size), c * c * 9 * size * size)
            for k in range(blocks) for j in range(2)]


def total_macs(layers: list[Layer]) -> int:
    return int(sum(layer.macs for layer in layers))


def model_flops(models: dict) -> dict:
    """FLOPs per image of each model's forward pass and of one search step, from the manifest's
    "models" dict. Returns {"generator", "discriminator", "refiner" (or None), "search_step"} in FLOPs."""
    g = models.get("generator") or {}
    d = models.get("discriminator") or {}
    r = models.get("refiner")
    g_f = 2 * total_macs(generator_layers(int(g.get("z_dim", 100)), int(g.get("width", 64))))
    d_f = 2 * total_macs(discriminator_layers(int(d.get("width", 64))))
    r_f = (2 * total_macs(refiner_layers(int(r.get("width", 64)), r.get("arch", "autoencoder"),
                                         7 if r.get("telea_channels") else 4 if r.get("mask_channel") else 3,
                                         int(r.get("blocks", 0))))
           if r else None)
    return {"generator": g_f, "discriminator": d_f, "refiner": r_f, "search_step": 2 * (g_f + d_f),
            "convention": "2 FLOPs per multiply-accumulate; conv/convT/linear only; search step = "
                          "forward G + D and the input-gradient backward (same MACs as the forward)"}


PEAK_SCRIPT = """
import json, sys, time
import numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best}))
"""
# Set on some CPUs by this kind of workplace for older OpenBLAS builds; a current numpy then runs
# a slower generic kernel, and a "peak" measured with it read 209% for the search step.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def measured_peak_gflops(n: int = 1024, repeats: int = 8) -> dict:
    """The machine's float32 matmul throughput measured here: best of `repeats` numpy
    (n x n) @ (n x n) products (2 n^3 FLOPs each), in GFLOP/s. A practical peak (what a tuned
    BLAS reaches with every core numpy's BLAS uses), not the datasheet number. Measured in a
    child process without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (both unset together, in that
    process alone), so OpenBLAS picks its kernel for this CPU and the peak is a real ceiling."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n), str(repeats)], capture_output=True, text=True,
                          env=env, timeout=300)
    best = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    dropped = [k for k in BLAS_OVERRIDES if k in os.environ]
    return {"gflops": 2.0 * n ** 3 / best / 1e9, "seconds": best,
            "method": f"best of {repeats} numpy float32 {n}x{n} matmuls (2n^3 FLOPs each) on this machine"
                      + (f", without {' and '.join(dropped)}" if dropped else "")}


def nominal_peak_gflops(cores: int) -> dict | None:
    """A datasheet-style float32 bound from /proc/cpuinfo: cores x MHz x 2 FMA pipes x SIMD lanes
    (16 with avx512f, 8 with avx2/fma, else 4) x 2 FLOPs per FMA. An upper bound: turbo, AVX
    clock offsets and CPUs that split 512-bit ops into two 256-bit halves (AMD Zen 4) make the
    real one lower. None when /proc/cpuinfo is not readable."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None
    mhz = flags = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz" and mhz is None:
            mhz = float(value)
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    if not mhz or flags is None:
        return None
    lanes = 16 if "avx512f" in flags else 8 if ("avx2" in flags and "fma" in flags) else 4
    gflops = cores * mhz / 1000.0 * 2 * lanes * 2
    return {"gflops": gflops, "method": f"{cores} cores x {mhz:.0f} MHz x 2 FMA pipes x {lanes} float32 lanes x 2 "
            "(upper bound, see flops.nominal_peak_gflops)"}
