"""`edgefill train refiner`: train the refiner on LSGAN completions (needs the `train` extra).

Flags map to edgefill.train.config.RefinerTrainConfig; the loop is edgefill.train.train_refiner."""
from __future__ import annotations

import click

from .common import DEVICE, echo_json


def register(group: click.Group) -> None:
    group.add_command(train_refiner_cmd)


@click.command("refiner")
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
    from ...core.search_config import SearchConfig
    from edgefill.train import config as C
    from edgefill.train.checkpoint import load_checkpoint
    from edgefill.train.train_refiner import train_refiner

    gan_preset = preset or load_checkpoint(gan, kind="gan").config.get("preset", "base")
    cfg = C.RefinerTrainConfig(refiner=C.preset(gan_preset)[2], epochs=epochs, batch_size=batch_size, lr=lr,
                               seed=seed, device=device, completions=completions,
                               search=SearchConfig(steps=search_steps, restarts=search_restarts),
                               search_batch=search_batch, checkpoint_every=checkpoint_every, limit=limit)
    echo_json(train_refiner(cfg, data, gan, out, resume=resume))
