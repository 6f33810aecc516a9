"""`edgefill train refiner`: train the refiner on LSGAN completions (needs the `train` extra).

Flags map to edgefill.train.config.RefinerTrainConfig; the loop is edgefill.train.train_refiner."""
from __future__ import annotations

import click

from .common import DEVICE, echo_json


def register(group: click.Group) -> None:
    group.add_command(train_refiner_cmd)


@click.command("refiner")
@click.option("--data", required=True, help="Folder of images or .npz (the GAN's training data).")
@click.option("--gan", required=True,
              help="A bundle (completions by its own pipeline: encoder start, steps, blend) or a GAN run folder "
                   "(the torch search from random starts).")
@click.option("--out", required=True, help="Output folder (completions cache, checkpoint, pictures).")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--completions", default=4096, show_default=True, type=click.IntRange(0),
              help="Training faces to complete (0: all).")
@click.option("--masks-per-face", default=1, show_default=True, type=click.IntRange(1),
              help="Random masks (of every kind) per training face.")
@click.option("--loss", "loss_kind", default="mse", show_default=True, type=click.Choice(["mse", "l1"]),
              help="Pixel loss over the hole of M*y + (1-M)*R(x).")
@click.option("--ssim-weight", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Add this times (1 - SSIM) of the whole output.")
@click.option("--arch", default=None, type=click.Choice(["unet", "autoencoder"]),
              help="Refiner architecture (default: the preset's, a U-Net).")
@click.option("--width", default=None, type=click.IntRange(1), help="Refiner width r (default: the preset's).")
@click.option("--no-mask-channel", is_flag=True, help="Do not give the refiner the hole as a fourth channel.")
@click.option("--blocks", default=0, show_default=True, type=click.IntRange(0),
              help="Residual blocks at each U-Net decoder scale (4x4 to 32x32); with --init-refiner from a "
                   "refiner with fewer, the new ones start as the identity.")
@click.option("--telea-channels", is_flag=True,
              help="Also give the refiner OpenCV Telea's fill of the hole (3 more channels): it sees the search's "
                   "face and the diffusion fill side by side.")
@click.option("--search-steps", default=100, show_default=True, type=click.IntRange(1),
              help="A GAN run's search steps per completion (a bundle uses its own defaults).")
@click.option("--search-restarts", default=1, show_default=True, type=click.IntRange(1))
@click.option("--search-batch", default=256, show_default=True, type=click.IntRange(1),
              help="Faces completed per batch (and per cached chunk).")
@click.option("--config", "preset", default=None, type=click.Choice(["tiny", "base", "paper"]),
              help="Refiner preset (default: the GAN run's preset; base for a bundle).")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit", default=0, show_default=True, type=click.IntRange(0))
@click.option("--checkpoint-every", default=200, show_default=True, type=click.IntRange(0))
@click.option("--resume", is_flag=True, help="Continue the run in --out; reuses cached completions.")
@click.option("--completions-dir", default=None,
              help="The completions cache (default OUT/completions); runs with the same source, faces and seed share it.")
@click.option("--completions-only", is_flag=True, help="Make the completions cache and stop.")
@click.option("--fill", default="search", show_default=True, type=click.Choice(["search", "telea", "ns"]),
              help="What the refiner learns to clean: the --gan source's completions, or OpenCV's fill "
                   "(the no-GAN baseline; --gan then only gives the hold-out split).")
@click.option("--samples-per-mask", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Completions per mask from different starts (a bundle's --samples); must divide --batch-size.")
@click.option("--keep-weight", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Weight of the hole MSE between each output's and its completion's deviation from the mean "
                   "of the mask's samples (keeps the search's differences; needs --samples-per-mask > 1).")
@click.option("--best-of", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of each mask's loss on its best sample alone (relaxed winner-takes-all, needs "
                   "--samples-per-mask > 1): the samples learn to be different guesses; 0 = each sample's own loss.")
@click.option("--photometric", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Lighting augmentation strength: each training problem's completion and truth get the same "
                   "random gamma, contrast, brightness and colour cast (1: brightness x0.78-1.28, gamma "
                   "0.74-1.35), so the refiner reads the hole's lighting from the known pixels.")
@click.option("--init-refiner", default=None,
              help="Start from this bundle's (or refiner run's) refiner weights instead of random ones (fine-tuning). "
                   "With --telea-channels it may be a refiner without them: they start at zero weight; "
                   "with --blocks, one with fewer blocks.")
def train_refiner_cmd(data, gan, out, epochs, batch_size, lr, completions, masks_per_face, loss_kind, ssim_weight,
                      arch, width, blocks, no_mask_channel, telea_channels, search_steps, search_restarts, search_batch, preset, device,
                      seed, limit, checkpoint_every, resume, completions_dir, completions_only, fill,
                      samples_per_mask, keep_weight, best_of, photometric, init_refiner):
    """Train the refiner on the completions it will see at run time."""
    from dataclasses import replace

    from ...core.search_config import SearchConfig
    from edgefill.train import config as C
    from edgefill.train.checkpoint import load_checkpoint
    from edgefill.train.gan_source import is_bundle
    from edgefill.train.train_refiner import train_refiner

    if preset is None:
        preset = "base" if is_bundle(gan) else load_checkpoint(gan, kind="gan").config.get("preset", "base")
    refiner = C.preset(preset)[2]
    refiner = replace(refiner, arch=arch or refiner.arch, width=width or refiner.width,
                      mask_channel=refiner.mask_channel and not no_mask_channel,
                      telea_channels=telea_channels, blocks=blocks)
    cfg = C.RefinerTrainConfig(refiner=refiner, epochs=epochs, batch_size=batch_size, lr=lr,
                               seed=seed, device=device, completions=completions, masks_per_face=masks_per_face,
                               loss=loss_kind, ssim_weight=ssim_weight, fill=fill, samples=samples_per_mask,
                               keep_weight=keep_weight, best_of=best_of, photometric=photometric,
                               search=SearchConfig(steps=search_steps, restarts=search_restarts),
                               search_batch=search_batch, checkpoint_every=checkpoint_every, limit=limit)
    echo_json(train_refiner(cfg, data, gan, out, resume=resume, completions_dir=completions_dir,
                            completions_only=completions_only, init=init_refiner))
