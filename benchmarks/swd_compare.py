"""Generators compared on fresh sample sets by multi-scale SWD (Karras et al. 2018), with the floor:

    python benchmarks/swd_compare.py SOURCE [SOURCE ...] --data train.npz [--images 4096] [--seeds 11,12,13] [--json out.json]
        [--grid samples.png]

SOURCE is a bundle (its generator), a GAN run folder (its best EMA G by the run's tick SWD,
as `edgefill export` would ship it), or RUN@latest (the run's newest EMA G; its raw G if it has no average). A run's own tick SWD uses one fixed set of z and faces for
the whole run, so picking the best tick also picks that set's noise; this script draws new sets.
For every seed: --images uniform z in [-1,1]^z_dim and as many training faces (both drawn from
the seed, the same for every source), SWD per Laplacian level (64/32/16) and their mean, x1e3,
lower is better. The floor is real against real: two disjoint draws of training faces.
Reports the mean over seeds per source and level; CPU only, torch needed (the `train` extra).
--grid writes 48 samples of each source at `train gan`'s fixed grid z (the same z for every
source and run: train_gan.grid_z), 12 per row at 2x, one block of 4 rows per source, top to bottom, 12 white pixels apart.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LEVELS = ("swd64", "swd32", "swd16", "swd")
GRID_SAMPLES = 48
GRID_GAP = 12  # pixels between two sources' blocks


def mean_levels(rows: list[dict]) -> dict:
    return {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in LEVELS}


def load_generator(src: str):
    """Eval-mode G of a bundle, a run's best EMA G, or (RUN@latest) a run's newest EMA (else raw) G."""
    from edgefill.train.gan_source import load_gan_source

    latest = src.endswith("@latest")
    return load_gan_source(src[:-len("@latest")] if latest else src, best=not latest).generator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="bundles or GAN run folders")
    ap.add_argument("--data", required=True, help=".npz or folder of the training faces")
    ap.add_argument("--images", type=int, default=4096, help="samples and faces per set")
    ap.add_argument("--seeds", default="11,12,13", help="one fresh set per seed")
    ap.add_argument("--json", default=None)
    ap.add_argument("--grid", default=None, help="PNG: 48 samples of each source at train gan's fixed z")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.imaging.swd import sliced_wasserstein
    from edgefill.train.data import load_faces
    from edgefill.runtime.imaging.images import write_image
    from edgefill.runtime.imaging.pictures import image_grid, stack_panels
    from edgefill.train.train_gan import grid_z, sample_images

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        faces = load_faces(args.data, progress=False).images
        if not seeds or args.images < 2 or 2 * args.images > len(faces):
            raise EdgefillError(f"need >= 1 seed and 2 <= --images <= {len(faces) // 2} (the floor draws two sets)")
        gens = {src: load_generator(src) for src in args.sources}
    except EdgefillError as exc:
        print(f"swd_compare: error: {exc}", file=sys.stderr)
        return 2

    if args.grid:
        blocks = []
        for G in gens.values():
            samples = sample_images(G, grid_z(G.cfg.z_dim)[:GRID_SAMPLES], torch.device("cpu"))
            blocks.append(image_grid(samples, ncols=12, scale=2))
        write_image(args.grid, stack_panels(blocks, gap=GRID_GAP))
    report = {"data": args.data, "images": args.images, "seeds": seeds, "sources": {}, "floor": None}
    per = {src: [] for src in args.sources}
    floor = []
    start = time.perf_counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(faces))
        real, other = faces[order[:args.images]], faces[order[args.images:2 * args.images]]
        floor.append(sliced_wasserstein(other, real, seed=seed))
        for src, G in gens.items():
            z = torch.rand(args.images, G.cfg.z_dim, generator=torch.Generator().manual_seed(seed)) * 2 - 1
            with torch.no_grad():
                fake = sample_images(G, z, torch.device("cpu"))
            per[src].append(sliced_wasserstein(fake, real, seed=seed))
        print(f"seed {seed}: floor {floor[-1]['swd']:.2f}; "
              + "; ".join(f"{src} {per[src][-1]['swd']:.2f}" for src in args.sources), file=sys.stderr)
    report["floor"] = mean_levels(floor)
    report["sources"] = {src: {"mean": mean_levels(rows), "per_seed": [round(r["swd"], 3) for r in rows]}
                         for src, rows in per.items()}
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(f"{'source':<40} " + " ".join(f"{k:>7}" for k in LEVELS))
    for name, levels in [("real vs real (floor)", report["floor"])] + [(s, r["mean"]) for s, r in
                                                                       report["sources"].items()]:
        print(f"{name[-40:]:<40} " + " ".join(f"{levels[k]:>7.2f}" for k in LEVELS))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
