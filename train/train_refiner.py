"""`edgefill train refiner`: train the report's autoencoder on LSGAN completions.

1. Load the GAN checkpoint (G and D, eval mode) and the data; the validation images are the
   GAN run's own hold-out when it had one (else `val_fraction` of the data).
2. Complete `completions` training images (and up to 256 validation images) under random masks
   of every DESIGN kind with the torch latent search (`search.steps`, fewer than at inference,
   so training stays affordable); completions are cached in OUT/completions/.
3. Train the Refiner with MSE between the final output M*y + (1-M)*R(x) and the ground truth
   (the pixels the product actually returns), horizontal flips as augmentation.
Output folder: checkpoint/, refine_epochNNN.png (columns: masked, completion, refined, truth),
loss_curve.png, train_log.jsonl (per epoch: train MSE, validation MSE and PSNR on the hole).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.images import from_model, to_model
from edgefill.runtime.imaging.pictures import save_grid

from .checkpoint import load_checkpoint, resume_run, save_checkpoint
from .completions import composite, known_tensor, make_completions
from .config import GanTrainConfig, RefinerTrainConfig, nested_from_dict, to_dict
from .data import epoch_batches, load_faces, split_validation, steps_per_epoch
from .device import resolve_device, seed_everything
from .discriminator import Discriminator
from .generator import Generator
from .refiner import Refiner
from .run_state import restore_rng, rng_state, save_loss_curve

VAL_COMPLETIONS = 256


def load_gan(path: str, device: torch.device) -> tuple[Generator, Discriminator, GanTrainConfig]:
    ckpt = load_checkpoint(path, kind="gan")
    cfg = nested_from_dict(GanTrainConfig, ckpt.config)
    G, D = Generator(cfg.generator), Discriminator(cfg.discriminator)
    G.load_state_dict(ckpt.module_state("generator"))
    D.load_state_dict(ckpt.module_state("discriminator"))
    return G.to(device).eval(), D.to(device).eval(), cfg


def _flip_batch(arr: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Flip (B,H,W[,C]) arrays left-right where flips is True."""
    out = arr.copy()
    out[flips] = out[flips][:, :, ::-1]
    return out


def _hole_psnr(refined: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> float:
    hole = masks >= 128
    diff = (refined.astype(np.float64) - truth.astype(np.float64))[hole]
    mse = float(np.mean(diff ** 2)) if diff.size else 0.0
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def train_refiner(cfg: RefinerTrainConfig, data: str, gan: str, out: str, resume: bool = False,
                  progress: bool = True) -> dict:
    """Make (or reuse) completions, then train (or resume) the refiner; returns a summary dict."""
    out_dir = Path(out)
    ckpt = None
    if resume:
        ckpt, cfg = resume_run(out_dir, "refiner", RefinerTrainConfig, cfg)
        gan = ckpt.state.get("gan", gan)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    G, D, gan_cfg = load_gan(gan, device)
    faces = load_faces(data, limit=cfg.limit, progress=progress)
    if gan_cfg.val_fraction > 0:
        train_idx, val_idx = split_validation(len(faces.images), gan_cfg.val_fraction, gan_cfg.seed)
    else:
        train_idx, val_idx = split_validation(len(faces.images), cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_train = len(train_idx) if cfg.completions <= 0 else min(cfg.completions, len(train_idx))
    chosen = np.sort(rng.choice(train_idx, size=n_train, replace=False))
    if n_train < cfg.batch_size:
        raise EdgefillError(f"{n_train} training completions, fewer than one batch of {cfg.batch_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set = make_completions(G, D, faces.images, chosen, cfg.search, out_dir / "completions" / "train",
                                 cfg.search_batch, cfg.seed, device, progress)
    val_set = None
    if len(val_idx):
        val_set = make_completions(G, D, faces.images, val_idx[:VAL_COMPLETIONS], cfg.search,
                                   out_dir / "completions" / "val", cfg.search_batch, cfg.seed + 1, device, progress)
    del G, D

    R = Refiner(cfg.refiner).to(device)
    opt = torch.optim.Adam(R.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    use_amp = cfg.amp and device.type == "cuda"
    history: dict[str, list[float]] = {"mse": []}
    epoch, step_in_epoch, global_step, log = 0, 0, 0, []
    if ckpt is not None:
        R.load_state_dict(ckpt.module_state("refiner"))
        opt.load_state_dict(ckpt.train_state["opt"])
        restore_rng(ckpt.train_state["rng"])
        epoch, step_in_epoch, global_step = ckpt.state["epoch"], ckpt.state["step_in_epoch"], ckpt.state["step"]
        history = ckpt.state["history"]

    def checkpoint() -> None:
        state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "step": global_step, "history": history,
                 "gan": str(gan), "data": {"source": faces.source, "completions": int(n_train)}}
        save_checkpoint(out_dir, "refiner", to_dict(cfg), state, {"refiner": R},
                        {"opt": opt.state_dict(), "rng": rng_state()})

    truth_all = faces.images
    per_epoch = steps_per_epoch(n_train, cfg.batch_size)
    seen, busy, summary = 0, 0.0, {}
    while epoch < cfg.epochs:
        R.train()
        bar = tqdm(total=per_epoch, initial=step_in_epoch, desc=f"refiner epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not progress, dynamic_ncols=True)
        for i, (idx, flips) in enumerate(epoch_batches(n_train, cfg.batch_size, cfg.seed, epoch, cfg.flip)):
            if i < step_in_epoch:
                continue
            t0 = time.perf_counter()
            x = torch.from_numpy(to_model(_flip_batch(train_set["completions"][idx], flips))).to(device)
            y = torch.from_numpy(to_model(_flip_batch(truth_all[train_set["index"][idx]], flips))).to(device)
            known = known_tensor(_flip_batch(train_set["masks"][idx], flips)).to(device)
            with torch.autocast(device.type, enabled=use_amp):
                refined = R(x)
            loss = torch.mean((composite(refined.float(), y, known) - y) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            if not np.isfinite(value):
                raise EdgefillError(f"refiner training diverged at step {global_step}")
            history["mse"].append(value)
            busy += time.perf_counter() - t0
            seen += len(idx)
            step_in_epoch, global_step = i + 1, global_step + 1
            bar.update(1)
            bar.set_postfix(mse=f"{value:.4f}", ips=f"{seen / max(busy, 1e-9):.0f}")
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and step_in_epoch < per_epoch:
                checkpoint()
        bar.close()
        epoch, step_in_epoch = epoch + 1, 0
        record = {"epoch": epoch, "step": global_step, "train_mse": float(np.mean(history["mse"][-per_epoch:])),
                  "images_per_s": seen / max(busy, 1e-9), "device": str(device)}
        if val_set is not None:
            record.update(evaluate_refiner(R, val_set, truth_all, device, out_dir / f"refine_epoch{epoch:03d}.png"))
        save_loss_curve(out_dir, history, "refiner MSE")
        checkpoint()
        log.append(record)
        with open(out_dir / "train_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        summary = record
    return {**summary, "epochs": epoch, "steps": global_step, "completions": int(n_train), "out": str(out_dir)}


@torch.no_grad()
def evaluate_refiner(R: Refiner, val_set: dict, truth_all: np.ndarray, device: torch.device, grid_path: Path) -> dict:
    """Validation: hole PSNR of completion vs refined output; saves a picture of 8 examples."""
    R.eval()
    comp = val_set["completions"]
    truth = truth_all[val_set["index"]]
    masks = val_set["masks"]
    refined = []
    for s in range(0, len(comp), 128):
        x = torch.from_numpy(to_model(comp[s:s + 128])).to(device)
        y = torch.from_numpy(to_model(truth[s:s + 128])).to(device)
        known = known_tensor(masks[s:s + 128]).to(device)
        refined.append(from_model(composite(R(x).float(), y, known).cpu().numpy()))
    refined = np.concatenate(refined)
    masked = np.where((masks >= 128)[..., None], 255, truth).astype(np.uint8)
    k = min(8, len(comp))
    tiles = np.stack([masked[:k], comp[:k], refined[:k], truth[:k]], axis=1).reshape(-1, *comp.shape[1:])
    save_grid(grid_path, tiles, ncols=4, scale=2, col_titles=["masked", "completion", "refined", "truth"])
    return {"val_hole_psnr_completion": _hole_psnr(comp, truth, masks),
            "val_hole_psnr_refined": _hole_psnr(refined, truth, masks),
            "val_mse_refined": float(np.mean((to_model(refined) - to_model(truth)) ** 2))}
