"""`edgefill export`: checkpoint(s) -> a validated model bundle (see edgefill.export.bundle_writer),
and `edgefill export triton`: a bundle -> a Triton model repository (runtime.frontends.serve).

The bundle export needs the `train` extra (torch, onnx); those imports happen inside the command
body. `export` is a group so that `export triton` can live under it; without a subcommand it
exports a bundle, so `edgefill export --checkpoint ... --out ...` works as before.
"""
from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.group("export", invoke_without_command=True)
    @click.option("--checkpoint", default=None,
                  help="GAN run folder (or its checkpoint/), or an existing bundle whose G, D and refiner to re-export.")
    @click.option("--refiner", default=None, help="Refiner run folder or checkpoint/ folder, or a bundle whose refiner to take (optional).")
    @click.option("--average-refiner", multiple=True,
                  help="A refiner run or bundle of the same architecture whose weights are averaged with the "
                       "refiner's (repeatable; e.g. a later fine-tune of it: no cost at run time).")
    @click.option("--samples-refiner", default=None,
                  help="Refiner run trained on K samples per mask (`train refiner --samples-per-mask K "
                       "--best-of B` or `--keep-weight W`), or a bundle whose samples refiner to take (optional: "
                       "a bundle source keeps its own): it refines K > 1 samples per hole, the refiner refines one.")
    @click.option("--encoder", default=None,
                  help="Encoder run folder (`edgefill train encoder`; optional: a bundle source keeps its own).")
    @click.option("--encoder-steps", default=None, type=click.IntRange(1),
                  help="Search default for an encoder start: Adam steps (default: the random start's).")
    @click.option("--encoder-restarts", default=None, type=click.IntRange(1),
                  help="Search default for an encoder start: restarts (encoder z + random ones).")
    @click.option("--detector", default=None,
                  help="MediaPipe's face_detection_short_range.tflite (or the mediapipe wheel that holds it): "
                       "converted to ONNX, validated against LiteRT, "
                       "shipped as the bundle's face detector; or a bundle folder whose detector is copied as it is "
                       "(a bundle source keeps its own).")
    @click.option("--detector-faces", default=None,
                  help="train.npz: the alignment template is the detector's mean keypoints over its faces.")
    @click.option("--out", default=None, help="Bundle folder to write (replaced only if it is a bundle).")
    @click.option("--fp16", is_flag=True, help="Store weights in float16 (compute and graph I/O stay float32).")
    @click.option("--int8", "int8", default=None, metavar="GRAPHS",
                  help="Quantize these graphs to int8 (refiner: its Conv layers, static QDQ calibrated on "
                       "--int8-faces); the export fails if hole PSNR on the train hold-out drops by more than 0.2 dB.")
    @click.option("--int8-faces", default=None,
                  help="train.npz: --int8's calibration faces and its hold-out check (never test.npz).")
    @click.option("--validate/--no-validate", default=True, show_default=True,
                  help="Check every graph against torch; a failure writes nothing.")
    @click.option("--steps", default=None, type=click.IntRange(1),
                  help="Search default: Adam steps (the search defaults not given are a bundle source's own, "
                       "else the built-in ones).")
    @click.option("--restarts", default=None, type=click.IntRange(1), help="Search default: restarts per image.")
    @click.option("--lam", default=None, type=float, help="Search default: prior weight lambda.")
    @click.option("--lr", default=None, type=float, help="Search default: Adam learning rate.")
    @click.option("--prior", default=None, type=click.Choice(["lsgan", "log"]), help="Search default: prior form.")
    @click.option("--blend", default=None, type=click.Choice(["paste", "poisson"]), help="Search default: blending.")
    @click.option("--sample-spread", default=None, type=click.FloatRange(0),
                  help="Search default for K samples: std of the noise added to the start of samples 2..K.")
    @click.option("--sample-steps", default=None, type=click.IntRange(1),
                  help="Search default for K samples: Adam steps of samples 2..K (sample 1 is the single output).")
    @click.option("--json", "json_path", default=None, help="Write the export summary (sizes, validation) as JSON.")
    @click.option("--quiet", is_flag=True, help="Print only the table and the result line.")
    @click.pass_context
    def export_cmd(ctx, checkpoint, refiner, average_refiner, samples_refiner, encoder, encoder_steps, encoder_restarts, detector,
                   detector_faces, out, fp16, int8, int8_faces, validate, steps, restarts, lam, lr, prior, blend,
                   sample_spread, sample_steps, json_path, quiet):
        """Export generator, critic, refiner, encoder and the latent-search step graph to an ONNX bundle
        (or, with `export triton`, a bundle to a Triton model repository)."""
        if ctx.invoked_subcommand is not None:
            return
        for flag, value in (("--checkpoint", checkpoint), ("--out", out)):
            if value is None:
                raise click.UsageError(f"Missing option '{flag}' (or use `edgefill export triton`).")
        from ...errors import EdgefillError

        if int8:  # checked before torch is imported: a bad request fails at once
            from edgefill.export.quantize import parse_graphs

            parse_graphs(int8)
            if int8_faces is None:
                raise EdgefillError("--int8 needs --int8-faces (train.npz: calibration and the quality check use it)")
        try:
            from edgefill.export.bundle_writer import ValidationFailed, export_bundle
        except ImportError as exc:
            raise EdgefillError(f"export needs the `train` extra (torch, onnx): {exc}") from None
        from ...atomic import write_json

        try:
            summary = export_bundle(checkpoint, out, refiner=refiner, validate=validate, progress=not quiet,
                                    fp16=fp16, say=click.echo,
                                    search_overrides=dict(steps=steps, restarts=restarts, lam=lam, lr=lr, prior=prior,
                                                          blend=blend, sample_spread=sample_spread,
                                                          sample_steps=sample_steps), encoder=encoder,
                                    samples_refiner=samples_refiner, average_refiner=average_refiner,
                                    encoder_search={"steps": encoder_steps, "restarts": encoder_restarts},
                                    detector=detector, detector_faces=detector_faces, int8=int8,
                                    int8_faces=int8_faces)
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
        quant = summary.get("quantization")
        if quant:
            q = quant["quality"]
            click.echo(f"int8 {', '.join(quant['graphs'])}: hole PSNR on {q['faces']} {q['hole_psnr_float']:.2f} -> "
                       f"{q['hole_psnr_int8']:.2f} dB (drop {q['drop_db']:+.3f}, limit {quant['max_drop_db']})")
        if timing:
            click.echo(f"search step, batch {timing['batch']}: onnxruntime {timing['onnxruntime_ms_per_step']:.2f} ms, "
                       f"torch {timing['torch_ms_per_step']:.2f} ms")

    @export_cmd.command("triton")
    @click.option("--bundle", default=None, help="Bundle folder or .zip (default: the installed one).")
    @click.option("--out", required=True, help="Model repository folder to write (replaced only if it is one).")
    @click.option("--max-batch", default=16, show_default=True, type=click.IntRange(1),
                  help="Requests Triton batches into one search at most.")
    @click.option("--max-queue", default=64, show_default=True, type=click.IntRange(0),
                  help="Waiting requests beyond which Triton answers 503 at once (0: unbounded).")
    @click.option("--queue-delay-us", default=0, show_default=True, type=click.IntRange(0),
                  help="How long the batcher waits to fill a batch (microseconds).")
    @click.option("--max-queue-delay-ms", default=0, show_default=True, type=click.IntRange(0),
                  help="A request queued this long without being scheduled is rejected (0: no bound).")
    @click.option("--max-image-pixels", default=4096 * 4096, show_default=True, type=click.IntRange(1),
                  help="The largest image accepted (400 beyond).")
    @click.option("--max-inflight", default=0, show_default=True, type=click.IntRange(0),
                  help="edgefill serve's guard: requests in flight beyond which it answers 503 (0: no bound).")
    @click.option("--instances", default=0, show_default=True, type=click.IntRange(0),
                  help="Model instances (0: two on a CPU, one for --kind gpu).")
    @click.option("--kind", default="cpu", show_default=True, type=click.Choice(["cpu", "gpu"]),
                  help="Instance group kind (gpu: one instance per GPU, the CUDA provider).")
    @click.option("--provider", default="auto", show_default=True,
                  type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]), help="onnxruntime provider in the model.")
    @click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
                  help="onnxruntime threads per instance (0: physical cores / instances).")
    def export_triton_cmd(bundle, out, max_batch, max_queue, queue_delay_us, max_queue_delay_ms, max_image_pixels,
                          max_inflight, instances, kind, provider, threads):
        """Write a Triton model repository (config.pbtxt, model.py, the bundle) for any Triton server."""
        from ..serve.config import ServeConfig
        from ..serve.repository import build_repository

        cfg = ServeConfig(max_batch=max_batch, max_queue=max_queue, queue_delay_us=queue_delay_us,
                          instances=instances, kind=kind, provider=provider, threads=threads,
                          max_queue_delay_ms=max_queue_delay_ms, max_image_pixels=max_image_pixels,
                          max_inflight=max_inflight)
        path = build_repository(bundle, out, cfg)
        click.echo(json.dumps({"repository": str(path), "model": "edgefill", "config": cfg.to_dict()}, indent=2))
