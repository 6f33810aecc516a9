"""Ratio benchmarks: the onnxruntime runtime against the torch eager fallback, same bundle, same
process, same inputs, measured in ONE run with A/B alternation (A B, B A, A B, ...), medians.

    python benchmarks/bench_search.py --bundle B --json out.json [--batch-sizes 1,8] [--steps 1000]

Three comparisons, each at every batch size (batch = search rows: images x 1 restart):
  search_step  one Adam step inside the real search loops (core.ort_search.OrtSearch vs
               core.torch_fallback.TorchSearch, through Pipeline.search): median of the per-step intervals of --step-runs
               searches of --step-steps steps each (the first step of each search is dropped)
  search       a whole --steps-step search (default 1000), --repeats times per backend
  inpaint      Inpainter.inpaint_batch end to end (search + paste + refiner when the bundle has
               one) with --inpaint-steps steps, --repeats times per backend
Ratio = torch eager median / onnxruntime median (> 1: the runtime is faster). Issue 4's goal
(runtime >= 2.5x torch eager at batch 1, base bundle, 2-core CPU) is printed as met or not;
it is a report, never an assertion. Not a unit test: run it on demand, on a quiet machine.

OMP_WAIT_POLICY=PASSIVE is set before torch is imported and both backends use the same
number of threads (--threads, default: the engine's physical cores), so neither thread pool
spins while the other one works.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

GOAL = 2.5


def _alternate(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Call every fn `repeats` times, alternating the order each round; returns seconds per call."""
    names = list(fns)
    out = {n: [] for n in names}
    for r in range(repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[n]()
            out[n].append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None, help="bundle folder/.zip (default: the installed one)")
    ap.add_argument("--json", default=None, help="write the raw times, medians and ratios here")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--steps", type=int, default=1000, help="steps of the whole-search comparison")
    ap.add_argument("--repeats", type=int, default=3, help="whole searches / inpaints per backend")
    ap.add_argument("--step-runs", type=int, default=6, help="searches timed per backend for the step ratio")
    ap.add_argument("--step-steps", type=int, default=50, help="steps in each of those searches")
    ap.add_argument("--inpaint-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each comparison first")
    args = ap.parse_args(argv)

    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.core.engine import Engine
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.imaging.images import to_model
    from edgefill.runtime.imaging.masks import importance_weights, masked_input
    from edgefill.runtime.frontends.profile.backends import OrtBackend, TorchBackend
    from edgefill.runtime.frontends.profile.environment import environment
    from edgefill.runtime.frontends.profile.inputs import make_inputs
    from edgefill.runtime.core.starts import initial_z

    try:
        bundle = open_bundle(args.bundle)
        engine = Engine(bundle, provider="cpu", threads=args.threads)
        ort_be = OrtBackend(engine)
        torch_be = TorchBackend(engine, threads=engine.threads)
    except EdgefillError as exc:
        print(f"bench_search: error: {exc}", file=sys.stderr)
        return 2
    backends = {"onnxruntime": ort_be, "torch-eager": torch_be}
    inpainters = {"onnxruntime": Inpainter(bundle, provider="cpu", backend="onnx", threads=engine.threads),
                  "torch-eager": Inpainter(bundle, provider="cpu", backend="torch", threads=engine.threads)}
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    base_cfg = bundle.search_defaults.replace(restarts=1, patience=0)
    results = []
    load_start = os.getloadavg()

    for bs in sizes:
        images, masks = make_inputs(bs, "center", 0)
        known = masked_input(images, masks)
        y, W = to_model(known), importance_weights(masks)
        z0 = initial_z(bs, 1, bundle.z_dim, 0)

        # one step, inside the real loops
        step_cfg = base_cfg.replace(steps=args.step_steps)
        step_times = {n: [] for n in backends}

        def step_run(name):
            stamps = []
            backends[name].pipeline.search(y, W, step_cfg, z0, progress=lambda _n: stamps.append(time.perf_counter()))
            step_times[name].extend(np.diff(stamps).tolist())

        fns = {n: (lambda n=n: step_run(n)) for n in backends}
        _alternate(fns, args.warmup * 2)
        step_times = {n: [] for n in backends}
        _alternate(fns, args.step_runs)
        results.append(("search_step", bs, step_times))

        # a whole search
        full_cfg = base_cfg.replace(steps=args.steps)
        fns = {n: (lambda n=n: backends[n].pipeline.search(y, W, full_cfg, z0)) for n in backends}
        _alternate(fns, args.warmup * 2) if args.steps <= 200 else None  # long searches need no warm-up
        results.append(("search", bs, _alternate(fns, args.repeats)))

        # inpaint end to end
        fns = {n: (lambda n=n: inpainters[n].inpaint_batch(known, masks, steps=args.inpaint_steps, restarts=1))
               for n in inpainters}
        _alternate(fns, args.warmup * 2)
        results.append(("inpaint", bs, _alternate(fns, args.repeats)))
        print(f"batch {bs} done", file=sys.stderr)

    rows = []
    for what, bs, times in results:
        med = {n: statistics.median(v) for n, v in times.items()}
        rows.append({"benchmark": what, "batch_size": bs, "onnxruntime_median_ms": med["onnxruntime"] * 1e3,
                     "torch_eager_median_ms": med["torch-eager"] * 1e3,
                     "ratio_torch_over_onnxruntime": med["torch-eager"] / med["onnxruntime"],
                     "samples": {n: len(v) for n, v in times.items()},
                     "raw_ms": {n: [round(x * 1e3, 4) for x in v] for n, v in times.items()}})
    header = f"{'benchmark':<13}{'batch':>6}{'onnxruntime ms':>16}{'torch eager ms':>16}{'ratio':>8}{'n':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['benchmark']:<13}{r['batch_size']:>6}{r['onnxruntime_median_ms']:>16.3f}"
              f"{r['torch_eager_median_ms']:>16.3f}{r['ratio_torch_over_onnxruntime']:>7.2f}x"
              f"{r['samples']['onnxruntime']:>6}")
    goal = next((r for r in rows if r["benchmark"] == "search" and r["batch_size"] == 1), None)
    verdict = None
    if goal is not None:
        verdict = goal["ratio_torch_over_onnxruntime"] >= GOAL
        print(f"issue 4 goal (whole search, batch 1, runtime >= {GOAL}x torch eager): "
              f"{goal['ratio_torch_over_onnxruntime']:.2f}x -> {'met' if verdict else 'NOT met'}")
    load_end = os.getloadavg()
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} "
          f"({os.cpu_count()} CPUs; a busy machine lowers both backends, the ratio less so)")
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, {
            "results": rows, "goal": {"ratio": GOAL, "met": verdict},
            "settings": {**vars(args), "bundle": str(bundle.root), "threads": engine.threads,
                         "search": base_cfg.to_dict(), "ratio": "torch eager median / onnxruntime median",
                         "alternation": "A B / B A per round"},
            "environment": environment([ort_be, torch_be], list(load_start), list(load_end)),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
