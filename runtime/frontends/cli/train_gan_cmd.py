"""`edgefill train gan`: train the LSGAN generator and critic (needs the `train` extra: torch).

Flags map to edgefill.train.config.GanTrainConfig; the loop is edgefill.train.train_gan."""
from __future__ import annotations

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
    echo_json(train_gan(cfg, data, out, resume=resume))
