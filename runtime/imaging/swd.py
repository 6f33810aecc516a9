"""Multi-scale sliced Wasserstein distance (SWD) between two sets of face images, numpy only.

Karras et al. 2018 (ProGAN, section 5 and its `sliced_wasserstein.py`), needing no downloaded
network:

- each image (uint8 RGB, 64x64) is taken to [-1, 1] and decomposed into a Laplacian pyramid
  (5x5 binomial filter, reflect borders): levels 64, 32 (band-pass) and 16 (the low-pass rest);
- from every level, `descriptors` random 7x7x3 neighbourhoods per image (147 values each), at
  the same random positions for the k-th image of either set (so a set against itself gives
  exactly 0); a larger set contributes a random subset as large as the smaller one;
- the descriptors of each set are normalised per colour channel (their own mean and std over
  every descriptor and position of that level);
- for each of `repeats` rounds, `projections` random unit directions; both sets are projected,
  the projections sorted, and the mean absolute difference of the sorted values is the sliced
  distance; it is averaged over the directions and the rounds;
- reported x1e3 per level ("swd64", "swd32", "swd16") and their mean ("swd").

hole_sliced_wasserstein (HoleRealism for many outputs against one reference) is the same distance
read from the hole only: paired sets, each image's windows centred in its own hole (the mask
max-pooled to each level), so it measures how real the texture, layout and colour a fill puts in
the hole look (`edgefill evaluate`'s hole SWD).

The result depends only on the images and `seed` (positions, subsets and directions come from
numpy's default_rng(seed)). Lower is better; two samples of the same distribution do not
give 0 (a finite-sample floor: measure it with real against real of the same counts). Cost:
~2k vs 2k images at the defaults takes a few seconds on 2 CPU cores (sorting dominates).
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgefillError

LEVELS = (64, 32, 16)
PATCH = 7
_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float32) / 16.0


def _blur(x: np.ndarray) -> np.ndarray:
    """Separable 5x5 binomial filter of (N,H,W,C) float32, reflect borders."""
    p = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    h = np.zeros((x.shape[0], x.shape[1], p.shape[2], x.shape[3]), np.float32)
    for i in range(5):
        h += _BINOMIAL[i] * p[:, i:i + x.shape[1]]
    out = np.zeros(x.shape, np.float32)
    for i in range(5):
        out += _BINOMIAL[i] * h[:, :, i:i + x.shape[2]]
    return out


def _down(x: np.ndarray) -> np.ndarray:
    return _blur(x)[:, ::2, ::2, :]


def _up(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    u = np.zeros((n, 2 * h, 2 * w, c), np.float32)
    u[:, ::2, ::2, :] = x
    return _blur(u) * 4.0


def laplacian_pyramid(images: np.ndarray, levels: int = len(LEVELS), chunk: int = 64) -> list[np.ndarray]:
    """uint8 (N,H,W,3) -> [band 0 (N,H,W,3), band 1 (N,H/2,W/2,3), ..., low-pass (N,H/2^(L-1),...)]
    in float32, from images scaled to [-1, 1]. Computed `chunk` images at a time (cache-sized)."""
    parts = []
    for start in range(0, len(images), chunk):
        g = images[start:start + chunk].astype(np.float32) / 127.5 - 1.0
        pyramid = []
        for _ in range(levels - 1):
            small = _down(g)
            pyramid.append(g - _up(small))
            g = small
        pyramid.append(g)
        parts.append(pyramid)
    return [np.concatenate([p[i] for p in parts]) for i in range(levels)]


def _descriptors(level: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(N,H,W,3) level + top-left corners ys, xs (N,K) -> (147, N*K) float32: the 7x7x3
    neighbourhoods as columns (channel-major), normalised per channel by their own mean and std."""
    n, _, _, c = level.shape
    windows = np.lib.stride_tricks.sliding_window_view(level, (PATCH, PATCH), axis=(1, 2))  # (n,h-6,w-6,3,7,7)
    desc = windows[np.arange(n)[:, None], ys, xs].reshape(-1, c, PATCH * PATCH)  # (M, 3, 49)
    desc = np.ascontiguousarray(desc.transpose(1, 2, 0))  # (3, 49, M)
    flat = desc.reshape(c, -1)
    mean = flat.mean(axis=1, dtype=np.float64)
    std = flat.std(axis=1, dtype=np.float64)
    desc -= mean.astype(np.float32)[:, None, None]
    desc /= np.maximum(std, 1e-8).astype(np.float32)[:, None, None]
    return desc.reshape(c * PATCH * PATCH, -1)


def _directions(rng: np.random.Generator, projections: int, dim: int) -> np.ndarray:
    """`projections` random unit directions in `dim` dimensions: float32 (projections, dim)."""
    dirs = rng.standard_normal((projections, dim)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return dirs


def _sliced_distance(a: np.ndarray, b: np.ndarray, projections: int, repeats: int,
                     rng: np.random.Generator) -> float:
    """a, b (D, M) descriptor columns -> mean over repeats and directions of the sliced W1."""
    dists = []
    for _ in range(repeats):
        dirs = _directions(rng, projections, a.shape[0])
        pa = dirs @ a  # (projections, M): contiguous rows sort fastest
        pb = dirs @ b
        pa.sort(axis=1)
        pb.sort(axis=1)
        pa -= pb
        dists.append(float(np.abs(pa).mean()))
    return float(np.mean(dists))


def _check(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise EdgefillError(f"SWD: {what} must be uint8 (N,H,W,3) RGB, got {images.dtype} {images.shape}")
    if images.shape[1] < PATCH * 2 ** (len(LEVELS) - 1) or images.shape[1] % 2 ** (len(LEVELS) - 1):
        raise EdgefillError(f"SWD: {what} of {images.shape[1]}x{images.shape[2]} are too small or not divisible")
    return images


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, descriptors: int = 64, projections: int = 128,
                       repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """Multi-scale SWD (x1e3) between image sets a and b, uint8 (N,64,64,3) RGB (module docstring).
    Returns {"swd64": ..., "swd32": ..., "swd16": ..., "swd": mean of the levels}."""
    a, b = _check(a, "the first set"), _check(b, "the second set")
    if a.shape[1:] != b.shape[1:]:
        raise EdgefillError(f"SWD: image sizes differ ({a.shape[1:]} vs {b.shape[1:]})")
    rng = np.random.default_rng(seed)
    m = min(len(a), len(b))
    out = {}
    for i, (la, lb) in enumerate(zip(laplacian_pyramid(a), laplacian_pyramid(b))):
        # the same corners for image k of either set (identical sets give exactly 0); the larger
        # set contributes a random subset of m images per level
        h, w = la.shape[1:3]
        ys = rng.integers(0, h - PATCH + 1, size=(m, descriptors))
        xs = rng.integers(0, w - PATCH + 1, size=(m, descriptors))
        pick_a = np.sort(rng.choice(len(a), m, replace=False)) if len(a) > m else np.arange(m)
        pick_b = np.sort(rng.choice(len(b), m, replace=False)) if len(b) > m else np.arange(m)
        da, db = _descriptors(la[pick_a], ys, xs), _descriptors(lb[pick_b], ys, xs)
        out[f"swd{h}"] = 1e3 * _sliced_distance(da, db, projections, repeats, rng)
    out["swd"] = float(np.mean(list(out.values())))
    return out


def _hole_corners(masks: np.ndarray, size: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (N, count) of 7x7 windows on a level of `size` pixels whose centre lies in
    the hole: the masks (N,H,W), 255 = fill, max-pooled to that level (a level pixel is in the hole
    when any pixel it summarises is), centres drawn uniformly with replacement from each image's
    hole, windows shifted inside the level at its border."""
    n, h = masks.shape[:2]
    f = h // size
    pooled = (masks >= 128).reshape(n, size, f, size, f).any(axis=(2, 4)).reshape(n, -1)
    counts = pooled.sum(axis=1)
    order = np.argsort(~pooled, axis=1, kind="stable")  # each image's hole pixels first, in raster order
    pick = np.minimum((rng.random((n, count)) * counts[:, None]).astype(np.int64), counts[:, None] - 1)
    centres = np.take_along_axis(order, pick, axis=1)
    half = PATCH // 2
    ys = np.clip(centres // size - half, 0, size - PATCH)
    xs = np.clip(centres % size - half, 0, size - PATCH)
    return ys, xs


class HoleRealism:
    """The hole SWD (hole_sliced_wasserstein) against one fixed reference: the window centres, the
    projection directions and the reference's sorted projections are computed once, so scoring
    many methods' outputs on the same faces and holes (evaluate) sorts only their own projections.
    reference uint8 (N,64,64,3) RGB and masks uint8 (N,64,64), 255 = fill, paired image by image;
    images without a hole are left out (then every score is NaN)."""

    def __init__(self, reference: np.ndarray, masks: np.ndarray, *, descriptors: int = 64, projections: int = 128,
                 repeats: int = 4, seed: int = 0):
        b = _check(reference, "the reference")
        masks = np.asarray(masks)
        if masks.shape != b.shape[:3]:
            raise EdgefillError(f"hole SWD expects paired reference (N,H,W,3) and masks (N,H,W); got "
                                f"{b.shape}, {masks.shape}")
        self.shape = b.shape
        self.keep = (masks >= 128).reshape(len(masks), -1).any(axis=1)
        self.levels: list = []  # per level: (size, ys, xs, [(directions, sorted reference projections)])
        if not self.keep.any():
            return
        masks = masks[self.keep]
        rng = np.random.default_rng(seed)
        for lb in laplacian_pyramid(b[self.keep]):
            size = lb.shape[1]
            ys, xs = _hole_corners(masks, size, descriptors, rng)
            db = _descriptors(lb, ys, xs)
            rounds = []
            for _ in range(repeats):
                dirs = _directions(rng, projections, db.shape[0])
                pb = dirs @ db
                pb.sort(axis=1)
                rounds.append((dirs, pb))
            self.levels.append((size, ys, xs, rounds))

    def score(self, outputs: np.ndarray) -> dict[str, float]:
        """outputs uint8 (N,64,64,3) RGB, paired with the reference -> {"swd64", "swd32", "swd16",
        "swd"} (x1e3, lower = closer to the reference's holes); NaN for every key without a hole."""
        a = _check(outputs, "the outputs")
        if a.shape != self.shape:
            raise EdgefillError(f"hole SWD expects paired outputs and reference; got {a.shape}, {self.shape}")
        if not self.levels:
            return {**{f"swd{s}": float("nan") for s in LEVELS}, "swd": float("nan")}
        out = {}
        for la, (size, ys, xs, rounds) in zip(laplacian_pyramid(a[self.keep]), self.levels):
            da = _descriptors(la, ys, xs)
            dists = []
            for dirs, pb in rounds:
                pa = dirs @ da
                pa.sort(axis=1)
                pa -= pb
                dists.append(float(np.abs(pa).mean()))
            out[f"swd{size}"] = 1e3 * float(np.mean(dists))
        out["swd"] = float(np.mean(list(out.values())))
        return out


def hole_sliced_wasserstein(outputs: np.ndarray, reference: np.ndarray, masks: np.ndarray, *,
                            descriptors: int = 64, projections: int = 128, repeats: int = 4,
                            seed: int = 0) -> dict[str, float]:
    """The multi-scale SWD (x1e3, lower is better) of the HOLE: how far the 7x7 neighbourhoods that
    `outputs` put in their holes are, as a distribution, from those of `reference` (real faces) in
    the same holes. outputs and reference uint8 (N,64,64,3) RGB, paired: image k of either set is
    read through masks[k] (uint8 (N,64,64), 255 = fill), at the same `descriptors` window centres
    drawn from that hole (max-pooled to each Laplacian level: 64, 32, 16); images without a hole
    are left out. Identical sets give exactly 0; a fill that matches real faces' texture, layout and
    colour scores near the floor that real faces of other people in the same holes give (a
    finite-sample floor: measure it with reference[perm] against reference); a blurred fill scores
    high at the fine level (swd64). Returns {"swd64", "swd32", "swd16", "swd"}, or NaN for every key
    when no image has a hole. Scoring several outputs against one reference: HoleRealism (which
    checks the inputs)."""
    return HoleRealism(reference, masks, descriptors=descriptors, projections=projections, repeats=repeats,
                       seed=seed).score(outputs)
