"""Frozen configs for every model and training stage. They travel inside checkpoints and the
bundle manifest (as plain dicts via `to_dict`), and CLI flags map onto their fields."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.core.search_config import SearchConfig

T = TypeVar("T")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from a dict, ignoring unknown keys (forward-compatible manifests)."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class GeneratorConfig:
    """DCGAN generator: z (N, z_dim) uniform in [-1,1] -> image (N,3,64,64) in [-1,1] (tanh).
    width w: channels 8w-4w-2w-w. activation: relu or leaky (slope 0.2). dropout after the
    8x8 and 16x16 blocks when > 0 (training only)."""

    z_dim: int = 100
    width: int = 64
    activation: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True)
class DiscriminatorConfig:
    """LSGAN critic: image (N,3,64,64) -> raw score (N,1); width d: channels d-2d-4d-8d,
    flattened 4*4*8d features (8192 at d=64) -> linear."""

    width: int = 64


REFINER_ARCHS = ("autoencoder", "unet")


@dataclass(frozen=True)
class RefinerConfig:
    """The refiner R (train/refiner.py). arch "autoencoder" (the report's): strided convs down
    to a 4*4*8r code (8192 at r=64) and back, no skips. arch "unet": the same strided path with
    skip connections at every scale and a residual output (R predicts a correction of the
    blended image). mask_channel: R also sees the hole, input (N,4,64,64) = blended RGB in
    [-1,1] + hole mask (1 = hole, 0 = known; runtime.imaging.images.refiner_input); else
    (N,3,64,64). telea_channels (needs mask_channel): R also sees OpenCV Telea's fill of the same
    hole, input (N,7,64,64), so it can take from the search's face and the diffusion fill alike.
    blocks (unet only): residual blocks at each decoder scale (4x4, 8x8, 16x16, 32x32), each two
    3x3 convs with BN added to its input; their last BN's scale starts at zero, so a refiner
    given blocks computes what it did without them until training moves them (--init-refiner).
    The defaults are the shipped bundle's first refiner, so a manifest written before
    arch/mask_channel/blocks existed ({"width": 64}) still describes its graph."""

    width: int = 64
    arch: str = "autoencoder"
    mask_channel: bool = False
    telea_channels: bool = False
    blocks: int = 0

    def __post_init__(self) -> None:
        if self.arch not in REFINER_ARCHS:
            raise EdgefillError(f"unknown refiner arch {self.arch!r}; use one of {', '.join(REFINER_ARCHS)}")
        if self.blocks < 0 or (self.blocks and self.arch != "unet"):
            raise EdgefillError(f"refiner blocks must be >= 0 and need the unet arch, got {self.blocks} "
                                f"with {self.arch}")
        if self.telea_channels and not self.mask_channel:
            raise EdgefillError("a refiner with Telea channels also needs the mask channel")

    @property
    def in_channels(self) -> int:
        return 7 if self.telea_channels else 4 if self.mask_channel else 3


def hole_refiner(width: int) -> RefinerConfig:
    """The refiner that sees the hole: a U-Net with the mask as a fourth input channel."""
    return RefinerConfig(width=width, arch="unet", mask_channel=True)


@dataclass(frozen=True)
class EncoderConfig:
    """The search's start network E: (N,4,64,64) [known RGB in [-1,1], 0 in the hole; known mask]
    -> z (N, z_dim) in [-1,1] (tanh). width e: 4 strided 4x4 convs e-2e-4e-8e (64 -> 4), BN +
    LeakyReLU(0.2), then flatten 4*4*8e (4096 at e=32) -> linear -> tanh."""

    z_dim: int = 100
    width: int = 32


PRESETS: dict[str, tuple[GeneratorConfig, DiscriminatorConfig, RefinerConfig]] = {
    "tiny": (GeneratorConfig(width=8), DiscriminatorConfig(width=8), hole_refiner(8)),
    "base": (GeneratorConfig(width=64), DiscriminatorConfig(width=64), hole_refiner(32)),
    "paper": (GeneratorConfig(width=128), DiscriminatorConfig(width=64), hole_refiner(32)),
}


def preset(name: str) -> tuple[GeneratorConfig, DiscriminatorConfig, RefinerConfig]:
    if name not in PRESETS:
        raise EdgefillError(f"unknown config {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class GanTrainConfig:
    """One `edgefill train gan` run: LSGAN (Mao et al.) with Adam (train/train_gan.py).

    ema_kimg: half-life, in thousands of images, of the exponential moving average of G
    (parameters and BN buffers) that ships; diffaugment: DiffAugment policy on everything the
    critic sees ("" = off; train/augment.py); cpu_bf16: bf16 autocast on CPU; checkpoint_minutes:
    wall time between ticks (checkpoint, log line, SWD, sample grid; 0 = only by steps);
    swd_images: EMA-G samples and real training faces compared at each tick (0 = no SWD)."""

    preset: str = "base"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    epochs: int = 25
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 1e-4  # half of G's: with equal rates the base critic won outright and G collapsed
    instance_noise: float = 0.1  # std of Gaussian noise on D's inputs, annealed linearly to 0 ...
    instance_noise_steps: int = 2500  # ... over this many steps (fixed, so --epochs on resume keeps it)
    beta1: float = 0.5
    beta2: float = 0.999
    flip: bool = True
    val_fraction: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA
    checkpoint_every: int = 0  # steps between ticks (0: by wall time only)
    limit: int = 0  # use only the first N images (0: all)
    ema_kimg: float = 10.0
    diffaugment: str = "color,translation,cutout"
    cpu_bf16: bool = True  # measured: 1.8x the images/s of fp32 on a 2-core AMX CPU, the same SWD after 16k images
    checkpoint_minutes: float = 5.0
    swd_images: int = 2048

    def __post_init__(self) -> None:
        if self.ema_kimg < 0 or self.checkpoint_minutes < 0 or self.swd_images < 0:
            raise EdgefillError("--ema-kimg, --checkpoint-minutes and --swd-images must be >= 0")


REFINER_FILLS = ("search", "telea", "ns")


@dataclass(frozen=True)
class RefinerTrainConfig:
    """One `edgefill train refiner` run: completions (train/completions.py), then training on
    the composite M*y + (1-M)*R(x): `loss` ("mse" or "l1") over the hole's pixels plus
    `ssim_weight` * (1 - SSIM) of the whole composite. completions: training faces completed
    (0: all), each under `masks_per_face` random masks; `search` applies to a GAN run's torch
    completions (a bundle completes at its own defaults).
    fill: "search" (the --gan source's completions) or "telea"/"ns" (OpenCV's fill of the masked
    face: the strong no-GAN baseline, same recipe and budget). samples: completions per mask
    from different starts (runtime.core.starts.sample_starts; a bundle source only); with
    samples > 1 a batch holds batch_size/samples problems x samples completions (the same images
    per step) and keep_weight adds the hole MSE between each output's and its completion's
    deviation from the mean of the problem's samples: the refiner must keep the search's
    differences instead of repainting them. best_of (0..1, samples > 1): the share of each
    problem's loss given to its best sample alone (relaxed winner-takes-all, multiple-choice
    learning: the samples become different guesses, one of which should be right), the rest
    spread over all its samples; 0 = every sample's own loss alike. photometric: strength of the
    lighting change given alike to each problem's completion and truth (train/photometric.py;
    0 = none)."""

    refiner: RefinerConfig = field(default_factory=lambda: hole_refiner(32))
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    flip: bool = True
    val_fraction: float = 0.05
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    completions: int = 4096  # training images completed by the search (0: all)
    search: SearchConfig = field(default_factory=lambda: SearchConfig(steps=100, restarts=1))
    search_batch: int = 256
    checkpoint_every: int = 200
    limit: int = 0
    masks_per_face: int = 1
    loss: str = "mse"
    ssim_weight: float = 0.0
    fill: str = "search"
    samples: int = 1
    keep_weight: float = 0.0
    best_of: float = 0.0  # share of the loss on each problem's best sample (winner-takes-all); 0 = off
    photometric: float = 0.0  # lighting augmentation strength (train/photometric.py); 0 = off

    def __post_init__(self) -> None:
        if self.photometric < 0:
            raise EdgefillError(f"photometric strength must be >= 0, not {self.photometric}")
        if self.fill not in REFINER_FILLS:
            raise EdgefillError(f"refiner fill must be one of {', '.join(REFINER_FILLS)}, not {self.fill!r}")
        if self.samples < 1 or self.keep_weight < 0 or self.batch_size % self.samples:
            raise EdgefillError("samples must be >= 1 and divide the batch size, and the keep weight >= 0")
        if not 0.0 <= self.best_of <= 1.0 or (self.best_of > 0 and self.samples < 2):
            raise EdgefillError(f"the best-of share must be in [0, 1] and needs samples > 1, not {self.best_of}"
                                f" with {self.samples} sample(s) per mask")
        if self.samples > 1 and self.fill != "search":
            raise EdgefillError(f"an OpenCV fill ({self.fill}) has one completion per mask; samples must be 1")
        if self.loss not in ("mse", "l1"):
            raise EdgefillError(f"refiner loss must be mse or l1, not {self.loss!r}")
        if self.masks_per_face < 1 or self.ssim_weight < 0:
            raise EdgefillError("masks per face must be >= 1 and the SSIM weight >= 0")


@dataclass(frozen=True)
class EncoderTrainConfig:
    """One `edgefill train encoder` run (DESIGN section 7): `synthetic_steps` on G's own samples
    under random masks of every kind (z known: latent MSE + L1 on known pixels of G(E(x))), then
    `real_steps` on real training faces (L1 on known pixels + the W-weighted contextual loss +
    lam * the LSGAN prior, all through the frozen G and D; + hole_weight * the L1 of G(E(x))
    against the truth over the hole: training faces are whole, so the hole's truth is free
    supervision at training time, never an input)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    synthetic_steps: int = 1500
    real_steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    latent_weight: float = 1.0
    lam: float = 0.003  # prior weight in the real phase (the contextual terms are per-pixel means)
    hole_weight: float = 0.0  # weight of the hole's L1 against the truth in the real phase (0: the search's loss only)
    val_fraction: float = 0.02  # the GAN run's hold-out when it has one; else this fraction with `seed`
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 200
    limit: int = 0
    eval_steps: int = 20  # search steps from E's start in the validation pictures and numbers

    @property
    def total_steps(self) -> int:
        return self.synthetic_steps + self.real_steps


def nested_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """from_dict that also rebuilds nested config fields (generator, discriminator, ...)."""
    nested = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig,
              "refiner": RefinerConfig, "search": SearchConfig, "encoder": EncoderConfig}
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in known:
            continue
        kwargs[k] = from_dict(nested[k], v) if k in nested and isinstance(v, dict) else v
    return cls(**kwargs)
