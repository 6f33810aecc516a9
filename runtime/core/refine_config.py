"""The refiner stage's settings: one frozen dataclass, stored in every bundle manifest ("refine")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    runs once, its differences anchored onto that averaged output.
    A bundle whose manifest has no "refine" entry gets these defaults.
    """

    flip_average: bool = True

    @classmethod
    def _coerce(cls, name: str, value: Any) -> Any:
        return bool(value)  # every field is a switch
