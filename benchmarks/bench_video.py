"""Video benchmark: speed, quality and flicker of `edgefill video` settings, in ONE run.

    python benchmarks/bench_video.py [--clip ../shared/data/video/WolfgangLanger_Pexels.mp4] [--json out.json]
           [--strip samples/results/video_strip.png] [--configs default,steps1,...]

Every config runs twice on the same clip (--face auto, center mask, the default bundle): once
without --evaluate for the frame rate (decode to encode, what a user gets), once with --evaluate
for per-frame hole PSNR / SSIM against the source frames, OpenCV Telea on the same frames and
masks, and the masked flicker ratio (DESIGN section 5). Configs:
    default      the defaults: the bundle's BlazeFace landmarks -> an eye-aligned crop (similarity
                 transform onto the template measured on train.npz), detection every 3 frames,
                 landmarks following the face's flow between detections and smoothed (0.15), 2
                 steps/frame from the previous frame's z, Poisson blending, result smoothing 0.6,
                 the refiner on
    no_refine    default without the refiner (--no-refine)
    flip         default with the refiner averaged over the face and its mirror image (--flip-average;
                 the still-image default, off for video)
    haar         default, but OpenCV's Haar box instead of the landmarks (--detector haar: the
                 fallback for a bundle without a detector)
    haar_no_refine  the previous defaults (Haar box, no refiner, the result pasted)
    paste        default, but the 64x64 result pasted into the crop, not Poisson-blended
    detect1      default with detection on every frame (--detect-every 1)
    steps1/4/8   the same with 1, 4 or 8 steps
    budget25     20 steps, but each frame's search stops at 25 ms
    no_smooth    default without result smoothing
    no_follow    default, the crop held between detections (no optical flow)
    no_previous  default, but every frame starts from the encoder (no previous z)
    raw_box      default, but the raw detection every frame (--box-smoothing 1 --detect-every 1
                 --no-follow)
    independent  the baseline: per-frame inpainting, every frame from the same seeded random start
                 (--no-previous --init random, like `edgefill inpaint --seed 0` on each frame), 2
                 steps, the raw detection every frame, no result smoothing
    two_faces    default with --max-faces 2: every face its own track, one batched pipeline call
                 (with --two-faces: a clip of two faces composed from --clip)
    telea_fill   default, but no search: the same refiner on OpenCV Telea's fill (--fill telea; with
                 a bundle whose refiner was trained on Telea's fills, the strong baseline on video)
Per config: fps, frames in/out, and per-stage latency p50/p95 (decode, detect, align, start, search,
fill, refine, paste, encode; run.py's report) of the speed run.

Precision (issue 21): `--bundles fp32=/tmp/b32,fp16=default,int8=/tmp/b8` runs every config on each
bundle (rows `config@label`; "default" is the installed bundle). Make them with
    edgefill export --checkpoint runtime/bundles/default --out /tmp/b32                 # fp32 weights
    edgefill export --checkpoint runtime/bundles/default --out /tmp/b8 --fp16 \
        --int8 refiner --int8-faces ../shared/data/faces/train.npz                       # int8 refiner
(the installed bundle stores fp16 weights). `--graphs` times the graph forwards alone (batch 1,
median of 200) for each bundle, plus the fp32 refiner and generator converted to fp16 compute
(onnxruntime.transformers.float16, float I/O). `--no-quality` skips the --evaluate runs.

Real time (issue 21): `--make-realtime-clip OUT` writes a 640x480, 29.97 fps clip (single_face.mp4
then WolfgangLanger_Pexels.mp4, letterboxed from 640x360, every frame kept, re-timed to
30000/1001; mp4v) for `edgefill video OUT --realtime --json r.json` (a file paced at its fps:
frames dropped and the read-to-written latency are the measure). Write it outside the repository.
Goals (issue 11; a report, never an assertion): default >= 24 fps with no frame lost and hole
PSNR >= Telea's; flicker ratio <= 2.0 and >= 30% below `independent`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "video" / "WolfgangLanger_Pexels.mp4"

RAW_BOX = {"box_smoothing": 1.0, "detect_every": 1, "follow": False}
CONFIGS = {
    "default": {},
    "no_refine": {"refine": False},
    "flip": {"flip_average": True},
    "haar": {"detector": "haar"},
    "haar_no_refine": {"detector": "haar", "refine": False, "blend": "paste"},
    "paste": {"blend": "paste"},
    "detect1": {"detect_every": 1},
    "steps1": {"steps": 1},
    "steps4": {"steps": 4},
    "steps8": {"steps": 8},
    "budget25": {"steps": 20, "frame_budget_ms": 25.0},
    "no_smooth": {"smooth": 0.0},
    "no_follow": {"follow": False},
    "no_previous": {"previous": False},
    "raw_box": RAW_BOX,
    "independent": {"previous": False, "init": "random", "smooth": 0.0, **RAW_BOX},
    "two_faces": {"max_faces": 2},
    "telea_fill": {"fill": "telea"},
}
STAGES = ("decode", "detect", "align", "start", "search", "fill", "refine", "paste", "encode", "inpaint", "total")
REALTIME_CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
REALTIME_SIZE, REALTIME_FPS = (640, 480), 30000 / 1001


def compose_two_faces(clip: str, out: str, max_frames: int = 0) -> str:
    """A two-face test clip from a one-face clip: the central half of each frame (the face) beside
    the central half of the frame half the clip later, mirrored (lossless FFV1, same size and fps)."""
    import cv2

    cap = cv2.VideoCapture(clip)
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok or (max_frames and len(frames) >= max_frames):
            break
        frames.append(img)
    cap.release()
    h, w = frames[0].shape[:2]
    q = w // 4
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"FFV1"), fps, (2 * (w // 2), h))
    for i, img in enumerate(frames):
        other = frames[(i + len(frames) // 2) % len(frames)]
        writer.write(cv2.hconcat([img[:, q:q + w // 2], cv2.flip(other[:, q:q + w // 2], 1)]))
    writer.release()
    return out


def make_realtime_clip(out: str, clips=REALTIME_CLIPS, folder: Path = CLIP.parent) -> dict:
    """A 640x480 29.97 fps clip from the shared clips (module docstring): each frame letterboxed
    (scaled to fit, centred on black), all frames kept, stamped at 30000/1001 fps (mp4v)."""
    import cv2
    import numpy as np

    W, H = REALTIME_SIZE
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), REALTIME_FPS, (W, H))
    n = 0
    for name in clips:
        cap = cv2.VideoCapture(str(folder / name))
        while True:
            ok, img = cap.read()
            if not ok:
                break
            h, w = img.shape[:2]
            s = min(W / w, H / h)
            nw, nh = round(w * s), round(h * s)
            canvas = np.zeros((H, W, 3), np.uint8)
            x, y = (W - nw) // 2, (H - nh) // 2
            canvas[y:y + nh, x:x + nw] = img if (nw, nh) == (w, h) else cv2.resize(img, (nw, nh),
                                                                                     interpolation=cv2.INTER_AREA)
            writer.write(canvas)
            n += 1
        cap.release()
    writer.release()
    return {"clip": out, "frames": n, "size": [W, H], "fps": REALTIME_FPS, "from": list(clips)}


def time_graphs(bundles: dict[str, str | None], repeats: int = 200) -> list[dict]:
    """Batch-1 forward time (median ms) of the refiner and generator graphs of each bundle, plus the
    first bundle's float graphs converted to fp16 compute (float I/O)."""
    import time

    import numpy as np
    import onnx
    import onnxruntime as ort

    from edgefill.export.quantize import float_graph
    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.core.engine import session_options

    def median_ms(session, feed):
        for _ in range(20):
            session.run(None, feed)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            session.run(None, feed)
            ts.append(time.perf_counter() - t)
        return float(np.median(ts) * 1000)

    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, path) in enumerate(bundles.items()):
            b = open_bundle(path)
            for g in ("refiner", "generator"):
                if not b.has_graph(g):
                    continue
                s = ort.InferenceSession(str(b.graph_path(g)), session_options(), providers=["CPUExecutionProvider"])
                inp = s.get_inputs()[0]
                shape = [1 if not isinstance(d, int) else d for d in inp.shape]
                feed = {inp.name: rng.uniform(-1, 1, shape).astype(np.float32)}
                rows.append({"bundle": label, "graph": g, "file": b.manifest["graphs"][g]["file"],
                             "ms": median_ms(s, feed)})
                if i == 0:
                    from onnxruntime.transformers.float16 import convert_float_to_float16

                    f32 = float_graph(b.graph_path(g), Path(tmp) / f"{g}.onnx")
                    f16 = Path(tmp) / f"{g}.fp16.onnx"
                    onnx.save(convert_float_to_float16(onnx.load(str(f32)), keep_io_types=True), str(f16))
                    s16 = ort.InferenceSession(str(f16), session_options(), providers=["CPUExecutionProvider"])
                    rows.append({"bundle": f"{label} as fp16 compute", "graph": g, "file": "(converted)",
                                 "ms": median_ms(s16, feed)})
    return rows


def strip(clip: str, path: str, frames=(40, 160, 280, 400)) -> None:
    """source | masked | OpenCV Telea | ours (the defaults) for a few frames, the face region of
    each (the crop's bounds, a margin around it), as one picture."""
    import cv2
    import numpy as np

    from edgefill.runtime.frontends.video.api import VideoInpainter
    from edgefill.runtime.imaging.diffusion import opencv_inpaint
    from edgefill.runtime.imaging.images import write_image

    cap = cv2.VideoCapture(clip)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    vi = VideoInpainter(w, h, "center", face="auto")
    rows = []
    for i in range(max(frames) + 1):
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out, info = vi.process(rgb, i)
        if i in frames and info["face"]:
            x, y, bw, bh = info["box"]
            pad = max(bw, bh) // 6
            x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
            hole = info["mask"] >= 128
            telea = opencv_inpaint(rgb[None], info["mask"][None], "telea")[0]
            masked = np.where(hole[..., None], np.uint8(255), rgb)
            tiles = [cv2.resize(a[y0:y1, x0:x1], (176, int(176 * (y1 - y0) / (x1 - x0))), interpolation=cv2.INTER_AREA)
                     for a in (rgb, masked, telea, out)]
            rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], 1))
    cap.release()
    width = max(r.shape[1] for r in rows)
    write_image(path, np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                                     for r in rows], 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default=str(CLIP))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", default=None)
    ap.add_argument("--strip", default=None, help="write the source | masked | output picture here")
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--strip-only", action="store_true", help="only draw --strip")
    ap.add_argument("--two-faces", action="store_true",
                    help="run on a two-face clip composed from --clip (compose_two_faces); the two_faces config "
                         "(--max-faces 2) inpaints both")
    ap.add_argument("--bundles", default=None, metavar="LABEL=PATH,...",
                    help="run every config on each bundle (e.g. fp32=/tmp/b32,fp16=default,int8=/tmp/b8)")
    ap.add_argument("--no-quality", action="store_true", help="only the speed runs (no --evaluate runs)")
    ap.add_argument("--graphs", action="store_true", help="only time the refiner/generator forwards of --bundles")
    ap.add_argument("--make-realtime-clip", metavar="OUT", default=None,
                    help="only write the 640x480 29.97 fps clip for --realtime runs (outside the repository)")
    ap.add_argument("--measure-crop", metavar="NPZ", default=None,
                    help="only measure the Haar box -> model crop geometry on the last 400 faces of NPZ")
    args = ap.parse_args(argv)
    if args.measure_crop:
        import numpy as np

        from edgefill.runtime.frontends.video.faces import measure_crop_geometry

        print(json.dumps(measure_crop_geometry(np.load(args.measure_crop)["images"][-400:])))
        return 0
    if args.make_realtime_clip:
        print(json.dumps(make_realtime_clip(args.make_realtime_clip)))
        return 0
    bundles = {"default": None}
    if args.bundles:
        bundles = {}
        for item in args.bundles.split(","):
            label, _, path = item.partition("=")
            bundles[label] = None if path in ("", "default") else path
    if args.graphs:
        rows = time_graphs(bundles)
        for r in rows:
            print(f"{r['bundle']:<24} {r['graph']:<10} {r['ms']:6.2f} ms  ({r['file']})")
        if args.json:
            from edgefill.runtime.atomic import write_json

            write_json(args.json, {"graphs": rows, "load_average": os.getloadavg()[0]})
        return 0
    if not Path(args.clip).is_file():
        print(f"bench_video: error: clip not found: {args.clip}", file=sys.stderr)
        return 2
    if args.strip_only:
        strip(args.clip, args.strip)
        return 0

    from edgefill.runtime.frontends.video.run import VideoJob, run_video
    from edgefill.runtime.frontends.video.settings import VideoSettings

    rows = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        if args.two_faces:
            args.clip = compose_two_faces(args.clip, str(Path(tmp) / "two_faces.mkv"))
        for config, (label, bundle) in [(c, b) for c in args.configs.split(",") for b in bundles.items()]:
            kw = CONFIGS[config]
            name = config if len(bundles) == 1 and args.bundles is None else f"{config}@{label}"
            base = VideoJob(input=args.clip, out=str(Path(tmp) / f"{name}.mp4"), mask="center",
                            settings=VideoSettings(face="auto", **kw), progress=False, max_frames=args.max_frames,
                            bundle=bundle)
            speed = run_video(base)
            if args.no_quality:
                nan = float("nan")
                ev = {"hole_psnr": {"mean": nan}, "telea_hole_psnr": {"mean": nan}, "ssim": {"mean": nan},
                      "telea_ssim": {"mean": nan}, "flicker": {"ratio": {"output": nan, "telea": nan}}, "frames": 0}
            else:
                quality = run_video(dataclasses.replace(base, evaluate=True, out=str(Path(tmp) / f"{name}_e.mp4")))
                ev = quality["evaluation"]
            row = {"config": name, "bundle": bundle or "default", "settings": kw, "fps": speed["fps"],
                   "frames_in": speed["frames_in"],
                   "faces_per_frame": float(sum(f["faces"] for f in speed["per_frame"]) / max(1, len(speed["per_frame"]))),
                   "frames_out": speed["frames_out"], "dropped": speed["dropped"],
                   "without_face": speed["frames_without_face"], "steps_mean": speed["steps_run"]["mean"],
                   "inpaint_p50_ms": speed["latency"]["inpaint"]["p50_ms"],
                   "inpaint_p95_ms": speed["latency"]["inpaint"]["p95_ms"], "latency": speed["latency"],
                   "stages_ms": {k: [speed["latency"][k]["p50_ms"], speed["latency"][k]["p95_ms"]] for k in STAGES},
                   "detector": speed["settings"]["detector"], "refine": speed["settings"]["refine"],
                   "hole_psnr": ev["hole_psnr"]["mean"], "telea_hole_psnr": ev["telea_hole_psnr"]["mean"],
                   "ssim": ev["ssim"]["mean"], "telea_ssim": ev["telea_ssim"]["mean"],
                   "flicker_ratio": ev["flicker"]["ratio"]["output"],
                   "telea_flicker_ratio": ev["flicker"]["ratio"]["telea"], "evaluated_frames": ev["frames"]}
            rows.append(row)
            print(f"{name:<12} {row['fps']:6.1f} fps  out {row['frames_out']}/{row['frames_in']}  "
                  f"hole PSNR {row['hole_psnr']:.2f} (Telea {row['telea_hole_psnr']:.2f})  SSIM {row['ssim']:.3f} "
                  f"(Telea {row['telea_ssim']:.3f})  flicker {row['flicker_ratio']:.2f} "
                  f"(Telea {row['telea_flicker_ratio']:.2f})", flush=True)
            print("    p50/p95 ms: " + "  ".join(f"{k} {v[0]:.1f}/{v[1]:.1f}" for k, v in row["stages_ms"].items()
                                                 if v[0] is not None), flush=True)
            load.append(os.getloadavg()[0])
    by = {r["config"]: r for r in rows}
    goals = {}
    if "default" in by:
        d = by["default"]
        goals["realtime_24fps"] = d["fps"] >= 24 and d["frames_out"] == d["frames_in"]
        goals["hole_psnr_vs_telea"] = d["hole_psnr"] >= d["telea_hole_psnr"]
        goals["flicker_le_2"] = d["flicker_ratio"] <= 2.0
        if "independent" in by:
            goals["flicker_30pct_below_independent"] = d["flicker_ratio"] <= 0.7 * by["independent"]["flicker_ratio"]
    print("goals:", json.dumps(goals))
    print(f"load average over the run: {min(load):.2f}..{max(load):.2f}")
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {"rows": rows, "goals": goals, "clip": args.clip, "load_average": load})
    if args.strip:
        strip(args.clip, args.strip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
