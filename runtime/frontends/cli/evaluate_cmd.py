"""`edgefill evaluate`: metrics of every method on every mask type (runtime/frontends/evaluate/)."""
from __future__ import annotations

import click

from .common import flip_average_option, sample_scale_option


def register(cli: click.Group) -> None:
    @cli.command("evaluate")
    @click.option("--data", required=True, help="Folder of images or .npz with `images` uint8 (N,64,64,3).")
    @click.option("--mask", "mask_spec", default="center", show_default=True,
                  help="Comma-separated mask kinds (center, random-box, pattern, random, half, free-form, ...) "
                       "or mask image paths.")
    @click.option("--bundle", default=None, help="Model bundle (folder or .zip); default: the installed one.")
    @click.option("--limit", default=0, show_default=True, type=click.IntRange(0), help="First N images (0 = all).")
    @click.option("--json", "json_path", default=None, help="Write the results as JSON here.")
    @click.option("--markdown", "markdown_path", default=None, help="Write the markdown table here too.")
    @click.option("--grid", "grid_path", default=None, help="Write an image grid (PNG) here.")
    @click.option("--baseline-bundle", default=None,
                  help="A second bundle whose refiner was trained on Telea's fills (the strong baseline): adds the "
                       "row telea+baseline, its refiner on Telea's fill, and the product's paired difference to it.")
    @click.option("--baselines/--no-baselines", default=True, show_default=True,
                  help="Include the plain OpenCV rows (telea, ns); telea+refiner, ns+refiner stay either way.")
    @click.option("--methods", default=None,
                  help="Comma-separated subset of telea,ns,telea+refiner,ns+refiner,telea+baseline,lsgan,"
                       "lsgan+poisson,lsgan+refiner (default: all, telea+baseline with --baseline-bundle; telea,ns "
                       "alone need no bundle).")
    @click.option("--steps", default=None, type=click.IntRange(1), help="Search steps (default: the bundle's).")
    @click.option("--restarts", default=None, type=click.IntRange(1), help="Restarts (default: the bundle's).")
    @click.option("--seed", default=0, show_default=True, type=int, help="Seeds the masks and the search.")
    @click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Images per search.")
    @click.option("--samples", default=1, show_default=True, type=int,
                  help="K samples per hole of lsgan+refiner (one batched search): best-of-K, mean-of-K and "
                       "diversity before/after the refiner in a second table; with --grid also <grid>_samples.png.")
    @click.option("--sample-spread", default=None, type=click.FloatRange(0),
                  help="With --samples: how far samples 2..K start from the first (default: the bundle's).")
    @click.option("--sample-steps", default=None, type=click.IntRange(1),
                  help="With --samples: search steps of samples 2..K (default: --steps if given, else the bundle's).")
    @click.option("--grid-rows", default=4, show_default=True, type=click.IntRange(1),
                  help="Faces per mask type in the grid.")
    @click.option("--provider", default=None, help="onnxruntime provider (cpu, cuda, tensorrt).")
    @click.option("--backend", default="onnx", show_default=True, type=click.Choice(["onnx", "torch"]))
    @click.option("--steps-curve", "steps_curve_spec", default=None, metavar="S1,S2,...",
                  help="Instead: quality vs search steps (e.g. 0,5,10,20,50,100,200) for each --starts, one mask "
                       "kind, one search per start; writes --json and --plot.")
    @click.option("--starts", default="random,encoder", show_default=True,
                  help="With --steps-curve: the starts to compare (random, encoder).")
    @click.option("--plot", "plot_path", default=None, help="With --steps-curve: the curve picture (.png/.svg/.pdf).")
    @click.option("--init", default="auto", show_default=True, type=click.Choice(["auto", "random", "encoder"]),
                  help="Where the search starts: auto = the bundle's encoder when it has one (the product's default).")
    @sample_scale_option()
    @flip_average_option()
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    def evaluate_cmd(data, mask_spec, bundle, limit, json_path, markdown_path, grid_path, baseline_bundle, baselines,
                     methods, steps, restarts, seed, batch_size, samples, sample_spread, sample_steps, grid_rows,
                     provider, backend, steps_curve_spec, starts, plot_path, init, sample_scale, flip_average,
                     no_progress):
        """PSNR, hole PSNR and SSIM (mean, 95% CI) per mask type and method, reproducibly seeded."""
        from pathlib import Path

        if steps_curve_spec is not None:
            return _steps_curve(data, mask_spec, bundle, limit, json_path, markdown_path, plot_path, seed,
                                batch_size, provider, backend, steps_curve_spec, starts, no_progress)

        from .. import evaluate as E
        from ...atomic import write_json, write_text
        from ...imaging.datasets import load_faces
        from ...errors import EdgefillError
        from ...imaging.images import IMAGE_EXTENSIONS

        if grid_path and Path(grid_path).suffix.lower() not in IMAGE_EXTENSIONS:
            raise EdgefillError(f"--grid must end in one of {', '.join(IMAGE_EXTENSIONS)}: {grid_path}")
        chosen = E.select_methods(methods, baselines, baseline_bundle is not None)
        cfg = E.EvaluateConfig(masks=E.parse_masks(mask_spec), methods=chosen,
                               limit=limit, seed=seed, steps=steps, restarts=restarts, batch_size=batch_size,
                               grid_rows=grid_rows, init=init, samples=samples,
                               sample_spread=sample_spread, sample_steps=sample_steps)
        faces = load_faces(data, limit=limit, progress=not no_progress)
        inpainter = None
        if cfg.needs_bundle:
            from ..inpainter import Inpainter

            inpainter = Inpainter(bundle=bundle, provider=provider, backend=backend, flip_average=flip_average,
                                  sample_scale=sample_scale)
        info = {"data": str(Path(data).resolve()), "data_sha256": faces.sha256(), "data_skipped": faces.skipped}
        if inpainter is not None and not methods and not inpainter.bundle.has_graph("refiner"):
            # the default method list adapts to a bundle without a refiner, and says so
            import dataclasses

            if cfg.samples > 1:
                raise EdgefillError(f"--samples {cfg.samples} measures {E.SAMPLED_METHOD}, and bundle "
                                    f"{inpainter.bundle.root} has no refiner")
            left_out = [m for m in cfg.methods if m in E.REFINER_METHODS]
            cfg = dataclasses.replace(cfg, methods=tuple(m for m in cfg.methods if m not in left_out))
            info["methods_left_out"] = {m: "the bundle has no refiner" for m in left_out}
            click.echo(f"edgefill: notice: the bundle has no refiner; {', '.join(left_out)} left out", err=True)
        baseline = None
        if E.BASELINE_METHOD in cfg.methods:
            from ..inpainter import Inpainter

            baseline = Inpainter(bundle=baseline_bundle, provider=provider, flip_average=flip_average)
        ev = E.evaluate(faces.images, cfg, inpainter, data_info=info, progress=not no_progress, baseline=baseline)
        table = E.markdown_table(ev.report)
        click.echo(table, nl=False)
        if json_path:
            write_json(json_path, ev.report)
        if markdown_path:
            write_text(markdown_path, table)
        if grid_path:
            from ...imaging.images import write_image

            write_image(grid_path, E.grid_image(ev))
            if cfg.samples > 1:
                path = Path(grid_path)
                write_image(path.with_name(f"{path.stem}_samples{path.suffix}"), E.samples_grid_image(ev))


def _steps_curve(data, mask_spec, bundle, limit, json_path, markdown_path, plot_path, seed, batch_size, provider,
                 backend, steps_spec, starts, no_progress) -> None:
    """`evaluate --steps-curve`: runtime.frontends.steps_curve, then table, JSON and plot."""
    from pathlib import Path

    from ...atomic import write_json, write_text
    from ...core.pipeline import Pipeline
    from ...errors import EdgefillError
    from ...imaging import plots
    from ...imaging.datasets import load_faces
    from .. import evaluate as E
    from .. import steps_curve as SC

    masks = E.parse_masks(mask_spec)
    if len(masks) != 1:
        raise EdgefillError("--steps-curve takes one --mask kind")
    if plot_path:
        plots.check_plot_path(plot_path, "--plot")
        plots.pyplot()
    cfg = SC.CurveConfig(steps=SC.parse_steps(steps_spec), starts=E.parse_list(starts), mask=masks[0], limit=limit,
                         batch_size=batch_size, seed=seed)
    faces = load_faces(data, limit=limit, progress=not no_progress)
    pipeline = Pipeline(bundle, provider=provider, backend=backend)
    info = {"data": str(Path(data).resolve()), "data_sha256": faces.sha256()}
    report = SC.steps_curve(faces.images, cfg, pipeline, progress=not no_progress, data_info=info)
    table = SC.curve_table(report)
    click.echo(table, nl=False)
    if json_path:
        write_json(json_path, report)
    if markdown_path:
        write_text(markdown_path, table)
    if plot_path:
        plots.steps_curve_figure(report, plot_path)
