"""Pieces the CLI command modules share (click only, so `edgefill --help` stays instant)."""
from __future__ import annotations

import json

import click

DEVICE = click.Choice(["auto", "cpu", "cuda"])


def echo_json(obj) -> None:
    """Print a machine-readable result on stdout."""
    click.echo(json.dumps(obj, indent=2))


def sample_scale_option():
    """--sample-scale as a click decorator; None (not given) keeps the bundle's setting."""
    return click.option("--sample-scale", type=click.FloatRange(min=0), default=None,
                        help="How far samples 2..K sit from sample 1, per unit of the refiner's uncertainty "
                             "about the face (default: the bundle's; 0: as the samples refiner leaves them).")


def flip_average_option(default: str = "the bundle's setting, on"):
    """--flip-average/--no-flip-average as a click decorator; None (not given) keeps the default,
    which the help text names."""
    return click.option("--flip-average/--no-flip-average", "flip_average", default=None,
                        help=f"Average the refiner over the face and its mirror image (default: {default}): "
                             "one more refiner pass in the same batch.")
