"""Pieces the CLI command modules share (click only, so `edgefill --help` stays instant)."""
from __future__ import annotations

import json

import click

DEVICE = click.Choice(["auto", "cpu", "cuda"])


def echo_json(obj) -> None:
    """Print a machine-readable result on stdout."""
    click.echo(json.dumps(obj, indent=2))
