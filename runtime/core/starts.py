"""Where the latent search starts: the one seam for start strategies (DESIGN section 7).

Every start returns z0 float32 (N*K, z_dim) in [-1,1] for N images x K restarts, image-major
(image i's restarts are rows i*K .. i*K+K-1), which every search backend takes as is.

    RandomStart()      uniform starts; image i's rows come from initial_z(1, K, z_dim, seeds[i]),
                       so an image's result does not depend on what else is in its batch
    GivenStart(z)      restart 0 of image i starts at z[i] (e.g. the previous video frame's z),
                       the other restarts are random as above
    EncoderStart()     restart 0 of image i starts at E(masked image i, mask i), the bundle's
                       encoder.onnx (an optional graph); the other restarts are random

make_start(init, engine) turns the user's choice ("auto", "random", "encoder") into a Start:
"auto" is the encoder when the bundle has one, else random.

sample_starts(start, engine, images, masks, restarts, seeds, samples, spread) gives K starts per
image for K samples of one hole (image-major, then sample, then restart: N*K*restarts rows);
sample 0 is exactly `start`'s rows, so sample 0 of K is the single output.

A new start is one more class with the same
`z0(engine, images, masks, restarts, seeds)` method: the pipeline calls it, the backends never
see where z0 came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import EdgefillError


def initial_z(n: int, restarts: int, z_dim: int, seed: int | None) -> np.ndarray:
    """Uniform [-1,1] starts, (n * restarts, z_dim) float32, image-major (image i's restarts
    are rows i*restarts .. i*restarts+restarts-1). Shared by every backend so a seed means
    the same starts everywhere."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n * restarts, z_dim)).astype(np.float32)


class Start(Protocol):
    """A start strategy. images uint8 (N,64,64,3) RGB, masks uint8 (N,64,64) 255 = fill, seeds
    one int per image; engine: the pipeline's runtime.core.engine.Engine (a start may run a
    bundle graph on it). Returns float32 (N*restarts, z_dim) in [-1,1]."""

    name: str

    def z0(self, engine, images: np.ndarray, masks: np.ndarray, restarts: int,
           seeds: Sequence[int]) -> np.ndarray: ...


def random_rows(n_images: int, restarts: int, z_dim: int, seeds: Sequence[int]) -> np.ndarray:
    """initial_z(1, restarts, z_dim, seeds[i]) stacked for every image: (N*restarts, z_dim)."""
    if len(seeds) != n_images:
        raise EdgefillError(f"{len(seeds)} seeds for {n_images} images")
    return np.concatenate([initial_z(1, restarts, z_dim, int(s)) for s in seeds]) if n_images else \
        np.zeros((0, z_dim), np.float32)


@dataclass(frozen=True)
class RandomStart:
    """Uniform random starts, seeded per image (module docstring)."""

    name: str = "random"

    def z0(self, engine, images, masks, restarts, seeds):
        return random_rows(len(images), restarts, engine.bundle.z_dim, seeds)


@dataclass(frozen=True, eq=False)
class GivenStart:
    """z float32 (N, z_dim): restart 0 of image i starts at z[i] (clipped to [-1,1]); the other
    restarts are random (RandomStart's rows for the same seeds)."""

    z: np.ndarray
    name: str = "given"

    def z0(self, engine, images, masks, restarts, seeds):
        z_dim = engine.bundle.z_dim
        given = np.clip(np.asarray(self.z, np.float32), -1.0, 1.0)
        if given.shape != (len(images), z_dim):
            raise EdgefillError(f"a given start needs z of shape ({len(images)}, {z_dim}), got {given.shape}")
        rows = random_rows(len(images), restarts, z_dim, seeds)
        rows[::restarts] = given
        return rows


ENCODER_GRAPH = "encoder"
INITS = ("auto", "random", "encoder")


def encoder_input(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The encoder's input, float32 (N,4,64,64): channels 0-2 the known pixels in [-1,1] (RGB,
    0 inside the hole), channel 3 the known-pixel mask M (1 known, 0 to fill). images uint8
    (N,64,64,3) RGB, masks uint8 (N,64,64), 255 = fill. Training uses this same function."""
    from ..imaging.images import to_model

    known = (np.asarray(masks) < 128).astype(np.float32)[:, None]
    return np.concatenate([to_model(images) * known, known], axis=1).astype(np.float32)


@dataclass(frozen=True)
class EncoderStart:
    """Restart 0 of image i from the bundle's encoder, E(encoder_input(images, masks))[i]; the
    other restarts random (RandomStart's rows for the same seeds)."""

    name: str = "encoder"

    def z0(self, engine, images, masks, restarts, seeds):
        if not engine.bundle.has_graph(ENCODER_GRAPH):
            raise EdgefillError(f"bundle {engine.bundle.root} has no encoder; use --init random")
        z = engine.forward(ENCODER_GRAPH, encoder_input(images, masks)) if len(images) else \
            np.zeros((0, engine.bundle.z_dim), np.float32)
        return GivenStart(z).z0(engine, images, masks, restarts, seeds)


def make_start(init: str | None, engine) -> RandomStart | EncoderStart:
    """"auto"/None: the encoder when the bundle has one, else random; "random"; "encoder"
    (EdgefillError when the bundle has none)."""
    init = (init or "auto").lower()
    if init not in INITS:
        raise EdgefillError(f"unknown start {init!r}; use one of {', '.join(INITS)}")
    if init == "auto":
        init = "encoder" if engine.bundle.has_graph(ENCODER_GRAPH) else "random"
    if init == "encoder" and not engine.bundle.has_graph(ENCODER_GRAPH):
        raise EdgefillError(f"bundle {engine.bundle.root} has no encoder; use --init random")
    return EncoderStart() if init == "encoder" else RandomStart()


def sample_seed_rng(seed: int, sample: int) -> np.random.Generator:
    """The generator that places sample `sample` (>= 1) of an image with seed `seed`: a pure
    function of the two, so a request gives the same K pictures in any batch, locally or served."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(sample), 0x5A3])


def sample_starts(start: Start, engine, images: np.ndarray, masks: np.ndarray, restarts: int,
                  seeds: Sequence[int], samples: int, spread: float) -> np.ndarray:
    """K = `samples` starts per image: float32 (N*K*restarts, z_dim), rows ordered image, sample,
    restart. Sample 0 is `start`'s own rows (the single output's start). Sample k >= 1: from a
    random start, fresh uniform rows drawn by sample_seed_rng(seed, k); from any other start (the
    encoder, a given z), the start's rows + spread * N(0, I) from the same generator, clipped to
    [-1,1]: near the face the encoder saw, different enough that the search lands elsewhere."""
    if samples < 1:
        raise EdgefillError("samples must be at least 1")
    n, z_dim = len(images), engine.bundle.z_dim
    base = np.asarray(start.z0(engine, images, masks, restarts, seeds), np.float32).reshape(n, restarts, z_dim)
    out = np.empty((n, samples, restarts, z_dim), np.float32)
    out[:, 0] = base
    for i, seed in enumerate(seeds):
        for k in range(1, samples):
            rng = sample_seed_rng(seed, k)
            if getattr(start, "name", "") == "random":
                out[i, k] = rng.uniform(-1.0, 1.0, size=(restarts, z_dim))
            else:
                out[i, k] = np.clip(base[i] + spread * rng.standard_normal((restarts, z_dim)), -1.0, 1.0)
    return out.reshape(n * samples * restarts, z_dim)
