"""A video check across many people: bundles compared on clips of held-out training faces, through
`edgefill video` (runtime.frontends.video.run), because the shared clips show only two people.

    python benchmarks/video_people.py BUNDLE [BUNDLE ...] --data runs/val.npz [--people 12]
        [--frames 48] [--seed 0] [--json out.json] [--strip out.png]

BUNDLE is a bundle folder or "default"; LABEL=PATH names it in the report; a path written
telea:PATH (telea:default) runs that bundle with `--fill telea`: no search, its refiner on OpenCV
Telea's fill (with a bundle whose refiner was trained on Telea's fills, the strong baseline). Each person is one
64x64 face of --data (the train hold-out: tune on training faces, never on test.npz), made into
a clip (compose_person_clip): the face scaled up to 150-210 px on a soft background of its own
blurred colours, drifting and slowly zooming, its brightness changing +-10% over the clip,
written losslessly (FFV1) at 640x360 and 24 fps through OpenCV. Every bundle runs every clip with
the video defaults (--face auto, center mask, --evaluate): per-frame hole PSNR and SSIM against
the clip's own frames, OpenCV Telea's on the same masks, and the masked flicker ratio
(DESIGN section 5). The report has each person's numbers, each bundle's mean over people, and
each bundle's per-person change against the first bundle (mean and its 95% interval, worst, how
many people gain): a change that helps one person and hurts the others shows here. --strip
writes one frame per person (at most 6), cropped to the face: source | each bundle's output. No
timing: a busy CPU is fine.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
FRAME_SIZE = (640, 360)  # width, height
FPS = 24.0


def compose_person_clip(face: np.ndarray, out: str, frames: int, seed: int) -> list[tuple[int, int, int]]:
    """One person's clip. face uint8 (64,64,3) RGB -> `out` (FFV1 .mkv, FRAME_SIZE, FPS, `frames`
    frames); returns each frame's face square (x, y, size) in pixels. The face is scaled (bicubic) to a size that moves between 150 and 210 px, placed on
    a background made from its own colours (the face blurred over the frame), its position
    drifting on slow sines and its brightness scaled by 0.9-1.1; seed picks the phases."""
    import cv2

    width, height = FRAME_SIZE
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 4)
    bgr = np.ascontiguousarray(face[..., ::-1])
    background = cv2.GaussianBlur(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR), (0, 0), 25)
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"FFV1"), FPS, (width, height))
    boxes = []
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write FFV1 to {out}")
    try:
        for f in range(frames):
            t = f / max(frames - 1, 1)
            size = int(round(180 + 30 * np.sin(2 * np.pi * t + phase[0])))
            x = int(round(width / 2 - size / 2 + 60 * np.sin(2 * np.pi * t + phase[1])))
            y = int(round(height / 2 - size / 2 + 15 * np.sin(2 * np.pi * t + phase[2])))
            gain = 1.0 + 0.1 * np.sin(2 * np.pi * t + phase[3])
            boxes.append((x, y, size))
            frame = background.copy()
            frame[y:y + size, x:x + size] = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_CUBIC)
            writer.write(np.clip(frame.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return boxes


def parse_bundles(specs: list[str]) -> dict[str, tuple[str | None, str]]:
    """["a=/path", "/other", "default", "t=telea:default"] -> {"a": ("/path", "search"), "/other":
    ("/other", "search"), "default": (None, "search"), "t": (None, "telea")}: (bundle path or None
    for the default, the video fill); ValueError for a folder that does not exist."""
    out: dict[str, tuple[str | None, str]] = {}
    for spec in specs:
        label, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        fill = "search"
        if path.startswith("telea:"):
            fill, path = "telea", path[len("telea:"):]
        if path != "default" and not Path(path).is_dir():
            raise ValueError(f"bundle {path} not found")
        out[label] = (None if path == "default" else path, fill)
    return out


def face_view(path: str, index: int, box: tuple[int, int, int], size: int = 192) -> np.ndarray:
    """Frame `index` of a video file cropped to the face square `box` (x, y, side) and scaled to
    size x size: BGR uint8."""
    import cv2

    cap = cv2.VideoCapture(path)
    for _ in range(index + 1):
        ok, img = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {index} of {path}")
    x, y, side = box
    return cv2.resize(img[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def summarize(rows: list[dict], labels: list[str]) -> dict:
    """Per bundle: means over people; against the first bundle: per-person hole PSNR change (mean,
    its 95% Student-t interval "ci", worst, best, how many people gain)."""
    from edgefill.runtime.imaging.metrics import mean_ci

    out = {}
    first = {r["person"]: r["hole_psnr"] for r in rows if r["bundle"] == labels[0]}
    for label in labels:
        mine = [r for r in rows if r["bundle"] == label]
        out[label] = {k: float(np.mean([r[k] for r in mine])) for k in
                      ("hole_psnr", "ssim", "flicker_ratio", "telea_hole_psnr", "telea_flicker_ratio",
                       "frames_without_face")}
        if label != labels[0]:
            change = np.array([r["hole_psnr"] - first[r["person"]] for r in mine])
            _, lo, hi, _ = mean_ci(change)
            out[label]["vs_first_db"] = {"mean": float(change.mean()), "ci": [lo, hi], "worst": float(change.min()),
                                         "best": float(change.max()), "people_gaining": int((change > 0).sum()),
                                         "people": int(change.size)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="+", help='bundle folders, "default", or LABEL=PATH')
    ap.add_argument("--data", required=True, help="faces: .npz or folder (the train hold-out, runs/val.npz)")
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0, help="picks the people and their motion")
    ap.add_argument("--json", default=None)
    ap.add_argument("--strip", default=None, help="a PNG: the middle frame's face, source | each bundle, one row per person (6 at most)")
    args = ap.parse_args(argv)
    if args.people < 1 or args.frames < 2:
        print("video_people: error: --people must be >= 1 and --frames >= 2", file=sys.stderr)
        return 2
    try:
        bundles = parse_bundles(args.bundles)
    except ValueError as exc:
        print(f"video_people: error: {exc}", file=sys.stderr)
        return 2

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.imaging.datasets import load_faces
    from edgefill.runtime.imaging.images import IMAGE_EXTENSIONS

    if args.strip and Path(args.strip).suffix.lower() not in IMAGE_EXTENSIONS:  # before minutes of video
        print(f"video_people: error: --strip must end in one of {', '.join(IMAGE_EXTENSIONS)}", file=sys.stderr)
        return 2
    try:
        return run(args, bundles, load_faces(args.data).images)
    except EdgefillError as exc:  # unreadable faces, a folder that is not a bundle: one line
        print(f"video_people: error: {exc}", file=sys.stderr)
        return 2


def run(args, bundles: dict[str, tuple[str | None, str]], faces: np.ndarray) -> int:
    """Compose each person's clip (faces uint8 (N,64,64,3) RGB), run every bundle on it with the
    video defaults, print and write the report (main's flags in `args`)."""
    from edgefill.runtime.frontends.video.run import VideoJob, run_video
    from edgefill.runtime.frontends.video.settings import VideoSettings

    if args.people > len(faces):
        print(f"video_people: error: --people {args.people} but {args.data} has {len(faces)} faces", file=sys.stderr)
        return 2
    people = np.sort(np.random.default_rng(args.seed).choice(len(faces), args.people, replace=False))
    labels = list(bundles)
    rows, strip = [], []
    view = args.frames // 2  # the frame the strip shows
    with tempfile.TemporaryDirectory() as tmp:
        for n, person in enumerate(people):
            clip = str(Path(tmp) / f"p{person}.mkv")
            boxes = compose_person_clip(faces[person], clip, args.frames, args.seed * 100003 + int(person))
            shown = [face_view(clip, view, boxes[view])] if n < 6 and args.strip else []
            for label in labels:
                out = str(Path(tmp) / f"p{person}_{n}_{labels.index(label)}.mkv")
                report = run_video(VideoJob(input=clip, out=out, mask="center", evaluate=True, progress=False,
                                            settings=VideoSettings(face="auto", fill=bundles[label][1]),
                                            bundle=bundles[label][0]))
                ev = report["evaluation"]
                rows.append({"person": int(person), "bundle": label, "hole_psnr": ev["hole_psnr"]["mean"],
                             "ssim": ev["ssim"]["mean"], "flicker_ratio": ev["flicker"]["ratio"]["output"],
                             "telea_flicker_ratio": ev["flicker"]["ratio"]["telea"],
                             "telea_hole_psnr": ev["telea_hole_psnr"]["mean"], "evaluated_frames": ev["frames"],
                             "frames_without_face": report["frames_without_face"]})
                if shown:
                    shown.append(face_view(out, view, boxes[view]))
                r = rows[-1]
                print(f"person {person:5d} {label:<14} hole PSNR {r['hole_psnr']:6.2f} (Telea "
                      f"{r['telea_hole_psnr']:6.2f})  SSIM {r['ssim']:.3f}  flicker {r['flicker_ratio']:.2f}  "
                      f"no face {r['frames_without_face']}", flush=True)
            if shown:
                strip.append(np.concatenate(shown, axis=1))
    summary = summarize(rows, labels)
    for label, s in summary.items():
        change = s.get("vs_first_db")
        extra = "" if change is None else (f"  vs {labels[0]}: {change['mean']:+.2f} dB [{change['ci'][0]:+.2f}, "
                                           f"{change['ci'][1]:+.2f}] (worst {change['worst']:+.2f}, "
                                           f"{change['people_gaining']}/{change['people']} people gain)")
        print(f"{label:<14} mean over {args.people} people: hole PSNR {s['hole_psnr']:.2f} (Telea "
              f"{s['telea_hole_psnr']:.2f})  SSIM {s['ssim']:.3f}  flicker {s['flicker_ratio']:.2f} (Telea "
              f"{s['telea_flicker_ratio']:.2f}){extra}")
    if args.strip and strip:
        from edgefill.runtime.imaging.images import write_image

        write_image(args.strip, np.concatenate(strip, axis=0)[..., ::-1])
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {"bundles": {k: path or "default" for k, (path, _) in bundles.items()},
                               "fills": {k: fill for k, (_, fill) in bundles.items()}, "data": args.data,
                               "people": [int(p) for p in people], "frames": args.frames, "seed": args.seed,
                               "frame_size": list(FRAME_SIZE), "fps": FPS, "results": rows, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
