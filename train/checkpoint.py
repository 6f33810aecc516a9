"""Checkpoints: a folder `checkpoint/` inside a run's output folder, holding

- `checkpoint.json`: {"kind": "gan"|"refiner"|"encoder", "format": 1, "config": {...}, "state": {...}}
- `weights.safetensors`: model tensors (prefixes `generator.`, `discriminator.`, `refiner.`)
- `train_state.pt`: optimiser and RNG state, read back with torch.load(weights_only=True)

Saving writes `checkpoint.new/` and swaps it in with renames, so a crash never leaves a
half-written checkpoint; loading falls back to `checkpoint.old/` if a swap was interrupted.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from edgefill.runtime.atomic import swap_dir
from edgefill.runtime.errors import EdgefillError

FORMAT = 1
CHECKPOINT_DIR = "checkpoint"


@dataclass
class Checkpoint:
    kind: str
    config: dict
    state: dict
    tensors: dict[str, torch.Tensor]
    train_state: dict | None
    path: Path

    def module_state(self, prefix: str) -> dict[str, torch.Tensor]:
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


def save_checkpoint(run_dir: str | os.PathLike, kind: str, config: dict, state: dict,
                    modules: dict[str, torch.nn.Module], train_state: dict) -> Path:
    run_dir = Path(run_dir)
    final, new, old = run_dir / CHECKPOINT_DIR, run_dir / f"{CHECKPOINT_DIR}.new", run_dir / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, mod in modules.items()
               for k, v in mod.state_dict().items()}
    save_file(tensors, str(new / "weights.safetensors"))
    torch.save(train_state, new / "train_state.pt")
    (new / "checkpoint.json").write_text(json.dumps(
        {"kind": kind, "format": FORMAT, "config": config, "state": state}, indent=2) + "\n")
    swap_dir(new, final, old)
    return final


BEST_DIR = "best"


def save_best(run_dir: str | os.PathLike, tensors: dict[str, torch.Tensor], record: dict) -> Path:
    """The run's best weights so far (`best/weights.safetensors`: the EMA G as `generator.*` and the
    critic of that tick as `discriminator.*`) and `best/best.json` (the record: swd, step, images
    seen), each written atomically, weights first: best.json never names weights not yet there."""
    from edgefill.runtime import atomic

    best = Path(run_dir) / BEST_DIR
    best.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(best / "weights.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    atomic.write_json(best / "best.json", {**record, "weights": "EMA generator, lowest SWD so far"})
    return best


def load_best(run_dir: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, record) of a run's best/ folder, or None when the run has none."""
    best = Path(run_dir) / BEST_DIR
    if not (best / "best.json").is_file():
        return None
    try:
        return load_file(str(best / "weights.safetensors")), json.loads((best / "best.json").read_text())
    except Exception as exc:
        raise EdgefillError(f"{best}: damaged best weights ({type(exc).__name__}: {exc})") from None


def find_checkpoint(path: str | os.PathLike) -> Path | None:
    """Accept a run folder or the checkpoint folder itself; None when there is none."""
    p = Path(path)
    for cand in (p, p / CHECKPOINT_DIR, p / f"{CHECKPOINT_DIR}.old"):
        if (cand / "checkpoint.json").is_file():
            return cand
    return None


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, with_train_state: bool = False) -> Checkpoint:
    """Load a checkpoint; `kind` ("gan" or "refiner") makes a checkpoint of another kind an error."""
    ckpt_dir = find_checkpoint(path)
    if ckpt_dir is None:
        raise EdgefillError(f"no edgefill checkpoint in {path} (expected {CHECKPOINT_DIR}/checkpoint.json)")
    try:
        meta = json.loads((ckpt_dir / "checkpoint.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgefillError(f"{ckpt_dir}/checkpoint.json is unreadable: {exc}") from None
    if meta.get("format") != FORMAT or "kind" not in meta:
        raise EdgefillError(f"{ckpt_dir}: not an edgefill checkpoint of format {FORMAT}")
    if kind is not None and meta["kind"] != kind:
        raise EdgefillError(f"{path} is a {meta['kind']} checkpoint, expected a {kind} checkpoint")
    try:
        tensors = load_file(str(ckpt_dir / "weights.safetensors"))
        train_state = (torch.load(ckpt_dir / "train_state.pt", weights_only=True)
                       if with_train_state else None)
    except Exception as exc:
        raise EdgefillError(f"{ckpt_dir}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
    return Checkpoint(kind=meta["kind"], config=meta["config"], state=meta.get("state", {}),
                      tensors=tensors, train_state=train_state, path=ckpt_dir)


def resume_run(out_dir: str | os.PathLike, kind: str, config_cls, cfg,
               keep: tuple[str, ...] = ("epochs", "device")):
    """For `--resume`: the run's checkpoint (with optimiser/RNG state) and its saved config,
    keeping only the fields named in `keep` (the run's length and device) from `cfg`. An error
    when there is nothing to resume."""
    from .config import nested_from_dict

    if find_checkpoint(out_dir) is None:
        raise EdgefillError(f"--resume: no checkpoint in {out_dir}")
    ckpt = load_checkpoint(out_dir, kind=kind, with_train_state=True)
    saved = nested_from_dict(config_cls, ckpt.config)
    return ckpt, config_cls(**{**saved.__dict__, **{k: getattr(cfg, k) for k in keep}})
