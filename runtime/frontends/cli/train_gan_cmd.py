"""`edgefill train gan`: train the LSGAN generator and critic (needs the `train` extra: torch).

Flags map to edgefill.train.config.GanTrainConfig; the loop is edgefill.train.train_gan."""
from __future__ import annotations

import sys

import click

from .common import DEVICE, echo_json


def register(group: click.Group) -> None:
    group.add_command(train_gan_cmd)


@click.command("gan")
@click.option("--data", required=True, help="Folder of images or .npz with `images` uint8 (N,64,64,3).")
@click.option("--out", required=True, help="Output folder (checkpoint, sample grids, loss curve).")
@click.option("--config", "preset", default="base", type=click.Choice(["tiny", "base", "paper"]), show_default=True)
@click.option("--epochs", default=25, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=None, type=click.FloatRange(0, min_open=True),
              help="Adam learning rate of the generator [default: 2e-4; with --resume: the run's own unless given, "
                   "so a resumed run can go on at a lower rate].")
@click.option("--lr-d", default=None, type=click.FloatRange(0, min_open=True),
              help="Adam learning rate of the critic [default: 1e-4; with --resume: as --lr].")
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
@click.option("--ema-kimg", default=None, type=click.FloatRange(0),
              help="Half-life of G's moving average (the shipped G), in thousands of images (0: no averaging) "
                   "[default: 10; with --resume: as --lr].")
@click.option("--diffaugment", default=None,
              help="DiffAugment policy on everything the critic sees: a subset of color,translation,cutout "
                   "(empty string: off) [default: color,translation,cutout; with --resume: as --lr, so a later "
                   "phase can drop an augmentation].")
@click.option("--bf16/--no-bf16", "cpu_bf16", default=None,
              help="bf16 autocast on CPU (default: on; with --resume: the run's own setting unless given). "
                   "Fast only where the CPU has bf16 instructions (AVX512-BF16/AMX): elsewhere it is emulated, "
                   "about 30x slower than fp32.")
@click.option("--checkpoint-minutes", default=5.0, show_default=True, type=click.FloatRange(0),
              help="Wall time between ticks: checkpoint, log line, SWD, sample grid (0: by steps only).")
@click.option("--checkpoint-every", default=0, show_default=True, type=click.IntRange(0),
              help="Also tick every N steps (0: by time only).")
@click.option("--swd-images", default=2048, show_default=True, type=click.IntRange(0),
              help="EMA-G samples and real faces compared by SWD at each tick (0: none).")
@click.option("--portable", default=None, help="Also keep the newest resume state in this one file "
              "(rewritten atomically each tick); --resume continues from it when the run folder lacks a newer one.")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="torch CPU threads (0: torch's default). On a busy 2-core machine 1 thread was faster.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (or from --portable) to --epochs in total.")
def train_gan_cmd(data, out, preset, epochs, batch_size, lr, lr_d, instance_noise, noise_steps, device, seed, val_fraction,
                  dropout, d_width, no_flip, no_amp, limit, ema_kimg, diffaugment, cpu_bf16, checkpoint_minutes,
                  checkpoint_every, swd_images, portable, threads, resume):
    """Train the LSGAN generator and critic."""
    from edgefill.train import config as C
    import torch

    from edgefill.train.train_gan import train_gan

    if threads:
        torch.set_num_threads(threads)

    g, d, _ = C.preset(preset)
    d = C.DiscriminatorConfig(width=d_width) if d_width else d
    cfg = C.GanTrainConfig(preset=preset, generator=C.GeneratorConfig(**{**C.to_dict(g), "dropout": dropout}),
                           discriminator=d, epochs=epochs, batch_size=batch_size,
                           lr_g=C.GanTrainConfig.lr_g if lr is None else lr,
                           lr_d=C.GanTrainConfig.lr_d if lr_d is None else lr_d,
                           instance_noise=instance_noise, instance_noise_steps=noise_steps,
                           flip=not no_flip, val_fraction=val_fraction, seed=seed, device=device, amp=not no_amp,
                           checkpoint_every=checkpoint_every, limit=limit,
                           ema_kimg=C.GanTrainConfig.ema_kimg if ema_kimg is None else ema_kimg,
                           diffaugment=C.GanTrainConfig.diffaugment if diffaugment is None else diffaugment,
                           cpu_bf16=True if cpu_bf16 is None else cpu_bf16,
                           checkpoint_minutes=checkpoint_minutes,
                           swd_images=swd_images)
    given = {"cpu_bf16": cpu_bf16, "lr_g": lr, "lr_d": lr_d, "ema_kimg": ema_kimg,
             "diffaugment": diffaugment}
    summary = train_gan(cfg, data, out, resume=resume, progress=sys.stderr.isatty(), portable=portable,
                        resume_overrides=tuple(name for name, value in given.items() if value is not None))
    if summary["stopped"]:
        click.echo(f"stopped by {summary['stopped']} at step {summary['steps']} ({summary['images_seen']} images "
                   f"seen); checkpoint written to {summary['out']}; continue with --resume")
    else:
        echo_json(summary)
