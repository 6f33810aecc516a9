"""LSGAN completions for refiner training: search + paste-blend under random masks, cached.

Chunk k of the cache (`completions/chunk_00k.npz`) holds, for `search_batch` training images:
`index` int64 (B,) into the training array, `masks` uint8 (B,64,64) 255=fill, `completions`
uint8 (B,64,64,3) RGB (M*y + (1-M)*G(z_best)), `loss` float32 (B,). Chunks are written
atomically, so a resumed run skips the finished ones and redoes at most one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime.atomic import atomic_path
from edgefill.runtime.imaging.blend import paste
from edgefill.runtime.imaging.images import from_model, known_from_mask, to_model
from edgefill.runtime.imaging.masks import TRAINING_MASK_KINDS, importance_weights, make_mask
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.torch_search import torch_search


def draw_masks(n: int, seed: int, kinds: tuple[str, ...] = TRAINING_MASK_KINDS) -> np.ndarray:
    """n masks, uint8 (n,64,64), kinds cycling in a seeded random order over all DESIGN types."""
    rng = np.random.default_rng([seed, 17])
    choice = rng.integers(0, len(kinds), size=n)
    return np.stack([make_mask(kinds[c], rng) for c in choice])


def make_completions(G: torch.nn.Module, D: torch.nn.Module, images: np.ndarray, indices: np.ndarray,
                     search: SearchConfig, cache_dir: Path, chunk: int, seed: int, device: torch.device,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Complete images[indices] under random masks (cached); returns the concatenated arrays."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    masks_all = draw_masks(len(indices), seed)
    n_chunks = (len(indices) + chunk - 1) // chunk
    parts = []
    bar = tqdm(total=len(indices), desc="completions", unit="img", disable=not progress, dynamic_ncols=True)
    for k in range(n_chunks):
        path = cache_dir / f"chunk_{k:03d}.npz"
        sl = slice(k * chunk, min((k + 1) * chunk, len(indices)))
        if path.is_file():
            with np.load(path) as f:
                part = {key: f[key] for key in f.files}
            if np.array_equal(part["index"], indices[sl]):
                parts.append(part)
                bar.update(sl.stop - sl.start)
                continue
        idx, masks = indices[sl], masks_all[sl]
        y = to_model(images[idx])
        W = importance_weights(masks)
        result = torch_search(lambda z: G(z), lambda x: D(x), y, W, search, z_dim=G.cfg.z_dim,
                              seed=seed * 100003 + k, device=str(device))
        part = {"index": idx, "masks": masks, "completions": paste(images[idx], from_model(result.images), masks),
                "loss": result.loss.astype(np.float32)}
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
