"""`edgefill train encoder`: train the search's start network (needs the `train` extra: torch).

Flags map to edgefill.train.config.EncoderTrainConfig; the loop is edgefill.train.train_encoder."""
from __future__ import annotations

import click

from .common import DEVICE, echo_json


def register(group: click.Group) -> None:
    group.add_command(train_encoder_cmd)


@click.command("encoder")
@click.option("--data", required=True, help="Folder of images or .npz (the GAN's training data).")
@click.option("--gan", required=True, help="GAN run folder, or a bundle (its G and D are used, frozen).")
@click.option("--out", required=True, help="Output folder (checkpoint, pictures, loss curve, log).")
@click.option("--synthetic-steps", default=1500, show_default=True, type=click.IntRange(0),
              help="Steps on G's own samples (z known).")
@click.option("--real-steps", default=1500, show_default=True, type=click.IntRange(0),
              help="Steps on real faces (contextual + prior loss through G).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--width", default=32, show_default=True, type=click.IntRange(1), help="Encoder width e.")
@click.option("--lam", default=0.003, show_default=True, type=click.FloatRange(0), help="Prior weight (real phase).")
@click.option("--hole-weight", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Real phase: weight of G(E(x))'s L1 against the truth in the hole (0: the search's loss only).")
@click.option("--init-encoder", default=None,
              help="Start from this bundle's encoder or encoder run's weights (e.g. with --synthetic-steps 0).")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit", default=0, show_default=True, type=click.IntRange(0), help="Use the first N images.")
@click.option("--checkpoint-every", default=200, show_default=True, type=click.IntRange(0))
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
def train_encoder_cmd(data, gan, out, synthetic_steps, real_steps, batch_size, lr, width, lam, hole_weight,
                      init_encoder, device, seed, limit, checkpoint_every, resume):
    """Train the encoder that starts the latent search near the answer."""
    from edgefill.runtime.errors import EdgefillError
    from edgefill.train import config as C
    from edgefill.train.train_encoder import train_encoder

    if synthetic_steps + real_steps < 1:
        raise EdgefillError("--synthetic-steps plus --real-steps must be at least 1")
    cfg = C.EncoderTrainConfig(encoder=C.EncoderConfig(width=width), synthetic_steps=synthetic_steps,
                               real_steps=real_steps, batch_size=batch_size, lr=lr, lam=lam,
                               hole_weight=hole_weight, device=device,
                               seed=seed, limit=limit, checkpoint_every=checkpoint_every)
    echo_json(train_encoder(cfg, data, gan, out, resume=resume, init=init_encoder))
