"""How bundles hold up when the lighting differs from the training faces', through `edgefill evaluate`:

    python benchmarks/lighting.py BUNDLE [BUNDLE ...] --data runs/val.npz [--limit 200] [--mask center]
        [--methods lsgan+refiner] [--shifts none,bright,dark,warm,gamma,flat] [--json out.json]

Each shift changes the whole face (the truth with it) before the hole is cut, so a method is judged
on whether its fill follows the face's own lighting: bright x1.25, dark x0.75, warm (R x1.15, B
x0.85), gamma 0.7 (brighter mid-tones), flat (half the contrast around mid-grey: evenly lit, pale).
Reports hole PSNR and SSIM per bundle, shift and method (runtime.frontends.evaluate: the same
masks, seeds and metrics as `edgefill evaluate`), and each bundle's change against the first
bundle. Tune on training faces (the train hold-out), never on test.npz. No timing: CPU is fine.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHIFTS = {  # name: (what it does, RGB float in [0, 1] -> changed)
    "none": ("as recorded", lambda a: a),
    "bright": ("x1.25", lambda a: a * 1.25),
    "dark": ("x0.75", lambda a: a * 0.75),
    "warm": ("R x1.15, B x0.85", lambda a: a * np.array([1.15, 1.0, 0.85], np.float32)),
    "gamma": ("a ** 0.7", lambda a: a ** 0.7),
    "flat": ("0.5 a + 0.25", lambda a: 0.5 * a + 0.25),
}


def shifted(images: np.ndarray, name: str) -> np.ndarray:
    """uint8 (N,64,64,3) RGB -> the same faces under lighting shift `name` (uint8, clipped)."""
    a = SHIFTS[name][1](images.astype(np.float32) / 255.0)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--data", required=True, help="faces: .npz or folder (the train hold-out, runs/val.npz)")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--mask", default="center")
    ap.add_argument("--methods", default="lsgan+refiner")
    ap.add_argument("--shifts", default=",".join(SHIFTS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.evaluate import EvaluateConfig, evaluate, parse_list, parse_masks
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.imaging.datasets import load_faces

    try:
        shifts = parse_list(args.shifts)
        bad = [s for s in shifts if s not in SHIFTS]
        if bad:
            raise EdgefillError(f"unknown shift {bad[0]!r}; use any of {', '.join(SHIFTS)}")
        cfg = EvaluateConfig(masks=parse_masks(args.mask), methods=parse_list(args.methods), limit=args.limit)
        faces = load_faces(args.data, limit=args.limit, progress=False).images
        inpainters = [Inpainter(b, provider="cpu") for b in args.bundles]
    except EdgefillError as exc:
        print(f"lighting: error: {exc}", file=sys.stderr)
        return 2
    faces_under = {s: shifted(faces, s) for s in shifts}
    rows = []
    for b, inp in zip(args.bundles, inpainters):
        for s in shifts:
            report = evaluate(faces_under[s], cfg, inp, progress=False).report
            for r in report["results"]:
                rows.append({"bundle": b, "shift": s, "mask": r["mask"], "method": r["method"],
                             "hole_psnr": r["hole_psnr"], "ssim": r["ssim"], "n": r["n"]})
    first = {(r["shift"], r["mask"], r["method"]): r["hole_psnr"] for r in rows if r["bundle"] == args.bundles[0]}
    for r in rows:
        r["vs_first_db"] = r["hole_psnr"] - first[(r["shift"], r["mask"], r["method"])]
        print(f"{r['bundle']:<32} {r['shift']:<7} {r['mask']:<8} {r['method']:<14} hole PSNR {r['hole_psnr']:6.2f} "
              f"SSIM {r['ssim']:.3f}  vs first {r['vs_first_db']:+.2f}")
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {"results": rows, "data": str(args.data), "limit": args.limit,
                               "shifts": {s: SHIFTS[s][0] for s in shifts}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
