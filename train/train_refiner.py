"""`edgefill train refiner`: train the refiner on the completions it will see at run time.

1. The source (`--gan`): a bundle (its G, D and, above all, its own pipeline: encoder start,
   steps and blend at the bundle's defaults) or a GAN run folder (the torch search from random
   starts). Validation faces are the GAN's own hold-out when it had one (else `val_fraction`).
2. Complete `completions` training faces, each under `masks_per_face` random masks of every
   DESIGN kind, and up to 256 validation faces (train/completions.py); cached in OUT/completions/.
3. Train the refiner (train/refiner.py: the U-Net that sees the hole by default) on the final
   output the product returns, M*y + (1-M)*R(x): `loss` (MSE or L1) over the hole's pixels +
   `ssim_weight` * (1 - SSIM of the whole composite); horizontal flips as augmentation.
Output folder: checkpoint/, refine_epochNNN.png (columns: masked, completion, refined, truth),
loss_curve.png, train_log.jsonl (per epoch: train loss, validation hole PSNR, SSIM and the
border seam of completion and refined output, against the truth's own seam).
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
from edgefill.runtime.imaging import metrics
from edgefill.runtime.imaging.images import refiner_input

from .completions import (BundleCompletions, OpenCVCompletions, TorchCompletions, composite, known_tensor,
                          make_completions)
from .config import GanTrainConfig, RefinerConfig, RefinerTrainConfig, nested_from_dict, to_dict
from .gan_source import initial_state, is_bundle, load_gan_source
from .losses import hole_error, ssim_map
from .photometric import jitter_pair
from .data import epoch_batches, load_faces, split_validation, steps_per_epoch
from .device import resolve_device, seed_everything
from .discriminator import Discriminator
from .generator import Generator
from .refiner import build_refiner, grows_into, grow_state
from .run_state import restore_rng, rng_state, save_loss_curve

VAL_COMPLETIONS = 256


def load_gan(path: str, device: torch.device) -> tuple[Generator, Discriminator, GanTrainConfig]:
    """The G and D a GAN run ships (gan_source: its best EMA G by SWD when it kept one)."""
    from .gan_source import load_gan_source

    ckpt = load_checkpoint(path, kind="gan")
    cfg = nested_from_dict(GanTrainConfig, ckpt.config)
    source = load_gan_source(path, flag="--gan")
    return source.generator.to(device).eval(), source.discriminator.to(device).eval(), cfg


def training_batch(train_set: dict, truth_all: np.ndarray, idx: np.ndarray, flips: np.ndarray, in_channels: int,
                   device: torch.device, photometric: float = 0.0, rng: np.random.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, known) for cached problems idx with their flips: x (B*S, in_channels, 64,64) refiner
    input, y (B*S,3,64,64) truth in [-1,1], known (B*S,1,64,64); S samples per problem (1 when the
    cache holds one completion per mask), rows problem-major. photometric > 0: each problem's
    completion(s) and truth get one lighting change drawn from rng (train/photometric.py) before
    the refiner input (its Telea fill included) is built."""
    comp = train_set["completions"][idx]
    s = comp.shape[1] if comp.ndim == 5 else 1
    comp = comp.reshape(-1, *comp.shape[-3:])
    rows = np.repeat(idx, s)
    flips = np.repeat(flips, s)
    masks = _flip_batch(train_set["masks"][rows], flips)
    comp, truth = _flip_batch(comp, flips), _flip_batch(truth_all[train_set["index"][rows]], flips)
    if photometric > 0:
        comp, truth = jitter_pair(comp, truth, photometric, rng, group=s)
    x = torch.from_numpy(refiner_input(comp, masks, in_channels)).to(device)
    y = torch.from_numpy(to_model(truth)).to(device)
    return x, y, known_tensor(masks).to(device)


def _flip_batch(arr: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Flip (B,H,W[,C]) arrays left-right where flips is True."""
    out = arr.copy()
    out[flips] = out[flips][:, :, ::-1]
    return out


def keep_error(final: torch.Tensor, x: torch.Tensor, known: torch.Tensor, samples: int) -> torch.Tensor:
    """The search's differences kept: hole MSE between each output's deviation from the mean of
    its problem's `samples` outputs and the same deviation of its completion. final, x: (B*S,3,H,W)
    in [-1,1], rows problem-major; known (B*S,1,H,W)."""
    def deviation(t: torch.Tensor) -> torch.Tensor:
        t = t.float().reshape(-1, samples, *t.shape[1:])
        return (t - t.mean(dim=1, keepdim=True)).reshape(-1, *t.shape[2:])

    return hole_error(deviation(final), deviation(x), known, "mse")


def best_of_loss(final: torch.Tensor, y: torch.Tensor, known: torch.Tensor, cfg: RefinerTrainConfig) -> torch.Tensor:
    """Relaxed winner-takes-all over each problem's cfg.samples outputs: every output's own loss
    (hole error + ssim_weight * (1 - SSIM), per image), then cfg.best_of of the problem's loss on
    its best output and the rest on their mean. final, y (B*S,3,H,W) in [-1,1], rows
    problem-major; known (B*S,1,H,W)."""
    each = hole_error(final, y, known, cfg.loss, per_row=True)
    if cfg.ssim_weight > 0:
        each = each + cfg.ssim_weight * (1.0 - ssim_map(final, y).mean(dim=(1, 2, 3)))
    each = each.reshape(-1, cfg.samples)
    return cfg.best_of * each.min(dim=1).values.mean() + (1.0 - cfg.best_of) * each.mean()


def _hole_psnr(refined: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> float:
    hole = masks >= 128
    diff = (refined.astype(np.float64) - truth.astype(np.float64))[hole]
    mse = float(np.mean(diff ** 2)) if diff.size else 0.0
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def completion_source(gan: str, cfg: RefinerTrainConfig, device: torch.device):
    """(source, val_fraction, seed): OpenCVCompletions for fill telea/ns (the GAN source only
    gives the hold-out split), BundleCompletions for a bundle, TorchCompletions for a GAN run."""
    if is_bundle(gan):
        src = load_gan_source(gan, "--gan")
        if cfg.fill != "search":
            return OpenCVCompletions(cfg.fill), src.val_fraction, src.seed
        return BundleCompletions(gan, cfg.samples), src.val_fraction, src.seed
    if cfg.samples > 1:
        raise EdgefillError("--samples-per-mask needs a bundle as --gan (its pipeline places the samples)")
    G, D, gan_cfg = load_gan(gan, device)
    if cfg.fill != "search":
        return OpenCVCompletions(cfg.fill), gan_cfg.val_fraction, gan_cfg.seed
    return TorchCompletions(G, D, cfg.search, device), gan_cfg.val_fraction, gan_cfg.seed


def train_refiner(cfg: RefinerTrainConfig, data: str, gan: str, out: str, resume: bool = False,
                  progress: bool = True, completions_dir: str | None = None, completions_only: bool = False,
                  init: str | None = None) -> dict:
    """Make (or reuse) completions, then train (or resume) the refiner; returns a summary dict.
    completions_dir: the cache (default OUT/completions; runs with the same source, faces, masks
    and seed can share one). completions_only: stop once the cache is complete. init: start from
    this bundle's or refiner run's weights (gan_source.initial_state) instead of random ones."""
    out_dir = Path(out)
    cache = Path(completions_dir) if completions_dir else out_dir / "completions"
    ckpt = None
    if resume:
        ckpt, cfg = resume_run(out_dir, "refiner", RefinerTrainConfig, cfg)
        gan = ckpt.state.get("gan", gan)
    # fine-tune: start from another refiner's weights (checked before any work; a resumed run has its own)
    init_state = (initial_state(init, "refiner", RefinerConfig, cfg.refiner, "--init-refiner", grows_into)
                  if init and ckpt is None else None)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    source, gan_val_fraction, gan_seed = completion_source(gan, cfg, device)
    faces = load_faces(data, limit=cfg.limit, progress=progress)
    if gan_val_fraction > 0:
        train_idx, val_idx = split_validation(len(faces.images), gan_val_fraction, gan_seed)
    else:
        train_idx, val_idx = split_validation(len(faces.images), cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_faces = len(train_idx) if cfg.completions <= 0 else min(cfg.completions, len(train_idx))
    chosen = np.sort(rng.choice(train_idx, size=n_faces, replace=False))
    n_train = n_faces * cfg.masks_per_face
    if n_train < cfg.batch_size // cfg.samples:
        raise EdgefillError(f"{n_train} training completions, fewer than one batch of {cfg.batch_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set = make_completions(source, faces.images, chosen, cache / "train",
                                 cfg.search_batch, cfg.seed, cfg.masks_per_face, progress)
    val_set = None
    if len(val_idx):
        val_set = make_completions(source, faces.images, val_idx[:VAL_COMPLETIONS], cache / "val",
                                   cfg.search_batch, cfg.seed + 1, 1, progress)
    del source
    if completions_only:
        return {"completions": int(n_train), "faces": int(n_faces), "validation": 0 if val_set is None else
                len(val_set["index"]), "cache": str(cache)}

    R = build_refiner(cfg.refiner).to(device)
    if init_state is not None:  # Telea channels at zero weight, new residual blocks as the identity
        R.load_state_dict(grow_state(init_state, R.state_dict()))
    opt = torch.optim.Adam(R.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    use_amp = cfg.amp and device.type == "cuda"
    history: dict[str, list[float]] = {"loss": []}
    epoch, step_in_epoch, global_step, log = 0, 0, 0, []
    if ckpt is not None:
        R.load_state_dict(ckpt.module_state("refiner"))
        opt.load_state_dict(ckpt.train_state["opt"])
        restore_rng(ckpt.train_state["rng"])
        epoch, step_in_epoch, global_step = ckpt.state["epoch"], ckpt.state["step_in_epoch"], ckpt.state["step"]
        history = ckpt.state["history"]

    init_path = ckpt.state.get("init") if ckpt is not None else init  # a resumed run keeps its start

    def checkpoint() -> None:
        state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "step": global_step, "history": history,
                 "gan": str(gan), "init": init_path,
                 "data": {"source": faces.source, "completions": int(n_train),
                                                  "faces": int(n_faces), "masks_per_face": cfg.masks_per_face}}
        save_checkpoint(out_dir, "refiner", to_dict(cfg), state, {"refiner": R},
                        {"opt": opt.state_dict(), "rng": rng_state()})

    truth_all = faces.images
    problems_per_step = cfg.batch_size // cfg.samples  # the same refiner images per step for any samples
    per_epoch = steps_per_epoch(n_train, problems_per_step)
    seen, busy, summary = 0, 0.0, {}
    while epoch < cfg.epochs:
        R.train()
        bar = tqdm(total=per_epoch, initial=step_in_epoch, desc=f"refiner epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not progress, dynamic_ncols=True)
        for i, (idx, flips) in enumerate(epoch_batches(n_train, problems_per_step, cfg.seed, epoch, cfg.flip)):
            if i < step_in_epoch:
                continue
            t0 = time.perf_counter()
            x, y, known = training_batch(train_set, truth_all, idx, flips, cfg.refiner.in_channels, device,
                                         cfg.photometric,
                                         np.random.default_rng([cfg.seed, epoch, i, 36]) if cfg.photometric else None)
            with torch.autocast(device.type, enabled=use_amp):
                refined = R(x)
            final = composite(refined.float(), y, known)
            if cfg.best_of > 0:
                loss = best_of_loss(final, y, known, cfg)
            else:
                loss = hole_error(final, y, known, cfg.loss)
                if cfg.ssim_weight > 0:
                    loss = loss + cfg.ssim_weight * (1.0 - ssim_map(final, y).mean())
            if cfg.samples > 1 and cfg.keep_weight > 0:
                loss = loss + cfg.keep_weight * keep_error(final, x[:, :3], known, cfg.samples)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            if not np.isfinite(value):
                raise EdgefillError(f"refiner training diverged at step {global_step}")
            history["loss"].append(value)
            busy += time.perf_counter() - t0
            seen += len(idx) * cfg.samples
            step_in_epoch, global_step = i + 1, global_step + 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", ips=f"{seen / max(busy, 1e-9):.0f}")
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and step_in_epoch < per_epoch:
                checkpoint()
        bar.close()
        epoch, step_in_epoch = epoch + 1, 0
        record = {"epoch": epoch, "step": global_step, "train_loss": float(np.mean(history["loss"][-per_epoch:])),
                  "images_per_s": seen / max(busy, 1e-9), "device": str(device)}
        if val_set is not None:
            record.update(evaluate_refiner(R, val_set, truth_all, device, out_dir / f"refine_epoch{epoch:03d}.png"))
        save_loss_curve(out_dir, history, f"refiner loss ({cfg.loss} on the hole"
                        + (f" + {cfg.ssim_weight:g} (1 - SSIM))" if cfg.ssim_weight else ")"))
        checkpoint()
        log.append(record)
        with open(out_dir / "train_log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        summary = record
    return {**summary, "epochs": epoch, "steps": global_step, "completions": int(n_train), "out": str(out_dir)}


@torch.no_grad()
def refine_set(R: torch.nn.Module, completions: np.ndarray, masks: np.ndarray, truth: np.ndarray,
               device: torch.device, batch: int = 128) -> np.ndarray:
    """uint8 (N,64,64,3): the product's output M*y + (1-M)*R(x) for cached completions."""
    R.eval()
    out = []
    for s in range(0, len(completions), batch):
        x = torch.from_numpy(refiner_input(completions[s:s + batch], masks[s:s + batch], R.cfg.in_channels))
        y = torch.from_numpy(to_model(truth[s:s + batch])).to(device)
        known = known_tensor(masks[s:s + batch]).to(device)
        out.append(from_model(composite(R(x.to(device)).float(), y, known).cpu().numpy()))
    return np.concatenate(out)


def pairwise_hole_psnr(samples: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images and pairs of the hole PSNR between two of an image's samples: uint8
    (N,S,64,64,3), masks (N,64,64); lower = more different (identical pairs count as 99 dB)."""
    values = []
    hole = masks >= 128
    for i in range(len(samples)):
        for a in range(samples.shape[1]):
            for b in range(a + 1, samples.shape[1]):
                values.append(min(99.0, _hole_psnr(samples[i, a][None], samples[i, b][None], hole[i][None] * 255)))
    return float(np.mean(values)) if values else float("nan")


def evaluate_refiner(R: torch.nn.Module, val_set: dict, truth_all: np.ndarray, device: torch.device,
                     grid_path: Path) -> dict:
    """Validation: hole PSNR, SSIM and border seam of completion vs refined output (the seam
    against the truth's own, runtime.imaging.metrics.seam); saves a picture of 8 examples. With
    S samples per mask the metrics are of sample 0 (the best search loss), plus the mean pairwise
    hole PSNR between the samples before and after refining (the differences the refiner keeps)."""
    comp_all, masks = val_set["completions"], val_set["masks"]
    truth = truth_all[val_set["index"]]
    diversity = {}
    if comp_all.ndim == 5:
        n, s = comp_all.shape[:2]
        refined_all = refine_set(R, comp_all.reshape(n * s, *comp_all.shape[2:]), np.repeat(masks, s, axis=0),
                                 np.repeat(truth, s, axis=0), device).reshape(comp_all.shape)
        diversity = {"val_pairwise_hole_psnr_completion": pairwise_hole_psnr(comp_all, masks),
                     "val_pairwise_hole_psnr_refined": pairwise_hole_psnr(refined_all, masks)}
        comp, refined = comp_all[:, 0], refined_all[:, 0]
    else:
        comp, refined = comp_all, refine_set(R, comp_all, masks, truth, device)
    masked = np.where((masks >= 128)[..., None], 255, truth).astype(np.uint8)
    k = min(8, len(comp))
    tiles = np.stack([masked[:k], comp[:k], refined[:k], truth[:k]], axis=1).reshape(-1, *comp.shape[1:])
    save_grid(grid_path, tiles, ncols=4, scale=2, col_titles=["masked", "completion", "refined", "truth"])
    seam_truth = float(np.nanmean(metrics.seam(truth, masks)))
    return {"val_hole_psnr_completion": _hole_psnr(comp, truth, masks),
            "val_hole_psnr_refined": _hole_psnr(refined, truth, masks),
            "val_ssim_completion": float(np.mean(metrics.ssim(comp, truth))),
            "val_ssim_refined": float(np.mean(metrics.ssim(refined, truth))),
            "val_seam_completion": float(np.nanmean(metrics.seam(comp, masks))),
            "val_seam_refined": float(np.nanmean(metrics.seam(refined, masks))),
            "val_seam_truth": seam_truth, **diversity}
