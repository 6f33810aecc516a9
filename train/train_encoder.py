"""`edgefill train encoder`: train the search's start network E (DESIGN section 7).

1. Load the frozen G and D (a GAN run or a bundle: train/gan_source.py) and the data; the
   validation faces are the GAN's own hold-out (its val_fraction and seed).
2. Synthetic phase (`synthetic_steps`): z ~ U[-1,1]^z_dim, x = G(z) rounded to uint8 like a
   real image, a random mask of every kind; loss = latent_weight * ||E(x, M) - z||^2 (mean)
   + mean L1 of G(E(x, M)) - x over known pixels. z is known, so this is free supervision.
3. Real phase (`real_steps`): training faces (random flips) under random masks; loss = mean L1
   on known pixels + the W-weighted contextual L1 (the search's own weights, normalised per
   image) + lam * (D(G(E)) - 1)^2: the start the search would walk to; with hole_weight > 0
   also hole_weight * mean L1 of G(E(x)) - truth over the hole (the face is whole at training
   time; E still sees only the known pixels), so E learns the start nearest the truth.
The encoder's input is runtime.core.starts.encoder_input (the function the runtime calls).
Every step's data comes from a generator seeded by (seed, step), so a resumed run continues
exactly. Output folder: checkpoint/ (kind "encoder"), encoder_stepNNNNN.png (columns: masked,
G(E(x)), after eval_steps search steps from E, truth), loss_curve.png, train_log.jsonl (per
evaluation: validation hole PSNR of G(E(x)) and after eval_steps steps, center masks).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.starts import encoder_input
from edgefill.runtime.core.torch_search import torch_search
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.blend import paste
from edgefill.runtime.imaging import metrics
from edgefill.runtime.imaging.images import from_model, to_model
from edgefill.runtime.imaging.masks import TRAINING_MASK_KINDS, importance_weights, make_mask
from edgefill.runtime.imaging.pictures import save_grid

from .checkpoint import resume_run, save_checkpoint
from .config import EncoderConfig, EncoderTrainConfig, to_dict
from .data import load_faces, split_validation
from .device import resolve_device, seed_everything
from .encoder import Encoder
from .gan_source import initial_state, load_gan_source
from .run_state import restore_rng, rng_state, save_loss_curve

VAL_FACES = 64
EVAL_EVERY = 500


def batch_masks(rng: np.random.Generator, n: int) -> np.ndarray:
    """n masks uint8 (n,64,64) of random kinds (every training kind)."""
    kinds = rng.integers(0, len(TRAINING_MASK_KINDS), size=n)
    return np.stack([make_mask(TRAINING_MASK_KINDS[k], rng) for k in kinds])


def hole_psnr(out: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images of the hole PSNR (uint8 RGB), as runtime.imaging.metrics defines it."""
    return float(np.mean(metrics.hole_psnr(out, truth, masks)))


def losses(E, G, D, truth: np.ndarray, masks: np.ndarray, z_true: np.ndarray | None, cfg: EncoderTrainConfig,
           device: torch.device) -> tuple[torch.Tensor, dict]:
    """The phase's loss for one batch (module docstring) and its parts as floats."""
    x_in = torch.from_numpy(encoder_input(truth, masks)).to(device)
    y = torch.from_numpy(to_model(truth)).to(device)
    known = x_in[:, 3:4]
    z_hat = E(x_in)
    x_hat = G(z_hat)
    known_l1 = (known * (x_hat - y).abs()).sum() / (3.0 * known.sum()).clamp_min(1.0)
    parts = {"known_l1": known_l1}
    if z_true is not None:
        parts["latent"] = cfg.latent_weight * torch.mean((z_hat - torch.from_numpy(z_true).to(device)) ** 2)
    else:
        W = torch.from_numpy(importance_weights(masks)).to(device)
        ctx = (W * (x_hat - y).abs()).sum(dim=(1, 2, 3)) / (3.0 * W.sum(dim=(1, 2, 3))).clamp_min(1.0)
        parts["contextual"] = ctx.mean()
        parts["prior"] = cfg.lam * torch.mean((D(x_hat).reshape(-1) - 1.0) ** 2)
        if cfg.hole_weight > 0:
            hole = 1.0 - known
            parts["hole_l1"] = cfg.hole_weight * (hole * (x_hat - y).abs()).sum() / (3.0 * hole.sum()).clamp_min(1.0)
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def evaluate_encoder(E, G, D, faces: np.ndarray, cfg: EncoderTrainConfig, device: torch.device,
                     grid_path: Path | None) -> dict:
    """Center masks on the validation faces: hole PSNR of paste(G(E(x))) and after eval_steps
    search steps started at E (1 restart); a picture of 8 of them."""
    E.eval()
    masks = np.stack([make_mask("center")] * len(faces))
    z0 = E(torch.from_numpy(encoder_input(faces, masks)).to(device)).cpu().numpy()
    start = paste(faces, from_model(G(torch.from_numpy(z0).to(device)).cpu().numpy()), masks)
    scfg = SearchConfig(steps=cfg.eval_steps, restarts=1, lam=1.0, lr=0.01)
    with torch.enable_grad():
        res = torch_search(lambda z: G(z), lambda x: D(x), to_model(faces), importance_weights(masks), scfg,
                           z_dim=z0.shape[1], z0=z0, device=str(device))
    searched = paste(faces, from_model(res.images), masks)
    if grid_path is not None:
        masked = np.where((masks >= 128)[..., None], 255, faces).astype(np.uint8)
        k = min(8, len(faces))
        tiles = np.stack([masked[:k], start[:k], searched[:k], faces[:k]], axis=1).reshape(-1, 64, 64, 3)
        save_grid(grid_path, tiles, ncols=4, scale=2,
                  col_titles=["masked", "G(E(x))", f"{cfg.eval_steps} steps", "truth"])
    E.train()
    return {"val_hole_psnr_encoder": hole_psnr(start, faces, masks),
            f"val_hole_psnr_{cfg.eval_steps}_steps": hole_psnr(searched, faces, masks)}


def train_encoder(cfg: EncoderTrainConfig, data: str, gan: str, out: str, resume: bool = False,
                  progress: bool = True, init: str | None = None) -> dict:
    """Train (or resume) the encoder; returns a summary dict (last validation numbers, speed).
    init: start from this bundle's or encoder run's weights (gan_source.initial_state) instead of random
    ones (a resumed run continues from its own checkpoint instead)."""
    out_dir = Path(out)
    ckpt = None
    if resume:
        ckpt, cfg = resume_run(out_dir, "encoder", EncoderTrainConfig, cfg,
                               keep=("synthetic_steps", "real_steps", "device"))
        gan = ckpt.state.get("gan", gan)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    source = load_gan_source(gan, "--gan")
    G, D = source.generator.to(device), source.discriminator.to(device)
    for p in (*G.parameters(), *D.parameters()):
        p.requires_grad_(False)
    if G.cfg.z_dim != cfg.encoder.z_dim:
        cfg = replace(cfg, encoder=replace(cfg.encoder, z_dim=G.cfg.z_dim))
    faces = load_faces(data, limit=cfg.limit, progress=progress)
    train_idx, val_idx = split_validation(len(faces.images), source.val_fraction or cfg.val_fraction,
                                          source.seed if source.val_fraction else cfg.seed)
    if len(train_idx) < cfg.batch_size:
        raise EdgefillError(f"{len(train_idx)} training faces, fewer than one batch of {cfg.batch_size}")
    val_faces = faces.images[val_idx[:VAL_FACES]] if len(val_idx) else faces.images[train_idx[:8]]

    E = Encoder(cfg.encoder).to(device)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    history: dict[str, list[float]] = {"loss": []}
    step, log = 0, []
    if init is not None and ckpt is None:
        E.load_state_dict(initial_state(init, "encoder", EncoderConfig, cfg.encoder, "--init-encoder"))
    if ckpt is not None:
        E.load_state_dict(ckpt.module_state("encoder"))
        opt.load_state_dict(ckpt.train_state["opt"])
        restore_rng(ckpt.train_state["rng"])
        step, history = ckpt.state["step"], ckpt.state["history"]
    out_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint() -> None:
        state = {"step": step, "history": history, "gan": str(gan), "gan_source": source.kind, "init": init,
                 "data": {"source": faces.source, "train_images": int(len(train_idx))}}
        save_checkpoint(out_dir, "encoder", to_dict(cfg), state, {"encoder": E},
                        {"opt": opt.state_dict(), "rng": rng_state()})

    E.train()
    seen, busy, summary = 0, 0.0, {}
    bar = tqdm(total=cfg.total_steps, initial=step, desc="encoder", unit="step", disable=not progress,
               dynamic_ncols=True)
    while step < cfg.total_steps:
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step])
        masks = batch_masks(rng, cfg.batch_size)
        synthetic = step < cfg.synthetic_steps
        if synthetic:
            z_true = rng.uniform(-1.0, 1.0, (cfg.batch_size, G.cfg.z_dim)).astype(np.float32)
            with torch.no_grad():
                truth = from_model(G(torch.from_numpy(z_true).to(device)).cpu().numpy())
        else:
            z_true = None
            truth = faces.images[rng.choice(train_idx, cfg.batch_size, replace=False)]
            flips = rng.random(cfg.batch_size) < 0.5
            truth = np.where(flips[:, None, None, None], truth[:, :, ::-1], truth)
        loss, parts = losses(E, G, D, truth, masks, z_true, cfg, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not np.isfinite(value):
            raise EdgefillError(f"encoder training diverged at step {step}")
        history["loss"].append(value)
        for k, v in parts.items():
            history.setdefault(k, []).append(v)
        busy += time.perf_counter() - t0
        seen += cfg.batch_size
        step += 1
        bar.update(1)
        bar.set_postfix(phase="synthetic" if synthetic else "real", loss=f"{value:.4f}",
                        ips=f"{seen / max(busy, 1e-9):.0f}")
        end_of_phase = step in (cfg.synthetic_steps, cfg.total_steps)
        if step % EVAL_EVERY == 0 or end_of_phase:
            record = {"step": step, "phase": "synthetic" if synthetic else "real",
                      "images_per_s": seen / max(busy, 1e-9), "device": str(device),
                      **{k: float(np.mean(v[-100:])) for k, v in history.items()},
                      **evaluate_encoder(E, G, D, val_faces, cfg, device, out_dir / f"encoder_step{step:05d}.png")}
            log.append(record)
            with open(out_dir / "train_log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            save_loss_curve(out_dir, history, "encoder loss")
            summary = record
            checkpoint()
        elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            checkpoint()
    bar.close()
    if not summary:
        checkpoint()
    return {**summary, "steps": step, "out": str(out_dir)}
