"""`edgefill export`: checkpoint(s) -> a validated model bundle (see edgefill.export.bundle_writer).

Needs the `train` extra (torch, onnx); those imports happen inside the command body.
"""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("export")
    @click.option("--checkpoint", required=True,
                  help="GAN run folder (or its checkpoint/), or an existing bundle whose G, D and refiner to re-export.")
    @click.option("--refiner", default=None, help="Refiner run folder or checkpoint/ folder (optional).")
    @click.option("--encoder", default=None, help="Encoder run folder (`edgefill train encoder`; optional).")
    @click.option("--encoder-steps", default=None, type=click.IntRange(1),
                  help="Search default for an encoder start: Adam steps (default: the random start's).")
    @click.option("--encoder-restarts", default=None, type=click.IntRange(1),
                  help="Search default for an encoder start: restarts (encoder z + random ones).")
    @click.option("--out", required=True, help="Bundle folder to write (replaced only if it is a bundle).")
    @click.option("--fp16", is_flag=True, help="Store weights in float16 (compute and graph I/O stay float32).")
    @click.option("--validate/--no-validate", default=True, show_default=True,
                  help="Check every graph against torch; a failure writes nothing.")
    @click.option("--steps", default=None, type=click.IntRange(1), help="Search default: Adam steps.")
    @click.option("--restarts", default=None, type=click.IntRange(1), help="Search default: restarts per image.")
    @click.option("--lam", default=None, type=float, help="Search default: prior weight lambda.")
    @click.option("--lr", default=None, type=float, help="Search default: Adam learning rate.")
    @click.option("--prior", default=None, type=click.Choice(["lsgan", "log"]), help="Search default: prior form.")
    @click.option("--blend", default=None, type=click.Choice(["paste", "poisson"]), help="Search default: blending.")
    @click.option("--json", "json_path", default=None, help="Write the export summary (sizes, validation) as JSON.")
    @click.option("--quiet", is_flag=True, help="Print only the table and the result line.")
    def export_cmd(checkpoint, refiner, encoder, encoder_steps, encoder_restarts, out, fp16, validate, steps, restarts, lam, lr, prior, blend, json_path, quiet):
        """Export generator, critic, refiner, encoder and the latent-search step graph to an ONNX bundle."""
        from ...errors import EdgefillError
        from ...core.search_config import SearchConfig

        try:
            from edgefill.export.bundle_writer import ValidationFailed, export_bundle
        except ImportError as exc:
            raise EdgefillError(f"export needs the `train` extra (torch, onnx): {exc}") from None
        from ...atomic import write_json

        search = SearchConfig().replace(steps=steps, restarts=restarts, lam=lam, lr=lr, prior=prior, blend=blend)
        try:
            summary = export_bundle(checkpoint, out, refiner=refiner, validate=validate, progress=not quiet,
                                    fp16=fp16, search=search, say=click.echo, encoder=encoder,
                                    encoder_search={"steps": encoder_steps, "restarts": encoder_restarts})
        except ValidationFailed as exc:
            click.echo(exc.table)
            raise
        if summary["table"]:
            click.echo(summary["table"])
        if json_path:
            write_json(json_path, {k: v for k, v in summary.items() if k not in ("manifest", "table")})
        sizes = ", ".join(f"{n} {b / 1e6:.2f} MB" for n, b in summary["sizes"].items())
        timing = summary["timing"]
        click.echo(f"bundle {summary['bundle']} ({summary['precision']}, {summary['total_bytes'] / 1e6:.2f} MB: "
                   f"{sizes})" + (f"; validated, {len(summary['validation'])} checks passed" if validate
                                  else "; NOT validated"))
        if timing:
            click.echo(f"search step, batch {timing['batch']}: onnxruntime {timing['onnxruntime_ms_per_step']:.2f} ms, "
                       f"torch {timing['torch_ms_per_step']:.2f} ms")
