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


@dataclass(frozen=True)
class RefinerConfig:
    """Autoencoder: image (N,3,64,64) -> code 4*4*8r (8192 at r=64) -> image (N,3,64,64)."""

    width: int = 64


@dataclass(frozen=True)
class EncoderConfig:
    """The search's start network E: (N,4,64,64) [known RGB in [-1,1], 0 in the hole; known mask]
    -> z (N, z_dim) in [-1,1] (tanh). width e: 4 strided 4x4 convs e-2e-4e-8e (64 -> 4), BN +
    LeakyReLU(0.2), then flatten 4*4*8e (4096 at e=32) -> linear -> tanh."""

    z_dim: int = 100
    width: int = 32


PRESETS: dict[str, tuple[GeneratorConfig, DiscriminatorConfig, RefinerConfig]] = {
    "tiny": (GeneratorConfig(width=8), DiscriminatorConfig(width=8), RefinerConfig(width=8)),
    "base": (GeneratorConfig(width=64), DiscriminatorConfig(width=64), RefinerConfig(width=64)),
    "paper": (GeneratorConfig(width=128), DiscriminatorConfig(width=64), RefinerConfig(width=64)),
}


def preset(name: str) -> tuple[GeneratorConfig, DiscriminatorConfig, RefinerConfig]:
    if name not in PRESETS:
        raise EdgefillError(f"unknown config {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class GanTrainConfig:
    """One `edgefill train gan` run. LSGAN (Mao et al.) with Adam."""

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
    amp: bool = True  # mixed precision, CUDA only
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints (0: per epoch only)
    limit: int = 0  # use only the first N images (0: all)


@dataclass(frozen=True)
class RefinerTrainConfig:
    """One `edgefill train refiner` run: completions from the LSGAN search, then MSE training."""

    refiner: RefinerConfig = field(default_factory=RefinerConfig)
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


@dataclass(frozen=True)
class EncoderTrainConfig:
    """One `edgefill train encoder` run (DESIGN section 7): `synthetic_steps` on G's own samples
    under random masks of every kind (z known: latent MSE + L1 on known pixels of G(E(x))), then
    `real_steps` on real training faces (L1 on known pixels + the W-weighted contextual loss +
    lam * the LSGAN prior, all through the frozen G and D)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    synthetic_steps: int = 1500
    real_steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    latent_weight: float = 1.0
    lam: float = 0.003  # prior weight in the real phase (the contextual terms are per-pixel means)
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
