"""Single-image latency of the two starts, in ONE run with A/B alternation, medians:

    python benchmarks/bench_start.py [--bundle B] [--faces N] [--json out.json]

  encoder   Inpainter.inpaint(face, "center") with the bundle's defaults for an encoder start
            (manifest search.encoder_start, e.g. 20 steps x 1 restart), refiner included
  random    the same call with init="random": the bundle's random-start defaults (200 x 2)
Timed per call (prepare, start, search, blend, refiner, paste back; no CLI, no file IO), on
--faces sample faces (samples/faces), batch 1, onnxruntime CPU. Ratio = random / encoder.
Issue 10's goal: encoder <= 0.15 s per face on the 2-core CPU (a report, never an assertion).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GOAL_S = 0.15
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "faces"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--faces", type=int, default=8, help="sample faces, each timed once per start per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.frontends.profile.environment import environment
    from edgefill.runtime.imaging.images import read_image

    try:
        inp = Inpainter(args.bundle, provider="cpu", threads=args.threads)
        if not inp.bundle.has_graph("encoder"):
            raise EdgefillError(f"bundle {inp.bundle.root} has no encoder")
    except EdgefillError as exc:
        print(f"bench_start: error: {exc}", file=sys.stderr)
        return 2
    faces = [read_image(p) for p in sorted(SAMPLES.glob("*.png"))[:args.faces]]
    starts = ("encoder", "random")
    times: dict[str, list[float]] = {s: [] for s in starts}
    settings = {}
    load_start = os.getloadavg()
    for r in range(args.rounds + 1):  # round 0 warms up
        for i, face in enumerate(faces):
            for s in (starts if (r + i) % 2 == 0 else starts[::-1]):
                t0 = time.perf_counter()
                res = inp.inpaint(face, "center", seed=i, init=s)
                if r:
                    times[s].append(time.perf_counter() - t0)
                settings[s] = {k: res.stats[k] for k in ("steps", "restarts", "lr", "blend", "refined", "init")}
    load_end = os.getloadavg()
    med = {s: statistics.median(v) for s, v in times.items()}
    for s in starts:
        st = settings[s]
        print(f"{s:<8} {st['steps']:>4} steps x {st['restarts']} restart(s): median {med[s] * 1e3:8.1f} ms per face "
              f"(n={len(times[s])})")
    ratio = med["random"] / med["encoder"]
    print(f"random / encoder: {ratio:.1f}x; goal encoder <= {GOAL_S:.2f} s: "
          f"{'met' if med['encoder'] <= GOAL_S else 'NOT met'}")
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}")
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {"median_s": med, "ratio_random_over_encoder": ratio, "settings": settings,
                               "raw_s": times, "goal_s": GOAL_S, "met": med["encoder"] <= GOAL_S,
                               "bundle": str(inp.bundle.root),
                               "environment": environment([], list(load_start), list(load_end))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
