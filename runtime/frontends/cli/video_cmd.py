"""`edgefill video INPUT --out OUT`: inpaint a video's frames (runtime.frontends.video).

Prints the JSON report on stdout (and writes it to --json); progress and notices on stderr.
Ctrl-C keeps a playable OUT.partial.EXT (or nothing) and says so in one line (exit 130).
"""
from __future__ import annotations

import click

from .common import flip_average_option


def register(cli: click.Group) -> None:
    cli.add_command(video_cmd)


@click.command("video")
@click.argument("input_spec", metavar="INPUT")
@click.option("--out", required=True, help="Output video (.mp4, .avi, .mkv, .mov), written atomically.")
@click.option("--mask", default="center", show_default=True,
              help="A mask kind relative to the face crop (center, half, ...), a full-frame mask PNG, or a mask "
                   "video (one mask per frame).")
@click.option("--box", default=None, help="Fixed face region x,y,w,h (instead of --face auto).")
@click.option("--face", type=click.Choice(["auto"]), default=None,
              help="Find the face every few frames, follow it with optical flow in between, smooth it (the default "
                   "without --box).")
@click.option("--detector", type=click.Choice(["auto", "blazeface", "haar"]), default="auto", show_default=True,
              help="Face finder for --face auto: blazeface (the bundle's detector: landmarks, an eye-aligned crop "
                   "like the model's training faces) or haar (OpenCV's cascade, a box); auto: blazeface when the "
                   "bundle has it.")
@click.option("--max-faces", type=click.IntRange(1), default=1, show_default=True,
              help="Inpaint every face of the frame, up to N, each its own track, all in one batched pipeline "
                   "call (N > 1 needs the bundle's face detector).")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Search steps per frame (default 2: each frame starts from the previous frame's z).")
@click.option("--frame-budget-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A per-frame deadline: each frame's search stops once its inference (mask, search, blend, "
                   "paste) has taken this long (default with --realtime: 0.4 of the frame interval, so a second "
                   "step runs only when it fits).")
@click.option("--init", type=click.Choice(["auto", "random", "encoder"]), default="auto", show_default=True,
              help="Start of a (re)started face track; later frames start from the previous frame's z.")
@click.option("--no-previous", is_flag=True, help="Do not start from the previous frame's z (independent frames).")
@click.option("--smooth", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Temporal smoothing of the 64x64 result inside the hole (weight of the previous frame; "
                   "default 0.6, 0 = off).")
@click.option("--box-smoothing", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Weight of a new detection in the smoothed face box (default 0.15; 1 = the raw detector box).")
@click.option("--detect-every", type=click.IntRange(1), default=None,
              help="Run the face detector every N frames (default 3).")
@click.option("--no-follow", is_flag=True,
              help="Hold the face box between detections instead of moving it with the face's optical flow.")
@click.option("--blend", type=click.Choice(["poisson", "paste"]), default="poisson", show_default=True,
              help="How the search's 64x64 result joins the crop's known pixels (poisson: its colours meet the "
                   "frame's at the hole's edge).")
@click.option("--fill", type=click.Choice(["search", "telea"]), default="search", show_default=True,
              help="Where the hole's first fill comes from: the GAN's latent search (the product), or OpenCV "
                   "Telea with no search (then the same refiner and smoothing: evaluate's telea+refiner on "
                   "video, to see what the search adds).")
@click.option("--fallback-yaw", type=click.FloatRange(min=0), default=None,
              help="A face turned further than this (the nose tip's offset from the eyes' midpoint over the eye "
                   "distance, ~0.5 tan(yaw)) gets OpenCV Telea in its crop instead of the GAN fill (default 0.3).")
@click.option("--fallback-outside", type=click.FloatRange(0, 1), default=None,
              help="A face whose 64x64 crop has more than this fraction outside the frame gets OpenCV Telea in "
                   "its crop instead of the GAN fill (default 0.3).")
@click.option("--no-fallback", is_flag=True, help="Always the GAN fill, however turned or cut off the face.")
@click.option("--refine/--no-refine", default=None,
              help="Run the bundle's refiner on each frame's result (default: on; --no-refine saves its few ms).")
@flip_average_option("off for video: it lost hole PSNR on the tuning clips")
@click.option("--realtime", is_flag=True,
              help="Live behaviour (a file is paced at its fps): newest frame first (at most one frame waits), "
                   "late frames dropped and counted, the output stamped with the fps achieved.")
@click.option("--keep-audio", is_flag=True, help="Copy the source's audio (needs the video extra).")
@click.option("--codec", default=None, help="FourCC (mp4v, MJPG, FFV1, ...) or h264 (video extra); default by suffix.")
@click.option("--side-by-side", is_flag=True, help="Write source | output side by side.")
@click.option("--evaluate", is_flag=True,
              help="Measure hole PSNR/SSIM against the source, OpenCV Telea on the same frames, and flicker.")
@click.option("--json", "json_path", default=None, help="Write the report here too.")
@click.option("--provider", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]),
              help="onnxruntime provider (auto: TensorRT, CUDA, then CPU, the first that loads).")
@click.option("--bundle", default=None, help="Bundle folder or .zip (default: the installed one).")
@click.option("--threads", type=click.IntRange(1), default=None, help="onnxruntime threads.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds mask kinds and random starts.")
@click.option("--max-frames", type=click.IntRange(0), default=0, show_default=True, help="Stop after N frames (0: all).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def video_cmd(input_spec, out, mask, box, face, detector, max_faces, blend, fill, fallback_yaw, fallback_outside,
              no_fallback, steps, frame_budget_ms, init, no_previous, smooth, box_smoothing,
              detect_every, no_follow, refine, flip_average, realtime, keep_audio, codec, side_by_side, evaluate, json_path, provider, bundle, threads,
              seed, max_frames, no_progress):
    """Inpaint the face region of every frame of a video file, camera or stream."""
    import json

    from ...atomic import write_json
    from ..video.run import VideoInterrupted, VideoJob, run_video
    from ..video.settings import VideoSettings

    given = {"steps": steps, "smooth": smooth, "box_smoothing": box_smoothing, "detect_every": detect_every,
             "refine": refine, "flip_average": flip_average, "fallback_yaw": fallback_yaw,
             "fallback_outside": fallback_outside}
    given = {k: v for k, v in given.items() if v is not None}  # unset: VideoSettings' default
    if no_fallback:
        given.update(fallback_yaw=None, fallback_outside=None)
    settings = VideoSettings(box=box, face=face, frame_budget_ms=frame_budget_ms, init=init, previous=not no_previous,
                             follow=not no_follow, seed=seed, detector=detector, max_faces=max_faces, blend=blend,
                             fill=fill, **given)
    job = VideoJob(input=input_spec, out=out, mask=mask, settings=settings, realtime=realtime, keep_audio=keep_audio,
                   codec=codec, side_by_side=side_by_side, evaluate=evaluate,
                   provider=None if provider == "auto" else provider, bundle=bundle, threads=threads,
                   max_frames=max_frames, progress=not no_progress)
    try:
        report = run_video(job)
    except VideoInterrupted as exc:
        click.echo(f"edgefill: interrupted: {exc}", err=True)
        raise SystemExit(130) from None
    summary = {k: v for k, v in report.items() if k not in ("evaluation", "per_frame")}
    if "evaluation" in report:
        summary["evaluation"] = {k: v for k, v in report["evaluation"].items() if k != "per_frame"}
    click.echo(json.dumps(summary, indent=2))
    if json_path:
        write_json(json_path, report)
