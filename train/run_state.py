"""Bookkeeping shared by both training loops: RNG capture/restore, run-folder pictures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgefill.runtime.imaging.plots import save_line_plot


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def smooth(values: list[float], window: int = 25) -> np.ndarray:
    arr = np.asarray(values, np.float64)
    if len(arr) < window:
        return arr
    kernel = np.ones(window) / window
    return np.convolve(arr, kernel, mode="valid")


def save_loss_curve(out_dir: Path, history: dict[str, list[float]], title: str) -> None:
    save_line_plot(out_dir / "loss_curve.png", {k: smooth(v) for k, v in history.items()},
                   title=title, xlabel="step", ylabel="loss")
