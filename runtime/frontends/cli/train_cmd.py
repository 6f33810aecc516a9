"""`edgefill train`: the group of training commands (gan, refiner, tune-search), one module each.

Training needs the `train` extra (torch, onnx); every subcommand imports it inside its body, so
`edgefill --help` and the runtime stay torch-free.
"""
from __future__ import annotations

import importlib

import click

SUBCOMMANDS: tuple[str, ...] = ("train_gan_cmd", "train_refiner_cmd", "train_encoder_cmd", "tune_search_cmd")


@click.group("train")
def train() -> None:
    """Train the LSGAN (generator + critic), the refiner or the search encoder (needs the `train` extra: torch)."""


for _name in SUBCOMMANDS:
    importlib.import_module(f"{__package__}.{_name}").register(train)


def register(cli: click.Group) -> None:
    cli.add_command(train)
