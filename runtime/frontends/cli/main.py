"""The `edgefill` command line (click): the group, the command registry and the entry point.

Thin: each command builds a config and calls a plain function; heavy imports live inside the
command bodies so `edgefill --help` is instant.

Errors: bad input prints one line `edgefill: error: ...` to stderr and exits 2; no tracebacks.
"""
from __future__ import annotations

import sys

import click

from ... import __version__
from ...errors import EdgefillError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefill")
def cli() -> None:
    """edgefill: LSGAN latent-search face inpainting, exported to ONNX, run without torch."""


# Each command lives in its own module beside this one and exposes `register(cli)`; the modules
# import only click at module level, so --help stays instant.
COMMAND_MODULES: tuple[str, ...] = ("inpaint_cmd", "evaluate_cmd", "profile_cmd", "export_cmd", "serve_cmd", "video_cmd", "train_cmd")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(cli)


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
