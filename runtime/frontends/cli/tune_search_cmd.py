"""`edgefill train tune-search`: choose search defaults on the GAN run's hold-out, never on test data."""
from __future__ import annotations

import click

from .common import echo_json


def register(group: click.Group) -> None:
    group.add_command(tune_search_cmd)


@click.command("tune-search")
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
    from ..evaluate import parse_masks
    from edgefill.train.tune_search import tune

    report = tune(bundle, data, gan, out, masks=parse_masks(masks), limit=limit, steps=steps, restarts=restarts)
    echo_json({"chosen": report["chosen"], "chosen_scores": report["chosen_scores"]})
