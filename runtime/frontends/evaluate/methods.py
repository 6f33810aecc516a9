"""Every method's outputs for one batch of holes: OpenCV fills, the refiners on them, and the
search once for the lsgan rows (K samples with run_samples)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...imaging.diffusion import opencv_inpaint
from ...imaging.masks import masked_input
from .config import BASELINE_METHOD, BASELINES, LSGAN_METHODS, REFINED_BASELINES, SAMPLED_METHOD


@dataclass
class BatchOutputs:
    """One batch's outputs: outputs[method] uint8 (N,64,64,3); samples: the lsgan+refiner
    SampleSet (runtime.core.pipeline) when K > 1, else None."""

    outputs: dict
    samples: object = None


def run_methods(truth: np.ndarray, masks: np.ndarray, methods: tuple[str, ...], inpainter, search_cfg,
                seeds: np.ndarray, progress=None, start=None, baseline=None) -> dict[str, np.ndarray]:
    """Every method's uint8 (N,64,64,3) output for one batch (run_batch with one sample)."""
    return run_batch(truth, masks, methods, inpainter, search_cfg, seeds, progress, start, baseline=baseline).outputs


def run_batch(truth: np.ndarray, masks: np.ndarray, methods: tuple[str, ...], inpainter, search_cfg,
              seeds: np.ndarray, progress=None, start=None, samples: int = 1, baseline=None) -> BatchOutputs:
    """Every method's uint8 (N,64,64,3) output for one batch; the search runs once, if at all.
    baseline: the Inpainter whose refiner makes telea+baseline (only with that method).
    start: the pipeline's Start (None: RandomStart); seeds (N,): image i's random restarts start
    from initial_z(1, restarts, z_dim, seeds[i]), so a result does not depend on the batch it was
    searched in. progress: called with 1 after every search step. samples K > 1: that one search
    is Pipeline.run_samples (K per image, the same start and seeds), the lsgan rows come from
    sample 0 (the single output) and BatchOutputs.samples holds the K samples."""
    from ...imaging import blend
    from ...imaging.images import from_model

    masked = masked_input(truth, masks)
    out: dict[str, np.ndarray] = {}
    fills: dict[str, np.ndarray] = {}
    for m in methods:
        if m in BASELINES or m in REFINED_BASELINES or m == BASELINE_METHOD:
            base = m.split("+")[0]
            if base not in fills:
                fills[base] = opencv_inpaint(masked, masks, base)
            refiner = baseline if m == BASELINE_METHOD else inpainter
            out[m] = fills[base] if m == base else refiner.refine(fills[base], masks)
    sset = None
    if any(m in LSGAN_METHODS for m in methods):
        if samples > 1:
            sset = inpainter.pipeline.run_samples(masked, masks, search_cfg, samples=samples, start=start,
                                                  seeds=[int(s) for s in seeds], refine=SAMPLED_METHOD in methods,
                                                  progress=progress)
            first = np.arange(len(masked)) * samples  # sample 0 of each image (start order, image-major)
            generated = from_model(sset.batch.search.images[first])
        else:
            z0 = inpainter.pipeline.start(masked, masks, search_cfg, start, seeds)
            result = inpainter.search(masked, masks, config=search_cfg, z0=z0, progress=progress or False)
            generated = from_model(result.images)
        pasted = blend.paste(masked, generated, masks)
        if "lsgan" in methods:
            out["lsgan"] = pasted
        if "lsgan+poisson" in methods:
            out["lsgan+poisson"] = blend.poisson(masked, generated, masks)
        if "lsgan+refiner" in methods:
            if sset is not None:  # sample 0 is the single output (Pipeline.run_samples)
                out["lsgan+refiner"] = sset.batch.final[first]
            else:
                blended = out.get(f"lsgan+{search_cfg.blend}") if search_cfg.blend == "poisson" else pasted
                if blended is None:
                    blended = blend.blend(search_cfg.blend, masked, generated, masks)
                out["lsgan+refiner"] = inpainter.refine(blended, masks)
    return BatchOutputs(outputs={m: out[m] for m in methods}, samples=sset)
