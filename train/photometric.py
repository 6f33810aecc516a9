"""The refiner's lighting augmentation: one random photometric change per training problem, applied
alike to its completion and its truth, so the refiner must read the hole's brightness and colour
from the known pixels around it instead of from the training faces' average lighting.

Why: a refiner trained longer on CelebA's crops drifts toward their typical lighting. Session 36
measured it on the train hold-out (center, 200 faces): 2 more epochs left the fill ~1.9 levels
darker on average and lost 0.44 dB on the same faces at half contrast (0.9 dB on the one person in
the video tuning clips), while gaining on the plain hold-out. At strength 1 the refiner gains on
every lighting shift of benchmarks/lighting.py over the same run without it (docs/model.md,
"Session 36"); flat, evenly lit faces still trail the older refiner's.

The change, per problem, on RGB in [0, 1] (strength s scales every range; s = 0 is the identity):
- gamma: a ** g, g = exp(U(-0.3, 0.3) s)
- contrast around the truth's mean after the gamma (the same pivot for the pair, so their known
  pixels stay equal): m + c (a - m), c = exp(U(-0.25, 0.25) s)
- brightness x colour cast: a * b * k_ch, b = exp(U(-0.25, 0.25) s), k_ch = exp(N(0, 0.06 s)) per channel
then clipped to [0, 1] and rounded back to uint8. Deterministic in the generator it is given (the
training loop seeds it from (seed, epoch, step), so a resumed run augments as an unbroken one).
Training only: nothing of it exists at export.
"""
from __future__ import annotations

import numpy as np

GAMMA, CONTRAST, BRIGHTNESS, CAST = 0.3, 0.25, 0.25, 0.06


def draw_params(n: int, strength: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n problems' parameters: gamma, contrast, brightness float32 (n,), cast float32 (n,3)."""
    s = float(strength)
    return {"gamma": np.exp(rng.uniform(-GAMMA, GAMMA, n) * s).astype(np.float32),
            "contrast": np.exp(rng.uniform(-CONTRAST, CONTRAST, n) * s).astype(np.float32),
            "brightness": np.exp(rng.uniform(-BRIGHTNESS, BRIGHTNESS, n) * s).astype(np.float32),
            "cast": np.exp(rng.normal(0.0, CAST * s, (n, 3))).astype(np.float32)}


def _gamma(images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """uint8 (n,H,W,3) -> float32 in [0, 1] with problem i's gamma."""
    return (images.astype(np.float32) / 255.0) ** params["gamma"][:, None, None, None]


def _rest(a: np.ndarray, params: dict[str, np.ndarray], pivot: np.ndarray) -> np.ndarray:
    """float32 (n,H,W,3) after the gamma -> uint8: contrast around pivot (n,), brightness and cast."""
    p = pivot[:, None, None, None]
    a = p + params["contrast"][:, None, None, None] * (a - p)
    a = a * (params["brightness"][:, None] * params["cast"])[:, None, None, :]
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jitter_pair(completions: np.ndarray, truth: np.ndarray, strength: float, rng: np.random.Generator,
                group: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The same change for row i of completions and of truth (uint8 (n,H,W,3) each; rows paired),
    one change per `group` consecutive rows (a problem's samples); strength 0 returns them unchanged."""
    if strength <= 0:
        return completions, truth
    params = {k: np.repeat(v, group, axis=0) for k, v in draw_params(len(truth) // group, strength, rng).items()}
    truth_g = _gamma(truth, params)
    pivot = truth_g.mean(axis=(1, 2, 3))  # the truth's, for both: their known pixels stay equal
    return _rest(_gamma(completions, params), params, pivot), _rest(truth_g, params, pivot)
