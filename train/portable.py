"""The portable resume file: a GAN run's newest resume state in ONE file, so a run can continue
on a machine that has no run folder (`edgefill train gan --resume --portable FILE --out NEW`).

It holds exactly what `--resume` needs and nothing else: the config, the loop's state (step,
epoch position, tick records, best-SWD record), G, D and the EMA G, both Adam states, every RNG
state, plus the best EMA G so far (and its critic) so that export can ship it from the new
machine. Written with torch.save and read with torch.load(weights_only=True); rewritten
atomically (a temporary `.NAME.*` file beside it, then a rename), so a crash or a `kill -STOP`
never leaves a half-written file at the path.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from edgefill.runtime import atomic
from edgefill.runtime.errors import EdgefillError

FORMAT = 1
KIND = "edgefill-gan-resume"


def write_portable(path: str | os.PathLike, config: dict, state: dict, modules: dict[str, torch.nn.Module],
                   train_state: dict, run_dir: str | os.PathLike) -> None:
    from .checkpoint import load_best

    tensors = {f"{name}.{k}": v.detach().cpu().clone() for name, mod in modules.items()
               for k, v in mod.state_dict().items()}
    best = load_best(run_dir)
    payload = {"kind": KIND, "format": FORMAT, "config": config, "state": state, "tensors": tensors,
               "train_state": train_state, "best": best[0] if best else None}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_portable(path: str | os.PathLike) -> dict:
    try:
        payload = torch.load(Path(path), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise EdgefillError(f"{path}: not a readable edgefill resume file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND or payload.get("format") != FORMAT:
        raise EdgefillError(f"{path}: not an edgefill GAN resume file of format {FORMAT}")
    return payload
