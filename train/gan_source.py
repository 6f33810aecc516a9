"""The frozen G and D that later stages train against, from a GAN run OR an exported bundle.

`edgefill train encoder --gan X` and `edgefill export --checkpoint X` accept either: a GAN run
folder (train/checkpoint.py; its G is the best EMA G by SWD when the run kept one in `best/`,
else the newest EMA G, else - runs from before the average - the raw G) or a bundle folder/.zip (its weights, as stored: an fp16 bundle's
weights come back exactly, so re-exporting it in fp16 reproduces them bit for bit). A bundle
also yields its refiner (and its samples refiner), its encoder with the search settings it ships for an encoder start,
and the training record of its manifest.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from edgefill.runtime.core.bundle import MANIFEST, open_bundle
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.errors import EdgefillError

from .checkpoint import CHECKPOINT_DIR, find_checkpoint, load_best, load_checkpoint
from .config import (DiscriminatorConfig, EncoderConfig, GanTrainConfig, GeneratorConfig, RefinerConfig,
                     from_dict, nested_from_dict)
from .discriminator import Discriminator
from .encoder import Encoder
from .generator import Generator
from .refiner import build_refiner


@dataclass
class GanSource:
    """Eval-mode G and D (and the bundle's refiner and encoder, when the source is a bundle),
    the GAN's validation split (val_fraction, seed) and a training record for the manifest.
    encoder_start: the bundle's search settings for an encoder start ({} when none); search: the
    bundle's random-start search defaults (None for a GAN run), which a re-export keeps;
    samples_refiner: the bundle's refiner of K samples, when it ships one."""

    generator: Generator
    discriminator: Discriminator
    refiner: torch.nn.Module | None
    val_fraction: float
    seed: int
    training: dict
    kind: str  # "checkpoint" or "bundle"
    encoder: Encoder | None = None
    encoder_start: dict | None = None
    search: SearchConfig | None = None
    samples_refiner: torch.nn.Module | None = None


def is_bundle(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".zip" or (p / MANIFEST).is_file()


def _load(module: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    try:
        module.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise EdgefillError(f"{what} weights do not fit its config: {str(exc).strip().splitlines()[0]}") from None
    return module.eval()


def load_gan_source(path: str, flag: str = "--checkpoint", best: bool = True) -> GanSource:
    """A GAN run folder or a bundle (module docstring); EdgefillError (naming `flag`) when it is neither.
    best: a run's best EMA G by SWD (`best/`) when it has one; False: its newest EMA (else raw) G."""
    if is_bundle(path):
        bundle = open_bundle(path)
        models = bundle.manifest["models"]
        G = _load(Generator(from_dict(GeneratorConfig, models["generator"])), bundle.state_dict("generator"),
                  "generator")
        D = _load(Discriminator(from_dict(DiscriminatorConfig, models["discriminator"])),
                  bundle.state_dict("discriminator"), "discriminator")
        R, S = (_load(build_refiner(from_dict(RefinerConfig, models[name])), bundle.state_dict(name), name)
                if bundle.has_graph(name) and models.get(name) else None for name in ("refiner", "samples_refiner"))
        E = None
        if bundle.has_graph("encoder") and models.get("encoder"):
            E = _load(Encoder(from_dict(EncoderConfig, models["encoder"])), bundle.state_dict("encoder"), "encoder")
        training = dict(bundle.manifest.get("training") or {})
        gan = training.get("gan", {})
        return GanSource(G, D, R, float(gan.get("val_fraction", 0.02)), int(gan.get("seed", 0)),
                         {**training, "from_bundle": str(bundle.root)}, "bundle", E,
                         dict(bundle.manifest.get("search", {}).get("encoder_start") or {}),
                         bundle.search_defaults, S)
    if find_checkpoint(path) is None:
        raise EdgefillError(f"no edgefill checkpoint or bundle in {path} ({flag} takes a GAN run folder or a bundle)")
    ck = load_checkpoint(path)
    if ck.kind != "gan":
        raise EdgefillError(f"{path} is a {ck.kind} checkpoint; {flag} takes the GAN checkpoint (generator + critic) "
                            "or a bundle")
    cfg = nested_from_dict(GanTrainConfig, ck.config)
    found = load_best(ck.path.parent) if best and ck.path.name.startswith(CHECKPOINT_DIR) else None
    if found is not None:  # the run's best EMA G by SWD, with the critic of that tick
        tensors, record = found
        g_state = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
        d_state = {k[len("discriminator."):]: v for k, v in tensors.items() if k.startswith("discriminator.")}
        weights = {"generator": "ema, best by SWD", "swd": record.get("swd"), "step": record.get("step"),
                   "images_seen": record.get("images_seen")}
    elif ck.module_state("generator_ema"):
        g_state, d_state = ck.module_state("generator_ema"), ck.module_state("discriminator")
        weights = {"generator": "ema, newest checkpoint"}
    else:  # a run from before the moving average
        g_state, d_state = ck.module_state("generator"), ck.module_state("discriminator")
        weights = {"generator": "raw, newest checkpoint"}
    G = _load(Generator(cfg.generator), g_state, "generator")
    D = _load(Discriminator(cfg.discriminator), d_state, "discriminator")
    training = {"gan": {"weights": weights, "images_seen": ck.state.get("images_seen"),
                        "recipe": {"ema_kimg": cfg.ema_kimg, "diffaugment": cfg.diffaugment,
                                   "instance_noise": cfg.instance_noise, "cpu_bf16": cfg.cpu_bf16, "flip": cfg.flip},"checkpoint": str(Path(path)), "preset": cfg.preset, "data": ck.state.get("data"),
                        "epochs_planned": cfg.epochs, "epoch": ck.state.get("epoch"),
                        "step_in_epoch": ck.state.get("step_in_epoch"), "steps": ck.state.get("step"),
                        "batch_size": cfg.batch_size, "lr": [cfg.lr_g, cfg.lr_d], "betas": [cfg.beta1, cfg.beta2],
                        "val_fraction": cfg.val_fraction, "seed": cfg.seed}}
    return GanSource(G, D, None, cfg.val_fraction, cfg.seed, training, "checkpoint")


def initial_state(path: str, kind: str, cfg_cls: type, expected, flag: str,
                  compatible: Callable[[Any, Any], bool] | None = None) -> dict[str, torch.Tensor]:
    """The weights a training run starts from (`--init-refiner`, `--init-encoder`): the `kind`
    model ("refiner" or "encoder") of a bundle, or of a run's checkpoint of that kind; its config
    (a `cfg_cls`) must equal `expected`, the one to train, or pass compatible(found, expected)
    (the caller then fits the weights to the new shapes). EdgefillError naming `flag` otherwise."""
    if not Path(path).exists():
        raise EdgefillError(f"{flag}: {path} not found")
    if is_bundle(path):
        module = getattr(load_gan_source(path, flag), kind)
        if module is None:
            raise EdgefillError(f"{flag}: bundle {path} has no {kind}")
        found, state = module.cfg, module.state_dict()
    else:
        ck = load_checkpoint(path, kind=kind)
        found, state = from_dict(cfg_cls, ck.config[kind]), ck.module_state(kind)
    if found != expected and not (compatible is not None and compatible(found, expected)):
        raise EdgefillError(f"{flag}: {path}'s {kind} ({found}) is not the one to train ({expected})")
    return {k: torch.as_tensor(v) for k, v in state.items()}
