"""Completions for refiner training: what the product hands the refiner, under random masks, cached.

Two ways to complete a face (the refiner must be trained on what it will see at run time):
- BundleCompletions: the runtime Pipeline of an exported bundle, at that bundle's own defaults
  (the encoder start and its few steps when the bundle has an encoder, the bundle's blend):
  exactly the product's completion, and cheap (a few ms a face on a CPU with the encoder);
- TorchCompletions: a GAN run's G and D (no encoder yet): the torch latent search from random
  starts, then the search config's blend;
- OpenCVCompletions: cv2.inpaint (Telea or Navier-Stokes, as `edgefill evaluate` runs it): the
  no-GAN baseline's input, for a refiner trained the same way on a diffusion fill.
BundleCompletions(samples=S) gives S completions per mask from S starts (the product's
`--samples`): `completions` is then uint8 (B,S,64,64,3) and `loss` (B,S), best first.
Every method sees only the masked face (hole pixels set to grey 128), like evaluate.

Chunk k of the cache (`DIR/chunk_00k.npz`) holds, for `chunk` problems: `index` int64 (B,) into
the training array, `masks` uint8 (B,64,64) 255=fill, `completions` uint8 (B,64,64,3) RGB (the
blended search result), `loss` float32 (B,). A face appears `masks_per_face` times, under
different masks. Chunks are written atomically, so a resumed run skips the finished ones and
redoes at most one; `DIR/source.json` records what made them, and a cache made by something
else is refused rather than mixed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime.atomic import atomic_path
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.torch_search import torch_search
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.blend import blend
from edgefill.runtime.imaging.images import from_model, known_from_mask, to_model
from edgefill.runtime.imaging.masks import TRAINING_MASK_KINDS, importance_weights, make_mask, masked_input


def draw_masks(n: int, seed: int, kinds: tuple[str, ...] = TRAINING_MASK_KINDS) -> np.ndarray:
    """n masks, uint8 (n,64,64), kinds cycling in a seeded random order over all DESIGN types."""
    rng = np.random.default_rng([seed, 17])
    choice = rng.integers(0, len(kinds), size=n)
    return np.stack([make_mask(kinds[c], rng) for c in choice])


@dataclass
class BundleCompletions:
    """The product's completion: Pipeline(bundle).run at the bundle's defaults, refiner off."""

    bundle: str
    samples: int = 1

    def __post_init__(self) -> None:
        from edgefill.runtime.core.pipeline import Pipeline

        self.pipeline = Pipeline(self.bundle, provider="auto")
        self.start = self.pipeline.make_start("auto")
        self.config = self.pipeline.config(start=self.start.name)

    def describe(self) -> dict:
        described = {"kind": "bundle", "bundle": str(self.bundle), "start": self.start.name,
                     "search": self.config.to_dict()}
        return {**described, "samples": self.samples} if self.samples > 1 else described

    def complete(self, masked: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        seeds = [seed * 100003 + i for i in range(len(masked))]
        if self.samples > 1:
            sset = self.pipeline.run_samples(masked, masks, self.config, samples=self.samples, start=self.start,
                                             seeds=seeds, refine=False)
            return sset.searched, sset.loss.astype(np.float32)
        res = self.pipeline.run(masked, masks, self.config, start=self.start, seeds=seeds, refine=False)
        return res.searched, np.asarray(res.search.loss, np.float32)


@dataclass
class OpenCVCompletions:
    """OpenCV's diffusion fill (method "telea" or "ns", radius and call as in `edgefill evaluate`)."""

    method: str

    def describe(self) -> dict:
        from edgefill.runtime.imaging.diffusion import INPAINT_RADIUS

        return {"kind": "opencv", "method": self.method, "radius": INPAINT_RADIUS}

    def complete(self, masked: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from edgefill.runtime.imaging.diffusion import opencv_inpaint

        return opencv_inpaint(masked, masks, self.method), np.zeros(len(masked), np.float32)


@dataclass
class TorchCompletions:
    """A GAN run's completion: the torch latent search (random starts), then `search.blend`."""

    G: torch.nn.Module
    D: torch.nn.Module
    search: SearchConfig
    device: torch.device

    def describe(self) -> dict:
        return {"kind": "torch_search", "start": "random", "search": self.search.to_dict()}

    def complete(self, masked: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        result = torch_search(lambda z: self.G(z), lambda x: self.D(x), to_model(masked), importance_weights(masks),
                              self.search, z_dim=self.G.cfg.z_dim, seed=seed, device=str(self.device))
        return blend(self.search.blend, masked, from_model(result.images), masks), result.loss.astype(np.float32)


def _check_source(cache_dir: Path, described: dict) -> None:
    record = cache_dir / "source.json"
    if record.is_file():
        if json.loads(record.read_text()) != described:
            raise EdgefillError(f"{cache_dir} holds completions made differently ({record}); "
                                "delete the folder or choose another --out")
        return
    with atomic_path(record) as tmp:
        Path(tmp).write_text(json.dumps(described, indent=1, sort_keys=True))


def make_completions(source, images: np.ndarray, indices: np.ndarray, cache_dir: Path, chunk: int, seed: int,
                     masks_per_face: int = 1, progress: bool = True) -> dict[str, np.ndarray]:
    """Complete images[indices] (each under `masks_per_face` random masks) with `source`
    (BundleCompletions or TorchCompletions), cached (module docstring); the concatenated arrays."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    problems = np.repeat(indices, masks_per_face)
    _check_source(cache_dir, {**source.describe(), "masks_per_face": masks_per_face, "seed": seed,
                              "problems": len(problems),
                              "problems_sha256": hashlib.sha256(problems.astype(np.int64).tobytes()).hexdigest()})
    masks_all = draw_masks(len(problems), seed)
    n_chunks = (len(problems) + chunk - 1) // chunk
    parts = []
    bar = tqdm(total=len(problems), desc=f"completions {cache_dir.name}", unit="img", disable=not progress,
               dynamic_ncols=True)
    for k in range(n_chunks):
        path = cache_dir / f"chunk_{k:03d}.npz"
        sl = slice(k * chunk, min((k + 1) * chunk, len(problems)))
        if path.is_file():
            with np.load(path) as f:
                part = {key: f[key] for key in f.files}
            if np.array_equal(part["index"], problems[sl]) and np.array_equal(part["masks"], masks_all[sl]):
                parts.append(part)
                bar.update(sl.stop - sl.start)
                continue
        idx, masks = problems[sl], masks_all[sl]
        completions, loss = source.complete(masked_input(images[idx], masks), masks, seed * 1009 + k)
        part = {"index": idx, "masks": masks, "completions": completions, "loss": loss}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **part)
        parts.append(part)
        bar.update(len(idx))
    bar.close()
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def composite(refined: torch.Tensor, y: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Final refiner output M*y + (1-M)*R(x); all (B,3|1,64,64) in [-1,1], known = 1 on known pixels."""
    return known * y + (1.0 - known) * refined


def known_tensor(masks: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(known_from_mask(masks))
