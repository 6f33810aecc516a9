"""Single-image latency of the refine stage's choices, in ONE run with A/B alternation, medians:

    python benchmarks/bench_refine.py [--bundle B] [--rounds 25] [--json out.json]

  flip      Inpainter.inpaint(face, "center") with the refiner averaged over the face and its
            mirror image (the bundle's default; runtime.core.refine_config)
  one       the same call with flip_average=False (one refiner pass)
  samples5  the same call with samples=5 (K fills of one hole; the samples refiner runs once)
Timed per call (prepare, start, search, blend, refiner, paste back; no CLI, no file IO) on the
sample faces (samples/faces), batch 1, onnxruntime CPU, the bundle's default search. Ratios:
flip / one (what the mirror pass costs) and samples5 / flip (issue 22's goal: at most 3x).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "faces"
SAMPLES_GOAL = 3.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--rounds", type=int, default=25, help="timed calls per variant (after one warm-up round)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import time

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.frontends.profile.environment import environment
    from edgefill.runtime.imaging.images import read_image

    try:
        flip = Inpainter(args.bundle, provider="cpu", threads=args.threads, flip_average=True)
        if not flip.bundle.has_graph("refiner"):
            raise EdgefillError(f"bundle {flip.bundle.root} has no refiner")
    except EdgefillError as exc:
        print(f"bench_refine: error: {exc}", file=sys.stderr)
        return 2
    one = Inpainter(flip.bundle, provider="cpu", threads=args.threads, flip_average=False)
    calls = {"flip": lambda f, s: flip.inpaint(f, "center", seed=s),
             "one": lambda f, s: one.inpaint(f, "center", seed=s),
             "samples5": lambda f, s: flip.inpaint(f, "center", seed=s, samples=5)}
    faces = [read_image(p) for p in sorted(SAMPLES.glob("*.png"))]
    times: dict[str, list[float]] = {k: [] for k in calls}
    load_start = os.getloadavg()
    names = list(calls)
    for r in range(args.rounds + 1):  # round 0 warms up
        for k in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            calls[k](faces[r % len(faces)], r)
            if r:
                times[k].append(time.perf_counter() - t0)
    load_end = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {"flip_over_one": med["flip"] / med["one"], "samples5_over_flip": med["samples5"] / med["flip"]}
    for k in names:
        print(f"{k:<9} median {med[k] * 1e3:7.1f} ms per face (n={len(times[k])})")
    print(f"flip / one: {ratios['flip_over_one']:.2f}x; samples5 / flip: {ratios['samples5_over_flip']:.2f}x "
          f"(goal <= {SAMPLES_GOAL:g}x: {'met' if ratios['samples5_over_flip'] <= SAMPLES_GOAL else 'NOT met'})")
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}")
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {"median_s": med, "ratios": ratios, "raw_s": times, "samples_goal": SAMPLES_GOAL,
                               "bundle": str(flip.bundle.root),
                               "environment": environment([], list(load_start), list(load_end))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
