"""`edgefill train gan`: the LSGAN training loop (CUDA with mixed precision, or CPU), built to
run for hours across sessions (DESIGN section 10).

Recipe: LSGAN losses, Adam; the critic sees real and fake as one batch (shared BN statistics),
optionally through DiffAugment (train/augment.py) and instance noise; horizontal flips of the
real faces; an exponential moving average of G (parameters and BatchNorm buffers, half-life
`ema_kimg` thousand images, ramped up over the first images) is the generator that ships.

The run folder tells its own story. Every tick (each `checkpoint_minutes` of wall time, every
`checkpoint_every` steps if set, at the end, and at SIGTERM/SIGINT):
- `checkpoint/` (train/checkpoint.py): G, D, the EMA G, both optimisers, every RNG (torch's,
  the z generator's, the augmentation's), the step counter and position in the epoch's order,
  the tick records and the best-SWD record; written atomically;
- `train_log.jsonl`: one JSON line per tick (losses, images/s, images seen, the multi-scale SWD
  of the EMA G's samples against real training faces - and of the raw G's, `swd_raw` - sample
  diversity), rewritten atomically
  from the checkpoint's own records, so it always agrees with the checkpoint;
- `samples_latest.png`: the EMA G at fixed z; kept as `samples_NNNNNNk.png` (after NNNNNN
  thousand images) at the first tick and once per 100k images; `swd_curve.png`, `loss_curve.png`;
- `best/`: the EMA G (and the critic of that tick) with the lowest SWD so far; this is what
  `edgefill export --checkpoint RUN` ships.
With `portable`, the newest resume state (and the best EMA G) is also written, atomically, to
ONE file, from which `--resume` can continue on a machine that has no run folder.

Exactness: the per-epoch data order and flips derive from (seed, epoch), the z and augmentation
generators and torch's RNG are checkpointed, and ticks draw on none of them, so a CPU run
resumed from any checkpoint ends tensor-for-tensor equal to an uninterrupted one.
"""
from __future__ import annotations

import copy
import hashlib
import json
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgefill.runtime import atomic
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.images import from_model
from edgefill.runtime.imaging.pictures import save_grid
from edgefill.runtime.imaging.plots import save_line_plot
from edgefill.runtime.imaging.swd import sliced_wasserstein

from .augment import diff_augment, parse_policy
from .checkpoint import find_checkpoint, load_checkpoint, save_best, save_checkpoint
from .config import GanTrainConfig, nested_from_dict, to_dict
from .data import batch_to_model, epoch_batches, load_faces, split_validation, steps_per_epoch
from .device import resolve_device, seed_everything
from .discriminator import Discriminator
from .generator import Generator
from .losses import d_loss, g_loss
from .portable import read_portable, write_portable
from .run_state import restore_rng, rng_state

GRID_SAMPLES = 64
GRID_Z_SEED = 1234
GRID_KEEP_EVERY = 100_000  # images between the grids kept for good (samples_latest.png is every tick's)
SWD_Z_SEED = 4321
SWD_SEED = 0
EMA_RAMPUP = 0.05  # the EMA's half-life is at most this fraction of the images seen so far (StyleGAN2-ADA)


def lsgan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, real: torch.Tensor, z: torch.Tensor, use_amp: bool,
               noise_std: float = 0.0, augment=None) -> tuple[float, float]:
    """One LSGAN update: D on real (B,3,64,64) and G(z) (detached), then G through the updated D.
    Returns (d_loss, g_loss) as floats, measured before each update. use_amp: autocast (fp16 on
    CUDA, bf16 on CPU). augment: None or a function applied to D's whole input batch (DiffAugment).

    Real and fake go through D as ONE batch, so D's BatchNorm statistics are shared. With
    separate batches, BN normalises a batch of near-identical early fakes by its tiny variance;
    a single Adam step then moved D(fake) by ~8 and the base run collapsed (measured: G output
    std across samples 0.035 after one epoch, d_loss ~2.4, g_loss ~8).

    noise_std > 0 adds instance noise (Gaussian, same std on real and fake) to D's inputs: it
    keeps D from separating real and fake perfectly, which with a joint batch alone still let
    the base critic win (d_loss 0.016) while G collapsed to one z-independent template."""
    device_type = real.device.type
    n = real.shape[0]

    def critic_input(x: torch.Tensor) -> torch.Tensor:
        if augment is not None:
            x = augment(x)
        return x + noise_std * torch.randn_like(x) if noise_std > 0 else x

    with torch.autocast(device_type, enabled=use_amp):
        fake = G(z)
        scores = D(critic_input(torch.cat([real, fake.detach().to(real.dtype)])))
        loss_d = d_loss(scores[:n], scores[n:])
    opt_d.zero_grad(set_to_none=True)
    scaler.scale(loss_d).backward()
    scaler.step(opt_d)
    with torch.autocast(device_type, enabled=use_amp):
        loss_g = g_loss(D(critic_input(torch.cat([real, fake.to(real.dtype)])))[n:])
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(loss_g).backward()
    scaler.step(opt_g)
    scaler.update()
    return loss_d.item(), loss_g.item()


def ema_beta(cfg: GanTrainConfig, images_seen: int) -> float:
    """The EMA's decay per step: half-life min(ema_kimg * 1000, EMA_RAMPUP * images seen) images."""
    half_life = min(cfg.ema_kimg * 1000.0, EMA_RAMPUP * images_seen)
    return 0.5 ** (cfg.batch_size / half_life) if half_life > 0 else 0.0


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model, for parameters AND floating buffers (BN running
    mean/var); integer buffers (BN's batch counter) are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - beta)
    for e, b in zip(ema.buffers(), model.buffers()):
        if b.dtype.is_floating_point:
            e.lerp_(b, 1.0 - beta)
        else:
            e.copy_(b)


def data_fingerprint(images: np.ndarray) -> str:
    """A short hash of the training images a run sees (their count and an evenly spaced sample),
    so a resume on other data is refused instead of silently continuing a different order."""
    step = max(1, len(images) // 256)
    h = hashlib.sha256(str(images.shape).encode())
    h.update(np.ascontiguousarray(images[::step]).tobytes())
    return h.hexdigest()[:16]


def grid_z(z_dim: int) -> torch.Tensor:
    """The run's fixed picture z: (GRID_SAMPLES, z_dim) float32, uniform in [-1, 1], the same for
    every run and generator (GRID_Z_SEED), so grids of different Gs show the same z."""
    return torch.rand(GRID_SAMPLES, z_dim, generator=torch.Generator().manual_seed(GRID_Z_SEED)) * 2 - 1


@torch.no_grad()
def sample_images(G: Generator, z: torch.Tensor, device: torch.device, batch: int = 256) -> np.ndarray:
    """uint8 (N,64,64,3) RGB samples of G in eval mode (fp32), restoring G's mode afterwards."""
    was = G.training
    G.eval()
    out = [from_model(G(z[i:i + batch].to(device)).float().cpu().numpy()) for i in range(0, len(z), batch)]
    G.train(was)
    return np.concatenate(out)


def diversity(images: np.ndarray) -> float:
    """Mean over pixels of the standard deviation across the set, in [-1,1] units (a collapsed G
    gives ~0; real faces ~0.5)."""
    return float((images.astype(np.float32) / 127.5 - 1.0).std(axis=0).mean())


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop finishes its step, writes a checkpoint and returns."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = self.signal or signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _resume_source(out_dir: Path, portable: str | None):
    """The newest resume state: the run folder's checkpoint or the portable file, whichever has
    more steps. Returns (config dict, state, tensors, train_state, best tensors or None, origin)."""
    candidates = []
    if find_checkpoint(out_dir) is not None:
        ck = load_checkpoint(out_dir, kind="gan", with_train_state=True)
        candidates.append((ck.config, ck.state, ck.tensors, ck.train_state, None, str(ck.path)))
    if portable and Path(portable).is_file():
        p = read_portable(portable)
        candidates.append((p["config"], p["state"], p["tensors"], p["train_state"], p["best"], str(portable)))
    if not candidates:
        where = f"{out_dir}" + (f" or {portable}" if portable else "")
        raise EdgefillError(f"--resume: no checkpoint in {where}")
    return max(candidates, key=lambda c: c[1].get("step", 0))


def train_gan(cfg: GanTrainConfig, data: str, out: str, resume: bool = False, progress: bool = True,
              portable: str | None = None, log=None, resume_overrides: tuple[str, ...] = ()) -> dict:
    """Train (or resume) an LSGAN; returns a summary dict (epochs, steps, images_per_s, ...).
    portable: also keep the newest resume state in this one file (and resume from it when it is
    newer than the run folder's checkpoint). log: a function taking one line per tick (default:
    stderr). resume_overrides: more config fields that a resumed run takes from `cfg` (beside
    its length, device and tick settings): "cpu_bf16" (numerics only, the state is the same),
    "lr_g"/"lr_d" (a later phase at lower rates: Adam's moments are kept, its rate replaced),
    "ema_kimg", "diffaugment" (a later phase without an augmentation, e.g. colour). The run's saved
    config records them, so later resumes keep them.
    A SIGTERM/SIGINT ends the run after the current step with a checkpoint; the summary
    then has "stopped": the signal's name."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out)
    resumed = None
    if resume:
        resumed = _resume_source(out_dir, portable)
        saved = nested_from_dict(GanTrainConfig, resumed[0])
        keep = ("epochs", "device", "checkpoint_minutes", "checkpoint_every", *resume_overrides)
        cfg = GanTrainConfig(**{**saved.__dict__, **{k: getattr(cfg, k) for k in keep}})
        if cfg.diffaugment != saved.diffaugment:
            log(f"--resume: DiffAugment policy {saved.diffaugment or 'off'!r} -> {cfg.diffaugment or 'off'!r}")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    faces = load_faces(data, limit=cfg.limit, progress=progress)
    train_idx, _ = split_validation(len(faces.images), cfg.val_fraction, cfg.seed)
    images = faces.images[train_idx]
    if len(images) < cfg.batch_size:
        raise EdgefillError(f"{data}: {len(images)} training images, fewer than one batch of {cfg.batch_size}")
    fingerprint = data_fingerprint(images)

    G, D = Generator(cfg.generator).to(device), Discriminator(cfg.discriminator).to(device)
    G_ema = copy.deepcopy(G).eval()
    for p in G_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    use_amp = (cfg.amp and device.type == "cuda") or (cfg.cpu_bf16 and device.type == "cpu")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    policy = parse_policy(cfg.diffaugment)
    z_gen = torch.Generator().manual_seed(cfg.seed + 1)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 2)
    augment = (lambda x: diff_augment(x, policy, aug_gen)) if policy else None
    fixed_z = grid_z(cfg.generator.z_dim)

    n_swd = min(cfg.swd_images, len(images))
    swd_real = images[np.sort(np.random.default_rng([cfg.seed, 7]).permutation(len(images))[:n_swd])]
    swd_z = torch.rand(n_swd, cfg.generator.z_dim, generator=torch.Generator().manual_seed(SWD_Z_SEED)) * 2 - 1

    state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "images_seen": 0, "ticks": [],
             "since_tick": {"d_loss": 0.0, "g_loss": 0.0, "steps": 0}, "best": None, "train_seconds": 0.0,
             "data": {"source": faces.source, "images": int(len(images)), "skipped": faces.skipped,
                      "fingerprint": fingerprint}}
    best_tensors = None
    if resumed is not None:
        _, rstate, tensors, ts, best_tensors, origin = resumed
        if rstate.get("data", {}).get("fingerprint") not in (None, fingerprint):
            raise EdgefillError(f"--resume: {data} is not the data this run was trained on "
                                f"({rstate['data'].get('images')} images from {rstate['data'].get('source')})")
        mods = {"generator": G, "discriminator": D, "generator_ema": G_ema}
        for name, mod in mods.items():
            sub = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            if not sub and name == "generator_ema":  # a run from before the EMA: start it at G
                sub = G.state_dict()
            mod.load_state_dict(sub)
        opt_g.load_state_dict(ts["opt_g"])
        opt_d.load_state_dict(ts["opt_d"])
        saved_lr = (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"])
        for opt, lr in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):  # the config's rates (an override on resume)
            for group in opt.param_groups:
                group["lr"] = lr
        if scaler.is_enabled() and ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        z_gen.set_state(ts["z_gen"])
        if "aug_gen" in ts:
            aug_gen.set_state(ts["aug_gen"])
        restore_rng(ts["rng"])
        state.update({k: v for k, v in rstate.items() if k != "data"})
        state.setdefault("images_seen", state["step"] * cfg.batch_size)
        log(f"resumed from {origin} at step {state['step']} ({state['images_seen']} images seen)"
            + ("" if saved_lr == (cfg.lr_g, cfg.lr_d) else
               f"; learning rates G {saved_lr[0]:g} -> {cfg.lr_g:g}, D {saved_lr[1]:g} -> {cfg.lr_d:g}"))

    out_dir.mkdir(parents=True, exist_ok=True)
    if best_tensors is not None:  # resumed from the portable file: its best, not a stale folder's, is the run's
        save_best(out_dir, best_tensors, state["best"])
    per_epoch = steps_per_epoch(len(images), cfg.batch_size)

    def write_state() -> None:
        train_state = {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "z_gen": z_gen.get_state(),
                       "aug_gen": aug_gen.get_state(), "rng": rng_state(),
                       "scaler": scaler.state_dict() if scaler.is_enabled() else {}}
        modules = {"generator": G, "discriminator": D, "generator_ema": G_ema}
        save_checkpoint(out_dir, "gan", to_dict(cfg), state, modules, train_state)
        if portable:
            write_portable(portable, to_dict(cfg), state, modules, train_state, out_dir)

    step_times: list[float] = []
    session = {"images": 0, "busy": 0.0}
    tick_wall = [time.monotonic()]

    def tick(stopping: bool = False) -> None:
        now = time.monotonic()
        since = state["since_tick"]
        record = {"tick": len(state["ticks"]) + 1, "step": state["step"], "epoch": state["epoch"],
                  "images_seen": state["images_seen"],
                  "d_loss": since["d_loss"] / since["steps"] if since["steps"] else None,
                  "g_loss": since["g_loss"] / since["steps"] if since["steps"] else None,
                  # median step time: robust to the process being paused (kill -STOP) mid-step
                  "images_per_s": cfg.batch_size / float(np.median(step_times)) if step_times else None,
                  "images_per_s_wall": (since["steps"] * cfg.batch_size / (now - tick_wall[0])
                                        if since["steps"] else None),
                  "instance_noise": noise_at(state["step"]), "ema_beta": ema_beta(cfg, state["images_seen"]),
                  "lr_g": cfg.lr_g, "lr_d": cfg.lr_d, "diffaugment": cfg.diffaugment,
                  "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        state["train_seconds"] += now - tick_wall[0]
        if n_swd >= 2 and not stopping:
            fake = sample_images(G_ema, swd_z, device)
            swd = sliced_wasserstein(fake, swd_real, seed=SWD_SEED)
            record.update(swd)
            # the raw G too, so the log shows whether the average earns its place (it ships either way)
            record["swd_raw"] = sliced_wasserstein(sample_images(G, swd_z, device), swd_real, seed=SWD_SEED)["swd"]
            record["diversity"] = round(diversity(fake), 4)
            record["diversity_real"] = round(diversity(swd_real), 4)
            if state["best"] is None or swd["swd"] < state["best"]["swd"]:
                state["best"] = {"swd": swd["swd"], "step": state["step"], "images_seen": state["images_seen"],
                                 "tick": record["tick"]}
                best = {**{f"generator.{k}": v for k, v in G_ema.state_dict().items()},
                        **{f"discriminator.{k}": v for k, v in D.state_dict().items()}}
                save_best(out_dir, best, state["best"])
        if stopping:
            record["stopped"] = stopping
        state["ticks"].append(record)
        state["since_tick"] = {"d_loss": 0.0, "g_loss": 0.0, "steps": 0}
        write_state()
        grid = sample_images(G_ema, fixed_z, device)
        save_grid(out_dir / "samples_latest.png", grid, ncols=8, scale=2)
        previous = state["ticks"][-2]["images_seen"] if len(state["ticks"]) > 1 else -1
        if previous < 0 or previous // GRID_KEEP_EVERY != state["images_seen"] // GRID_KEEP_EVERY:
            save_grid(out_dir / f"samples_{state['images_seen'] // 1000:06d}k.png", grid, ncols=8, scale=2)
        write_pictures(out_dir, state["ticks"], cfg.preset)
        step_times.clear()
        tick_wall[0] = time.monotonic()
        swd_part = f", swd {record['swd']:.2f}" if "swd" in record else ""
        ips = f", {record['images_per_s']:.0f} images/s" if record["images_per_s"] else ""
        log(f"checkpoint written: step {state['step']}, {state['images_seen']} images seen{swd_part}{ips}")

    def noise_at(step: int) -> float:
        return cfg.instance_noise * max(0.0, 1.0 - step / max(1, cfg.instance_noise_steps))

    stopped = None
    with _StopFlag() as stop:
        next_time = time.monotonic() + cfg.checkpoint_minutes * 60
        while state["epoch"] < cfg.epochs and stop.signal is None:
            G.train()
            D.train()
            bar = tqdm(total=per_epoch, initial=state["step_in_epoch"], unit="step", disable=not progress,
                       desc=f"epoch {state['epoch'] + 1}/{cfg.epochs}", dynamic_ncols=True)
            for i, (idx, flips) in enumerate(epoch_batches(len(images), cfg.batch_size, cfg.seed, state["epoch"],
                                                           cfg.flip)):
                if i < state["step_in_epoch"]:
                    continue
                t0 = time.perf_counter()
                real = torch.from_numpy(batch_to_model(images[idx], flips)).to(device, non_blocking=True)
                z = (torch.rand(len(idx), cfg.generator.z_dim, generator=z_gen) * 2 - 1).to(device)
                ld, lg = lsgan_step(G, D, opt_g, opt_d, scaler, real, z, use_amp, noise_at(state["step"]), augment)
                if not (np.isfinite(ld) and np.isfinite(lg)):
                    raise EdgefillError(f"training diverged at step {state['step']} (d_loss={ld}, g_loss={lg})")
                state["images_seen"] += len(idx)
                ema_update(G_ema, G, ema_beta(cfg, state["images_seen"]))
                dt = time.perf_counter() - t0
                step_times.append(dt)
                session["busy"] += dt
                session["images"] += len(idx)
                since = state["since_tick"]
                since["d_loss"] += ld
                since["g_loss"] += lg
                since["steps"] += 1
                state["step_in_epoch"], state["step"] = i + 1, state["step"] + 1
                if state["step_in_epoch"] == per_epoch:
                    state["epoch"], state["step_in_epoch"] = state["epoch"] + 1, 0
                bar.update(1)
                bar.set_postfix(d=f"{ld:.3f}", g=f"{lg:.3f}", ips=f"{session['images'] / session['busy']:.0f}")
                if stop.signal is not None:
                    break
                last = state["epoch"] >= cfg.epochs
                due_steps = cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0
                due_time = cfg.checkpoint_minutes > 0 and time.monotonic() >= next_time
                if (due_steps or due_time) and not last:
                    tick()
                    next_time = time.monotonic() + cfg.checkpoint_minutes * 60
                if state["step_in_epoch"] == 0:
                    break
            bar.close()
        stopped = stop.signal
        if stopped is not None or not state["ticks"] or state["ticks"][-1]["step"] != state["step"]:
            tick(stopping=stopped or False)
        elif find_checkpoint(out_dir) is None:
            # resumed from the portable file into a new folder with nothing left to train: the folder
            # still gets the run's checkpoint, so the encoder, the refiner and export can read it
            write_state()
            write_pictures(out_dir, state["ticks"], cfg.preset)
    return {"device": str(device), "images": int(len(images)), "skipped": faces.skipped, "epochs": state["epoch"],
            "steps": state["step"], "images_seen": state["images_seen"],
            "images_per_s": session["images"] / session["busy"] if session["busy"] else None,
            "best_swd": state["best"], "stopped": stopped, "out": str(out_dir)}


def write_pictures(out_dir: Path, ticks: list[dict], title: str) -> None:
    """swd_curve.png (SWD per level and mean, x1e3, against images seen) and loss_curve.png."""
    with_swd = [t for t in ticks if "swd" in t]
    if with_swd:
        x = [t["images_seen"] / 1e3 for t in with_swd]
        series = {k: [t[k] for t in with_swd] for k in ("swd", "swd64", "swd32", "swd16")}
        series["swd (raw G, not shipped)"] = [t.get("swd_raw", np.nan) for t in with_swd]
        save_line_plot(out_dir / "swd_curve.png", series,
                       x=x, title=f"LSGAN {title}: SWD of the EMA G vs real faces (lower is better)",
                       xlabel="thousand images seen", ylabel="SWD x1e3", log_y=True)
    with_loss = [t for t in ticks if t.get("d_loss") is not None]
    if with_loss:
        save_line_plot(out_dir / "loss_curve.png", {k: [t[k] for t in with_loss] for k in ("d_loss", "g_loss")},
                       x=[t["images_seen"] / 1e3 for t in with_loss], title=f"LSGAN {title}",
                       xlabel="thousand images seen", ylabel="mean loss per tick")
    atomic.write_text(out_dir / "train_log.jsonl", "".join(json.dumps(t) + "\n" for t in ticks))
