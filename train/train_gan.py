"""`edgefill train gan`: the LSGAN training loop (CUDA with mixed precision, or CPU).

Output folder: checkpoint/ (resumable), samples_epochNNN.png (fixed-z grids), loss_curve.png,
train_log.jsonl (one JSON line per epoch). The per-epoch data order and flips derive from
(seed, epoch), and RNG state is checkpointed, so a CPU run resumed mid-epoch continues exactly
like an uninterrupted run with the same seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.images import from_model
from edgefill.runtime.imaging.pictures import save_grid

from .checkpoint import resume_run, save_checkpoint
from .config import GanTrainConfig, to_dict
from .data import batch_to_model, epoch_batches, load_faces, split_validation, steps_per_epoch
from .device import resolve_device, seed_everything
from .discriminator import Discriminator
from .generator import Generator
from .losses import d_loss, g_loss
from .run_state import restore_rng, rng_state, save_loss_curve

GRID_SAMPLES = 64


def lsgan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, real: torch.Tensor, z: torch.Tensor, use_amp: bool,
               noise_std: float = 0.0) -> tuple[float, float]:
    """One LSGAN update: D on real (B,3,64,64) and G(z) (detached), then G through the updated D.
    Returns (d_loss, g_loss) as floats, measured before each update.

    Real and fake go through D as ONE batch, so D's BatchNorm statistics are shared. With
    separate batches, BN normalises a batch of near-identical early fakes by its tiny variance;
    a single Adam step then moved D(fake) by ~8 and the base run collapsed (measured: G output
    std across samples 0.035 after one epoch, d_loss ~2.4, g_loss ~8).

    noise_std > 0 adds instance noise (Gaussian, same std on real and fake) to D's inputs: it
    keeps D from separating real and fake perfectly, which with a joint batch alone still let
    the base critic win (d_loss 0.016) while G collapsed to one z-independent template."""
    device_type = real.device.type
    n = real.shape[0]

    def noisy(x: torch.Tensor) -> torch.Tensor:
        return x + noise_std * torch.randn_like(x) if noise_std > 0 else x

    with torch.autocast(device_type, enabled=use_amp):
        fake = G(z)
        scores = D(noisy(torch.cat([real, fake.detach()])))
        loss_d = d_loss(scores[:n], scores[n:])
    opt_d.zero_grad(set_to_none=True)
    scaler.scale(loss_d).backward()
    scaler.step(opt_d)
    with torch.autocast(device_type, enabled=use_amp):
        loss_g = g_loss(D(noisy(torch.cat([real, fake])))[n:])
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(loss_g).backward()
    scaler.step(opt_g)
    scaler.update()
    return loss_d.item(), loss_g.item()


def train_gan(cfg: GanTrainConfig, data: str, out: str, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) an LSGAN; returns a summary dict (epochs, steps, images_per_s, ...)."""
    out_dir = Path(out)
    ckpt = None
    if resume:
        ckpt, cfg = resume_run(out_dir, "gan", GanTrainConfig, cfg)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    faces = load_faces(data, limit=cfg.limit, progress=progress)
    train_idx, _ = split_validation(len(faces.images), cfg.val_fraction, cfg.seed)
    images = faces.images[train_idx]
    if len(images) < cfg.batch_size:
        raise EdgefillError(f"{data}: {len(images)} training images, fewer than one batch of {cfg.batch_size}")

    G, D = Generator(cfg.generator).to(device), Discriminator(cfg.discriminator).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    z_gen = torch.Generator().manual_seed(cfg.seed + 1)
    fixed_z = torch.rand(GRID_SAMPLES, cfg.generator.z_dim, generator=torch.Generator().manual_seed(1234)) * 2 - 1
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    epoch, step_in_epoch, global_step = 0, 0, 0
    if ckpt is not None:
        G.load_state_dict(ckpt.module_state("generator"))
        D.load_state_dict(ckpt.module_state("discriminator"))
        ts = ckpt.train_state
        opt_g.load_state_dict(ts["opt_g"])
        opt_d.load_state_dict(ts["opt_d"])
        scaler.load_state_dict(ts["scaler"]) if use_amp and ts.get("scaler") else None
        z_gen.set_state(ts["z_gen"])
        restore_rng(ts["rng"])
        epoch, step_in_epoch, global_step = ckpt.state["epoch"], ckpt.state["step_in_epoch"], ckpt.state["step"]
        history = ckpt.state["history"]

    out_dir.mkdir(parents=True, exist_ok=True)
    per_epoch = steps_per_epoch(len(images), cfg.batch_size)

    def checkpoint() -> None:
        state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "step": global_step, "history": history,
                 "data": {"source": faces.source, "images": int(len(images)), "skipped": faces.skipped}}
        train_state = {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "z_gen": z_gen.get_state(),
                       "rng": rng_state(), "scaler": scaler.state_dict() if use_amp else {}}
        save_checkpoint(out_dir, "gan", to_dict(cfg), state, {"generator": G, "discriminator": D}, train_state)

    summary = {"device": str(device), "images": int(len(images)), "skipped": faces.skipped}
    seen, busy = 0, 0.0
    while epoch < cfg.epochs:
        G.train()
        D.train()
        bar = tqdm(total=per_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not progress, dynamic_ncols=True)
        for i, (idx, flips) in enumerate(epoch_batches(len(images), cfg.batch_size, cfg.seed, epoch, cfg.flip)):
            if i < step_in_epoch:
                continue
            t0 = time.perf_counter()
            real = torch.from_numpy(batch_to_model(images[idx], flips)).to(device, non_blocking=True)
            z = (torch.rand(len(idx), cfg.generator.z_dim, generator=z_gen) * 2 - 1).to(device)
            noise = cfg.instance_noise * max(0.0, 1.0 - global_step / max(1, cfg.instance_noise_steps))
            ld, lg = lsgan_step(G, D, opt_g, opt_d, scaler, real, z, use_amp, noise)
            if not (np.isfinite(ld) and np.isfinite(lg)):
                raise EdgefillError(f"training diverged at step {global_step} (d_loss={ld}, g_loss={lg})")
            history["d_loss"].append(ld)
            history["g_loss"].append(lg)
            busy += time.perf_counter() - t0
            seen += len(idx)
            step_in_epoch, global_step = i + 1, global_step + 1
            bar.update(1)
            bar.set_postfix(d=f"{ld:.3f}", g=f"{lg:.3f}", ips=f"{seen / max(busy, 1e-9):.0f}")
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and step_in_epoch < per_epoch:
                checkpoint()
        bar.close()
        epoch, step_in_epoch = epoch + 1, 0
        G.eval()
        with torch.no_grad():
            samples = from_model(G(fixed_z.to(device)).float().cpu().numpy())
        save_grid(out_dir / f"samples_epoch{epoch:03d}.png", samples, ncols=8, scale=2)
        save_loss_curve(out_dir, history, f"LSGAN {cfg.preset}")
        checkpoint()
        record = {"epoch": epoch, "step": global_step, "d_loss": float(np.mean(history["d_loss"][-per_epoch:])),
                  "g_loss": float(np.mean(history["g_loss"][-per_epoch:])),
                  "images_per_s": seen / max(busy, 1e-9), "device": str(device)}
        with open(out_dir / "train_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    summary.update({"epochs": epoch, "steps": global_step,
                    "images_per_s": seen / busy if busy else None, "out": str(out_dir)})
    return summary
