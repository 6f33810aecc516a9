"""The `edgefill` command line (click). Thin: each command builds a config and calls a plain
function; heavy imports live inside the command bodies so `edgefill --help` is instant.

Errors: bad input prints one line `edgefill: error: ...` to stderr and exits 2; no tracebacks.
"""
from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import EdgefillError


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefill")
def cli() -> None:
    """edgefill: LSGAN latent-search face inpainting, exported to ONNX, run without torch."""


@cli.group()
def train() -> None:
    """Train the LSGAN (generator + critic) or the refiner (needs the `train` extra: torch)."""


DEVICE = click.Choice(["auto", "cpu", "cuda"])


@train.command("gan")
@click.option("--data", required=True, help="Folder of images or .npz with `images` uint8 (N,64,64,3).")
@click.option("--out", required=True, help="Output folder (checkpoint, sample grids, loss curve).")
@click.option("--config", "preset", default="base", type=click.Choice(["tiny", "base", "paper"]), show_default=True)
@click.option("--epochs", default=25, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-4, show_default=True, type=float, help="Adam learning rate of the generator.")
@click.option("--lr-d", default=1e-4, show_default=True, type=float, help="Adam learning rate of the critic.")
@click.option("--instance-noise", default=0.1, show_default=True, type=click.FloatRange(0),
              help="Std of noise on the critic's inputs, annealed linearly to 0 over --noise-steps.")
@click.option("--noise-steps", default=2500, show_default=True, type=click.IntRange(1))
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--val-fraction", default=0.0, show_default=True, type=float, help="Hold out this fraction.")
@click.option("--dropout", default=0.0, show_default=True, type=float, help="Generator dropout.")
@click.option("--d-width", default=None, type=click.IntRange(1),
              help="Critic width d (default: the preset's); a narrower critic balances a strong one.")
@click.option("--no-flip", is_flag=True, help="Disable horizontal-flip augmentation.")
@click.option("--no-amp", is_flag=True, help="Disable mixed precision on CUDA.")
@click.option("--limit", default=0, show_default=True, type=click.IntRange(0), help="Use the first N images.")
@click.option("--checkpoint-every", default=200, show_default=True, type=click.IntRange(0))
@click.option("--resume", is_flag=True, help="Continue the run in --out (to --epochs in total).")
def train_gan_cmd(data, out, preset, epochs, batch_size, lr, lr_d, instance_noise, noise_steps, device, seed, val_fraction,
                  dropout, d_width, no_flip, no_amp, limit, checkpoint_every, resume):
    """Train the LSGAN generator and critic."""
    from edgefill.train import config as C
    from edgefill.train.train_gan import train_gan

    g, d, _ = C.preset(preset)
    d = C.DiscriminatorConfig(width=d_width) if d_width else d
    cfg = C.GanTrainConfig(preset=preset, generator=C.GeneratorConfig(**{**C.to_dict(g), "dropout": dropout}),
                           discriminator=d, epochs=epochs, batch_size=batch_size, lr_g=lr, lr_d=lr_d,
                           instance_noise=instance_noise, instance_noise_steps=noise_steps,
                           flip=not no_flip, val_fraction=val_fraction, seed=seed, device=device, amp=not no_amp,
                           checkpoint_every=checkpoint_every, limit=limit)
    _echo_json(train_gan(cfg, data, out, resume=resume))


@train.command("refiner")
@click.option("--data", required=True, help="Folder of images or .npz (the GAN's training data).")
@click.option("--gan", required=True, help="GAN run folder (from `edgefill train gan`).")
@click.option("--out", required=True, help="Output folder (completions cache, checkpoint, pictures).")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--completions", default=4096, show_default=True, type=click.IntRange(0),
              help="Training images to complete with the search (0: all).")
@click.option("--search-steps", default=100, show_default=True, type=click.IntRange(1),
              help="Search steps per completion (fewer than at inference to keep training affordable).")
@click.option("--search-restarts", default=1, show_default=True, type=click.IntRange(1))
@click.option("--search-batch", default=256, show_default=True, type=click.IntRange(1))
@click.option("--config", "preset", default=None, type=click.Choice(["tiny", "base", "paper"]),
              help="Refiner width preset (default: the GAN's preset).")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit", default=0, show_default=True, type=click.IntRange(0))
@click.option("--checkpoint-every", default=200, show_default=True, type=click.IntRange(0))
@click.option("--resume", is_flag=True, help="Continue the run in --out; reuses cached completions.")
def train_refiner_cmd(data, gan, out, epochs, batch_size, lr, completions, search_steps, search_restarts,
                      search_batch, preset, device, seed, limit, checkpoint_every, resume):
    """Train the refiner autoencoder on LSGAN completions."""
    from edgefill.runtime.search_config import SearchConfig
    from edgefill.train import config as C
    from edgefill.train.checkpoint import load_checkpoint
    from edgefill.train.train_refiner import train_refiner

    gan_preset = preset or load_checkpoint(gan, kind="gan").config.get("preset", "base")
    cfg = C.RefinerTrainConfig(refiner=C.preset(gan_preset)[2], epochs=epochs, batch_size=batch_size, lr=lr,
                               seed=seed, device=device, completions=completions,
                               search=SearchConfig(steps=search_steps, restarts=search_restarts),
                               search_batch=search_batch, checkpoint_every=checkpoint_every, limit=limit)
    _echo_json(train_refiner(cfg, data, gan, out, resume=resume))


@train.command("tune-search")
@click.option("--bundle", required=True, help="Bundle exported from the GAN run (refiner not needed).")
@click.option("--data", required=True, help="The GAN's training data (its validation hold-out is used).")
@click.option("--gan", required=True, help="GAN run folder (trained with --val-fraction > 0).")
@click.option("--out", required=True, help="JSON report: every candidate and the chosen defaults.")
@click.option("--masks", default="center,pattern", show_default=True)
@click.option("--limit", default=64, show_default=True, type=click.IntRange(1), help="Validation images used.")
@click.option("--steps", default=None, type=click.IntRange(1), help="Search steps (default: the bundle's).")
@click.option("--restarts", default=None, type=click.IntRange(1))
def tune_search_cmd(bundle, data, gan, out, masks, limit, steps, restarts):
    """Choose search defaults (lr, lambda, prior form, blending) on held-out training images."""
    from edgefill.runtime.evaluate import parse_masks
    from edgefill.train.tune_search import tune

    report = tune(bundle, data, gan, out, masks=parse_masks(masks), limit=limit, steps=steps, restarts=restarts)
    _echo_json({"chosen": report["chosen"], "chosen_scores": report["chosen_scores"]})


# Each user-facing command lives in its own module under runtime/commands/ and exposes
# `register(cli)`; the modules import only click at module level, so --help stays instant.
COMMAND_MODULES: tuple[str, ...] = ("evaluate_cmd", "inpaint_cmd", "profile_cmd", "export_cmd")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"edgefill.runtime.commands.{name}").register(cli)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning expected failures into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="edgefill", standalone_mode=False)
    except EdgefillError as exc:
        click.echo(f"edgefill: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("edgefill: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"edgefill: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("edgefill: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
