"""The refiner stage's settings: one frozen dataclass, stored in every bundle manifest ("refine")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EdgefillError
from .manifest_settings import ManifestSettings


@dataclass(frozen=True)
class RefineConfig(ManifestSettings):
    """How the pipeline applies a refiner graph (runtime.core.pipeline.Pipeline.refine).

    flip_average: run the refiner on the blended face and on its mirror image (left-right, the
    mask mirrored with it and the refiner's input built from the mirrored pair) as one batch of
    2N, mirror the second output back and average the two before the known pixels are pasted
    back. The refiners are trained with left-right flips as augmentation, so both views are
    in-distribution; their mean has lower error than either (docs/model.md, "Session 35": +0.17
    to +0.26 dB hole PSNR on the hold-out, every mask kind) at one more refiner pass in the same
    call. False: one pass.
    It applies to the bundle's refiner (the single output, sample 0 of K); the samples refiner
    runs once, its samples placed around that averaged output.

    sample_scale: how far K samples per hole sit from the single output, in proportion to how
    unsure the refiner is of that face (Pipeline.run_samples, blend.calibrated). Each sample
    k >= 1 differs from the single output by an RMS of sample_scale * sqrt(D + 1) levels over
    the hole, D being the mean squared difference (levels^2, over the hole) between the
    refiner's two views of the face, itself and its mirror image, which tracks the single
    output's own error (correlation 0.78 in log on the hold-out, center holes). The samples keep
    their differences from each other, found by the search and kept by the samples refiner; only
    their common offset and their sizes change. 0: the samples refiner's differences from
    sample 0 as they are (sessions 27-36). docs/samples.md, "Session 37", measured the choice
    (1.6 then; 1.7 in session 38, chosen again for the winner-takes-all samples refiner; 1.75
    in session 39, for the three-point refiner average, whose two views disagree less; 1.8 since
    session 40, for the five-point average).
    A bundle whose manifest has no "refine" entry, or an entry without a field, gets these
    defaults.
    """

    flip_average: bool = True
    sample_scale: float = 1.8

    def __post_init__(self) -> None:
        try:
            ok = bool(np.isfinite(float(self.sample_scale)) and float(self.sample_scale) >= 0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise EdgefillError(f"sample_scale must be a finite number >= 0, got {self.sample_scale!r}")

    @classmethod
    def _coerce(cls, name: str, value: Any) -> Any:
        if name != "sample_scale":
            return bool(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise EdgefillError(f"sample_scale must be a number, got {value!r}") from None
