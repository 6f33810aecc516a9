"""`edgefill inpaint IMAGE... --mask KIND|PATH --out PATH`: fill holes in images with the bundle.

Thin: parse and check everything first (inputs, masks, box, output paths), then batch the
64x64 problems through runtime.inpainter.Inpainter, write every output atomically, and print
a JSON summary on stdout (progress and notices go to stderr). Only click is imported at module
level, so `edgefill --help` stays instant.
"""
from __future__ import annotations

import click

from .common import flip_average_option, sample_scale_option

PROVIDER_CHOICES = ("auto", "cpu", "cuda", "tensorrt")
MAX_SAMPLES = 16  # runtime.frontends.inpainter.MAX_SAMPLES (not imported here: --help stays instant)
SIDE_SUFFIX = "_side-by-side.png"


def register(cli: click.Group) -> None:
    cli.add_command(inpaint_cmd)


@click.command("inpaint")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--mask", "mask_spec", required=True,
              help="Mask kind (center, random-box, pattern, random, half, half-left, half-right, free-form) or a "
                   "mask image (white = fill) of the input's size or aspect ratio.")
@click.option("--out", required=True, help="Output image file (one input) or folder (written as <name>.png).")
@click.option("--bundle", default=None, help="Bundle folder or .zip (default: $EDGEFILL_BUNDLE or the shipped one).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Search steps (default: the bundle's).")
@click.option("--restarts", type=click.IntRange(1), default=None, help="Random starts per image (default: the bundle's).")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default="auto", show_default=True,
              help="onnxruntime execution provider; auto = TensorRT, CUDA, CPU, the first that loads.")
@click.option("--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True,
              help="Search with the bundle's ONNX step graph, or with torch autograd (needs torch).")
@click.option("--blend", type=click.Choice(["paste", "poisson"]), default=None,
              help="How the generated image enters the hole (default: the bundle's).")
@click.option("--no-refine", is_flag=True, help="Skip the refiner (on by default when the bundle has one).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random starts and random masks; image i uses seed + i.")
@click.option("--box", default=None, help="Face region x,y,w,h to crop (default: the whole image, resized to 64x64).")
@click.option("--time-budget-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop each search batch after this many milliseconds (every image of a batch searches together).")
@click.option("--lam", type=click.FloatRange(min=0), default=None, help="Weight of the prior loss.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Adam learning rate on z.")
@click.option("--prior", type=click.Choice(["lsgan", "log"]), default=None,
              help="Prior loss form: lsgan (D(G(z))-1)^2 or log log(1-sigmoid(D(G(z)))).")
@click.option("--patience", type=click.IntRange(0), default=None,
              help="Stop when no image's best loss improved for this many steps (0: never; default: the bundle's).")
@click.option("--side-by-side", "side_by_side", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Also write input | mask | search | refined (64x64, enlarged). Alone: beside each output; "
                   "PATH: a file (one input) or a folder. Alone, put it after the images (it takes a value).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True,
              help="Images per search batch (each with --restarts starts).")
@click.option("--threads", type=click.IntRange(1), default=None, help="onnxruntime threads (default: physical cores).")
@click.option("--init", type=click.Choice(["auto", "random", "encoder"]), default="auto", show_default=True,
              help="Where the search starts: auto = the bundle's encoder when it has one (its own search defaults), "
                   "else random; encoder = restart 0 from the encoder, other restarts random.")
@click.option("--server", default=None, metavar="URL",
              help="Compute on a running `edgefill serve` (e.g. http://127.0.0.1:8000) instead of in-process; "
                   "same outputs and JSON summary.")
@click.option("--samples", type=click.IntRange(1, MAX_SAMPLES), default=1, show_default=True,
              help="Different fills per hole, best search loss first, searched as one batch: <name>.1.png .. "
                   "<name>.K.png and a contact sheet <name>.samples.png instead of <name>.png (1: the plain run).")
@click.option("--sample-spread", type=click.FloatRange(min=0), default=None,
              help="How far samples 2..K start from the first (z + spread * N(0, I); default: the bundle's).")
@click.option("--sample-steps", type=click.IntRange(min=1), default=None,
              help="Search steps of samples 2..K (default: --steps if given, else the bundle's).")
@sample_scale_option()
@flip_average_option()
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def inpaint_cmd(images, mask_spec, out, bundle, steps, restarts, provider, backend, blend, no_refine, seed, box,
                time_budget_ms, lam, lr, prior, patience, side_by_side, batch_size, threads, init, server, samples,
                sample_spread, sample_steps, sample_scale, flip_average, no_progress):
    """Fill the --mask holes of IMAGE... with latent search (+ refiner) and write them to --out."""
    import json

    from ..inpaint_files import InpaintJob, run_inpaint

    job = InpaintJob(inputs=tuple(images), mask=mask_spec, out=out, bundle=bundle, steps=steps, restarts=restarts,
                     provider=None if provider == "auto" else provider, backend=backend, blend=blend,
                     refine=not no_refine, seed=seed, box=box, time_budget_ms=time_budget_ms, lam=lam, lr=lr,
                     prior=prior, patience=patience, side_by_side=side_by_side, batch_size=batch_size,
                     threads=threads, progress=not no_progress, init=init, server=server,
                     samples=samples, sample_spread=sample_spread, sample_steps=sample_steps,
                     flip_average=flip_average, sample_scale=sample_scale)
    click.echo(json.dumps(run_inpaint(job), indent=2))
