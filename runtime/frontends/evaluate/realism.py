"""The hole's realism per mask kind: hole SWD of every method, the floor and the K samples,
overall and per Laplacian level."""
from __future__ import annotations

import numpy as np

from .statistics import finite_or_none

REALISM_IMAGES = 2000  # hole SWD over at most the first 2000 images of a mask kind (their outputs are kept in memory)
HOLE_SWD_DESCRIPTION = (
    "realism of the hole: the multi-scale sliced Wasserstein distance (x1e3, lower = closer to real faces; "
    "runtime.imaging.swd.hole_sliced_wasserstein) between the 7x7 neighbourhoods each method's outputs put in "
    "their holes and those of the true faces in the same holes (Laplacian levels 64/32/16, 64 window centres "
    f"per image and level drawn from the hole, seeded by --seed), over the first {REALISM_IMAGES} images of a "
    "mask kind (all of them when fewer): one number, no interval. hole_swd_floor: real faces of other people (the truths shifted by one image) against the "
    "truths in the same holes, the finite-sample floor. A blurred fill scores high, a sharp fill with real "
    "faces' texture near the floor; hole PSNR rewards the opposite (the mean of the faces the known pixels "
    "allow). hole_swd_levels: the same per Laplacian level (64: the finest texture, 32: features a few "
    "pixels across, 16: layout and colour); the fine level also falls when texture that is wrong for the face "
    "is added (another face's detail, matched noise: docs/model.md, Session 46), so read it with the pictures. "
    "samples: the mean over the K sample positions of each position's hole SWD (before the refiner: "
    "the blended search results; after: the final outputs), overall and per level")


def hole_realism(kept: dict, methods: tuple[str, ...], seed: int) -> dict:
    """One mask kind's hole SWD (HOLE_SWD_DESCRIPTION). kept: "truth" uint8 (N,64,64,3), "masks"
    uint8 (N,64,64), each method's outputs uint8 (N,64,64,3) and, with K samples, "searched" and
    "final" uint8 (N,K,64,64,3) -> {method: float | None, "floor": float | None, "levels":
    {method or "floor": {"64", "32", "16"} per Laplacian level}, "samples": {"before_refiner",
    "after_refiner", "before_refiner_levels", "after_refiner_levels"} or None}; None where no image
    has a hole (or, for the floor, fewer than 2 images)."""
    from ...imaging.swd import HoleRealism

    truth = kept["truth"]
    realism = HoleRealism(truth, kept["masks"], seed=seed)  # the truths' side computed once

    def swd(outputs: np.ndarray) -> dict[str, float | None]:
        return {k: finite_or_none(v) for k, v in realism.score(outputs).items()}

    scores = {m: swd(kept[m]) for m in methods}
    scores["floor"] = swd(np.roll(truth, 1, axis=0)) if len(truth) > 1 else None
    out: dict = {m: None if sc is None else sc["swd"] for m, sc in scores.items()}
    out["levels"] = {m: _levels(sc) for m, sc in scores.items()}
    out["samples"] = None
    if "final" in kept:
        def mean_over_positions(stage: str) -> dict[str, float | None]:
            per = [swd(np.ascontiguousarray(kept[stage][:, j])) for j in range(kept[stage].shape[1])]
            return {k: None if any(p[k] is None for p in per) else float(np.mean([p[k] for p in per]))
                    for k in per[0]}

        before, after = mean_over_positions("searched"), mean_over_positions("final")
        out["samples"] = {"before_refiner": before["swd"], "after_refiner": after["swd"],
                          "before_refiner_levels": _levels(before), "after_refiner_levels": _levels(after)}
    return out


def _levels(score: dict | None) -> dict[str, float | None] | None:
    """HoleRealism.score's {"swd64", "swd32", "swd16", ...} -> {"64", "32", "16"} (None stays None)."""
    return None if score is None else {k[3:]: v for k, v in score.items() if k != "swd"}

