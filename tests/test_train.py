"""Training (issue 2): one LSGAN step, checkpoints, exact resume, data loading, CLI end to end."""
import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run_cli
from edgefill.runtime.errors import EdgefillError
from edgefill.train.checkpoint import load_checkpoint
from edgefill.train.config import GanTrainConfig, RefinerTrainConfig, preset
from edgefill.train.data import load_faces
from edgefill.train.discriminator import Discriminator
from edgefill.train.generator import Generator
from edgefill.train.losses import d_loss, g_loss
from edgefill.train.train_gan import lsgan_step, train_gan


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory, sample_faces):
    """64 faces (the 8 samples, flipped and shifted) as a small .npz dataset."""
    imgs = np.concatenate([np.roll(sample_faces, s, axis=2) for s in range(8)])
    path = tmp_path_factory.mktemp("data") / "faces.npz"
    np.savez(path, images=imgs)
    return path


def test_one_training_step_moves_both_losses():
    torch.manual_seed(0)
    g, d, _ = preset("tiny")
    G, D = Generator(g), Discriminator(d)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    real = torch.rand(16, 3, 64, 64) * 2 - 1
    z = torch.rand(16, 100) * 2 - 1
    scaler = torch.amp.GradScaler("cuda", enabled=False)

    def losses():
        torch.manual_seed(1)
        with torch.no_grad():
            fake = G(z)
            return d_loss(D(real), D(fake)).item(), g_loss(D(fake)).item()

    before = losses()
    ld, lg = lsgan_step(G, D, opt_g, opt_d, scaler, real, z, use_amp=False)
    after = losses()
    assert np.isfinite([ld, lg]).all()
    assert abs(after[0] - before[0]) > 1e-4 and abs(after[1] - before[1]) > 1e-4


def _cfg(**kw):
    g, d, _ = preset("tiny")
    base = dict(preset="tiny", generator=g, discriminator=d, batch_size=16, epochs=2, seed=3, device="cpu",
                checkpoint_every=0, checkpoint_minutes=0, swd_images=32, ema_kimg=0.1)
    return GanTrainConfig(**{**base, **kw})


def _assert_same_run(a_dir, b_dir, same_ticks=False):
    """Every tensor (G, D, the EMA G), both optimisers and every RNG state equal."""
    a = load_checkpoint(a_dir, kind="gan", with_train_state=True)
    b = load_checkpoint(b_dir, kind="gan", with_train_state=True)
    assert a.tensors.keys() == b.tensors.keys() and any(k.startswith("generator_ema.") for k in a.tensors)
    for k in a.tensors:
        assert torch.equal(a.tensors[k], b.tensors[k]), k
    for opt in ("opt_g", "opt_d"):
        sa, sb = a.train_state[opt]["state"], b.train_state[opt]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for name in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(sa[i][name], sb[i][name]), (opt, i, name)
    for gen in ("z_gen", "aug_gen"):
        assert torch.equal(a.train_state[gen], b.train_state[gen]), gen
    assert torch.equal(a.train_state["rng"]["torch"], b.train_state["rng"]["torch"])
    assert a.state["step"] == b.state["step"] and a.state["images_seen"] == b.state["images_seen"]
    assert a.state["best"]["swd"] == b.state["best"]["swd"]
    assert a.state["ticks"][-1]["swd"] == b.state["ticks"][-1]["swd"]
    if same_ticks:  # ticks at the same steps: the logged losses agree too
        keys = ("step", "images_seen", "d_loss", "g_loss", "swd", "diversity")
        assert [{k: t[k] for k in keys} for t in a.state["ticks"]] == [{k: t[k] for k in keys} for t in b.state["ticks"]]
    return a, b


def test_checkpoint_round_trip_and_exact_resume(tmp_path, faces_npz):
    straight = train_gan(_cfg(), str(faces_npz), str(tmp_path / "a"), progress=False)
    train_gan(_cfg(epochs=1), str(faces_npz), str(tmp_path / "b"), progress=False)
    resumed = train_gan(_cfg(epochs=2), str(faces_npz), str(tmp_path / "b"), resume=True, progress=False)
    assert straight["steps"] == resumed["steps"] == 8 and straight["images_seen"] == 128
    a, _ = _assert_same_run(tmp_path / "a", tmp_path / "b")
    assert a.config["generator"]["width"] == 8
    # the EMA G is an average, not a copy of G
    assert not torch.equal(a.tensors["generator_ema.convs.0.weight"], a.tensors["generator.convs.0.weight"])
    # the round trip rebuilds a working generator
    G = Generator(preset("tiny")[0])
    G.load_state_dict(a.module_state("generator_ema"))
    assert G.eval()(torch.zeros(1, 100)).shape == (1, 3, 64, 64)
    for name in ("samples_000000k.png", "loss_curve.png", "swd_curve.png", "train_log.jsonl", "best/best.json",
                 "best/weights.safetensors"):
        assert (tmp_path / "a" / name).is_file(), name
    log = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["images_seen"] == 128 and log[0]["swd"] > 0
    assert {"swd64", "swd32", "swd16", "diversity", "images_per_s", "d_loss", "g_loss"} <= log[0].keys()
    best = json.loads((tmp_path / "a" / "best" / "best.json").read_text())
    assert best["swd"] == min(t["swd"] for t in a.state["ticks"])


def test_resume_at_lower_learning_rates(tmp_path, faces_npz):
    """A later phase at lower rates: --resume with lr_g/lr_d/ema_kimg overrides keeps the run's
    state and Adam's moments, trains at the new rates, and records them so later resumes keep them."""
    train_gan(_cfg(epochs=1), str(faces_npz), str(tmp_path / "r"), progress=False)
    before = load_checkpoint(tmp_path / "r", kind="gan", with_train_state=True)
    lines: list[str] = []
    slow = dataclasses.replace(_cfg(epochs=2), lr_g=5e-5, lr_d=2.5e-5, ema_kimg=0.5)
    train_gan(slow, str(faces_npz), str(tmp_path / "r"), resume=True, progress=False, log=lines.append,
              resume_overrides=("lr_g", "lr_d", "ema_kimg"))
    assert any("G 0.0002 -> 5e-05, D 0.0001 -> 2.5e-05" in line for line in lines), lines
    after = load_checkpoint(tmp_path / "r", kind="gan", with_train_state=True)
    assert after.state["step"] == 2 * before.state["step"]
    assert [g["lr"] for g in after.train_state["opt_g"]["param_groups"]] == [5e-5]
    assert [g["lr"] for g in after.train_state["opt_d"]["param_groups"]] == [2.5e-5]
    assert (after.config["lr_g"], after.config["lr_d"], after.config["ema_kimg"]) == (5e-5, 2.5e-5, 0.5)
    assert after.state["ticks"][-1]["lr_g"] == 5e-5
    # a resume without overrides keeps the run's (new) rates, whatever the defaults say
    train_gan(_cfg(epochs=3), str(faces_npz), str(tmp_path / "r"), resume=True, progress=False, log=lines.append)
    again = load_checkpoint(tmp_path / "r", kind="gan", with_train_state=True)
    assert again.config["lr_g"] == 5e-5 and again.train_state["opt_d"]["param_groups"][0]["lr"] == 2.5e-5


def test_resume_with_another_diffaugment_policy(tmp_path, faces_npz):
    """A later phase without colour augmentation: --resume --diffaugment replaces the policy,
    says so, records it in the checkpoint and the tick log, and later resumes keep it."""
    train_gan(_cfg(epochs=1), str(faces_npz), str(tmp_path / "r"), progress=False)
    assert load_checkpoint(tmp_path / "r", kind="gan").config["diffaugment"] == "color,translation,cutout"
    lines: list[str] = []
    no_colour = dataclasses.replace(_cfg(epochs=2), diffaugment="translation,cutout")
    train_gan(no_colour, str(faces_npz), str(tmp_path / "r"), resume=True, progress=False, log=lines.append,
              resume_overrides=("diffaugment",))
    assert any("'color,translation,cutout' -> 'translation,cutout'" in line for line in lines), lines
    after = load_checkpoint(tmp_path / "r", kind="gan")
    assert after.config["diffaugment"] == "translation,cutout"
    assert after.state["ticks"][-1]["diffaugment"] == "translation,cutout"
    train_gan(_cfg(epochs=3), str(faces_npz), str(tmp_path / "r"), resume=True, progress=False, log=lines.append)
    assert load_checkpoint(tmp_path / "r", kind="gan").config["diffaugment"] == "translation,cutout"


def test_mid_epoch_resume_matches_uninterrupted(tmp_path, faces_npz, monkeypatch):
    """Interrupt right after the mid-epoch checkpoint at step 2 of 4 (EMA, DiffAugment, instance
    noise all on), resume: same weights, EMA, optimisers and RNG states; then the same from the
    portable file alone, into a new run folder (a new machine)."""
    import shutil

    import edgefill.train.train_gan as tg

    cfg = _cfg(epochs=2, checkpoint_every=2, diffaugment="color,translation,cutout", instance_noise=0.1)
    assert cfg.ema_kimg > 0
    train_gan(cfg, str(faces_npz), str(tmp_path / "full"), progress=False)

    class Interrupted(Exception):
        pass

    real_save = tg.save_checkpoint

    def save_then_crash(run_dir, kind, config, state, modules, train_state):
        real_save(run_dir, kind, config, state, modules, train_state)
        if state["step"] == 2:
            raise Interrupted

    real_portable = tg.write_portable

    def portable_then_crash(path, config, state, *args):
        real_portable(path, config, state, *args)
        if state["step"] == 2:
            raise Interrupted

    monkeypatch.setattr(tg, "save_checkpoint", save_then_crash)
    with pytest.raises(Interrupted):
        train_gan(cfg, str(faces_npz), str(tmp_path / "cut"), progress=False)
    monkeypatch.setattr(tg, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "cut").state["step_in_epoch"] == 2
    train_gan(cfg, str(faces_npz), str(tmp_path / "cut"), resume=True, progress=False)
    _assert_same_run(tmp_path / "full", tmp_path / "cut", same_ticks=True)

    portable = tmp_path / "ckpts" / "gan.ckpt"
    monkeypatch.setattr(tg, "write_portable", portable_then_crash)
    with pytest.raises(Interrupted):
        train_gan(cfg, str(faces_npz), str(tmp_path / "machine1"), progress=False, portable=str(portable))
    monkeypatch.setattr(tg, "write_portable", real_portable)
    shutil.rmtree(tmp_path / "machine1")
    assert [p.name for p in portable.parent.iterdir()] == ["gan.ckpt"]  # no temporary left behind
    train_gan(cfg, str(faces_npz), str(tmp_path / "machine2"), resume=True, progress=False, portable=str(portable))
    _assert_same_run(tmp_path / "full", tmp_path / "machine2", same_ticks=True)
    assert (tmp_path / "machine2" / "best" / "best.json").is_file()

    # a finished run's portable file, resumed into a third machine's empty folder with nothing left
    # to train, still gives that folder the run (what the encoder and export read)
    train_gan(cfg, str(faces_npz), str(tmp_path / "machine3"), resume=True, progress=False, portable=str(portable))
    _assert_same_run(tmp_path / "full", tmp_path / "machine3", same_ticks=True)
    assert (tmp_path / "machine3" / "best" / "best.json").is_file()


def test_resume_refuses_other_data(tmp_path, faces_npz, sample_faces):
    train_gan(_cfg(epochs=1), str(faces_npz), str(tmp_path / "a"), progress=False)
    other = tmp_path / "other.npz"
    np.savez(other, images=np.concatenate([sample_faces[::-1]] * 8))
    with pytest.raises(EdgefillError, match="not the data"):
        train_gan(_cfg(epochs=2), str(other), str(tmp_path / "a"), resume=True, progress=False)


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tmp_path, faces_npz):
    """SIGTERM once the first tick's "checkpoint written" line is out: exit 0, one line on stdout,
    and a checkpoint that resumes. Bounded by the run's length (it would end by itself after
    50 epochs of 4 steps), never by the machine's speed."""
    import os
    import signal
    import subprocess
    import sys

    out, portable = tmp_path / "run", tmp_path / "p" / "gan.ckpt"
    proc = subprocess.Popen([sys.executable, "-m", "edgefill.runtime", "train", "gan", "--config", "tiny",
                             "--data", str(faces_npz), "--out", str(out), "--batch-size", "16", "--epochs", "50",
                             "--checkpoint-every", "2", "--checkpoint-minutes", "0", "--swd-images", "16",
                             "--portable", str(portable)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = proc.stderr.readline()
    while first and "checkpoint written" not in first:
        first = proc.stderr.readline()
    assert "checkpoint written" in first
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped by SIGTERM"), stdout
    assert "Traceback" not in stderr
    ck = load_checkpoint(out, kind="gan", with_train_state=True)
    assert ck.state["ticks"][-1].get("stopped") == "SIGTERM" and ck.state["step"] < 200
    proc = run_cli("train", "gan", "--config", "tiny", "--data", str(faces_npz), "--out", str(out), "--epochs",
                   str(ck.state["epoch"] + 1), "--resume", "--portable", str(portable))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 4 * (ck.state["epoch"] + 1) and summary["stopped"] is None


def test_loader_folder_with_corrupt_file_and_npz(tmp_path, sample_faces):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(sample_faces[:3]):
        big = cv2.resize(img, (178, 218))  # CelebA-sized: gets the CelebA crop
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "wide.png"), np.zeros((40, 90, 3), np.uint8))  # centre-cropped square
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    data = load_faces(folder, progress=False)
    assert data.images.shape == (4, 64, 64, 3) and data.images.dtype == np.uint8 and data.skipped == 1
    npz = tmp_path / "f.npz"
    np.savez(npz, images=sample_faces)
    assert load_faces(npz).images.shape == (8, 64, 64, 3)
    assert load_faces(npz, limit=3).images.shape == (3, 64, 64, 3)


@pytest.mark.parametrize("make,fragment", [
    (lambda p: p / "missing.npz", "not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no image files"),
    (lambda p: np.savez(p / "bad.npz", images=np.zeros((4, 32, 32, 3), np.uint8)) or p / "bad.npz", "must be uint8"),
    (lambda p: np.savez(p / "nokey.npz", x=np.zeros(3)) or p / "nokey.npz", "no `images`"),
    (lambda p: (p / "junk.npz").write_bytes(b"junk") and p / "junk.npz", "not a readable"),
])
def test_bad_data_is_one_clear_line(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(EdgefillError, match=fragment):
        load_faces(path)
    proc = run_cli("train", "gan", "--config", "tiny", "--data", str(path), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, fragment)


def test_cli_train_gan_tiny_end_to_end(tmp_path, shared_test_npz):
    out = tmp_path / "run"
    proc = run_cli("train", "gan", "--config", "tiny", "--data", str(shared_test_npz), "--epochs", "1",
                   "--out", str(out), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["epochs"] == 1 and summary["images"] == 300 and summary["images_per_s"] > 0
    for name in ("checkpoint/checkpoint.json", "checkpoint/weights.safetensors", "samples_000000k.png",
                 "loss_curve.png", "swd_curve.png", "best/best.json"):
        assert (out / name).is_file(), name  # 4 steps of 64: 256 images, the grid of "0 thousand" images
    # --resume without a checkpoint and a refiner run against a non-GAN folder are clear errors
    assert_one_line_error(run_cli("train", "gan", "--config", "tiny", "--data", str(shared_test_npz),
                                  "--out", str(tmp_path / "none"), "--resume"), "no checkpoint")


def test_cli_train_refiner_tiny_end_to_end(tmp_path, tiny_gan_checkpoint, tiny_refiner_checkpoint, faces_npz):
    out = tmp_path / "ref"
    args = ["train", "refiner", "--data", str(faces_npz), "--gan", str(tiny_gan_checkpoint), "--out", str(out),
            "--epochs", "1", "--completions", "32", "--search-steps", "5", "--batch-size", "16", "--search-batch", "16"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["completions"] == 32 and np.isfinite(summary["train_loss"])
    assert summary["val_seam_truth"] > 0 and np.isfinite(summary["val_ssim_refined"])
    assert len(list((out / "completions" / "train").glob("chunk_*.npz"))) == 2
    assert load_checkpoint(out, kind="refiner").module_state("refiner")
    # resuming reuses the cached completions and continues to 2 epochs
    proc = run_cli(*[a if a != "1" else "2" for a in args], "--resume")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["epochs"] == 2
    # a refiner checkpoint where a GAN is expected: one clear line
    bad = run_cli("train", "refiner", "--data", str(faces_npz), "--gan", str(tiny_refiner_checkpoint),
                  "--out", str(tmp_path / "r2"))
    assert_one_line_error(bad, "expected a gan checkpoint")


def test_cli_train_refiner_from_a_bundle_shares_its_completions(tmp_path, tiny_bundle, faces_npz):
    """A bundle source completes with the bundle's own pipeline; two masks per face; L1 + SSIM;
    a second run reuses the cache; a cache made differently is refused in one line."""
    from edgefill.train.completions import BundleCompletions

    cache = tmp_path / "cache"
    base = ["train", "refiner", "--data", str(faces_npz), "--gan", str(tiny_bundle), "--config", "tiny",
            "--completions", "16", "--masks-per-face", "2", "--batch-size", "8", "--search-batch", "8",
            "--completions-dir", str(cache)]
    proc = run_cli(*base, "--out", str(tmp_path / "a"), "--completions-only")
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert made["completions"] == 32 and made["faces"] == 16
    assert not (tmp_path / "a" / "checkpoint").exists()
    chunks = sorted((cache / "train").glob("chunk_*.npz"))
    assert len(chunks) == 4
    with np.load(chunks[0]) as f:
        index, masks, comp = f["index"], f["masks"], f["completions"]
    assert index[0] == index[1] and not np.array_equal(masks[0], masks[1])  # one face, two masks
    # the cache holds exactly what the bundle's pipeline makes of the masked faces
    from edgefill.runtime.imaging.masks import masked_input

    with np.load(faces_npz) as f:
        faces = f["images"]
    src = BundleCompletions(str(tiny_bundle))
    again, _ = src.complete(masked_input(faces[index], masks), masks, 0 * 1009 + 0)
    assert np.array_equal(again, comp)
    mtime = chunks[0].stat().st_mtime_ns
    proc = run_cli(*base, "--out", str(tmp_path / "b"), "--epochs", "1", "--loss", "l1", "--ssim-weight", "0.5")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["completions"] == 32 and np.isfinite(summary["train_loss"]) and chunks[0].stat().st_mtime_ns == mtime
    bad = run_cli(*[a if a != "2" else "1" for a in base], "--out", str(tmp_path / "c"))
    assert_one_line_error(bad, "holds completions made differently")


def test_cli_train_refiner_with_telea_channels_exports_and_runs(tmp_path, tiny_bundle, faces_npz, sample_faces):
    """--telea-channels: the refiner sees the search's completion, the hole and OpenCV Telea's fill
    (7 channels, runtime.imaging.images.refiner_input); its bundle's graph takes them by name and
    the runtime feeds it what torch was trained on."""
    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.imaging.diffusion import opencv_inpaint
    from edgefill.runtime.imaging.images import from_model, refiner_input, to_model
    from edgefill.runtime.imaging.masks import make_mask
    from edgefill.train.config import RefinerConfig, nested_from_dict
    from edgefill.train.refiner import build_refiner

    base = ["train", "refiner", "--data", str(faces_npz), "--gan", str(tiny_bundle), "--config", "tiny",
            "--completions", "16", "--batch-size", "8", "--search-batch", "8", "--epochs", "1"]
    proc = run_cli(*base, "--out", str(tmp_path / "r7"), "--telea-channels")
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(json.loads(proc.stdout)["val_hole_psnr_refined"])
    ck = load_checkpoint(tmp_path / "r7", kind="refiner")
    assert ck.config["refiner"]["telea_channels"] is True
    proc = run_cli("export", "--checkpoint", str(tiny_bundle), "--refiner", str(tmp_path / "r7"),
                   "--out", str(tmp_path / "b7"))
    assert proc.returncode == 0, proc.stderr
    manifest = open_bundle(tmp_path / "b7").manifest
    graph = manifest["graphs"]["refiner"]
    record = manifest["training"]["refiner"]  # the recipe travels with the weights
    assert record["photometric"] == 0.0 and record["seed"] == 0 and record["epoch"] == 1
    assert list(graph["inputs"]) == ["image_hole_telea"] and graph["inputs"]["image_hole_telea"][1] == 7

    images, masks = sample_faces[:4], np.stack([make_mask(k) for k in ("center", "pattern", "random", "half")])
    x = refiner_input(images, masks, 7)
    np.testing.assert_array_equal(x[:, 3], (masks >= 128).astype(np.float32))
    np.testing.assert_array_equal(x[:, 4:], to_model(opencv_inpaint(images, masks, "telea")))
    R = build_refiner(nested_from_dict(RefinerConfig, ck.config["refiner"]))
    R.load_state_dict({k[len("refiner."):]: v for k, v in ck.tensors.items() if k.startswith("refiner.")})
    with torch.no_grad():
        ref = from_model(R.eval()(torch.from_numpy(x)).numpy())
    inp = Inpainter(str(tmp_path / "b7"), provider="cpu")
    assert inp.pipeline.refiner_channels == 7
    hole = masks >= 128
    got = inp.refine(images, masks)
    assert np.abs(got[hole].astype(int) - ref[hole].astype(int)).max() <= 1
    np.testing.assert_array_equal(got[~hole], images[~hole])

    bad = run_cli(*base, "--out", str(tmp_path / "bad"), "--telea-channels", "--no-mask-channel")
    assert_one_line_error(bad, "mask channel")


def test_best_of_loss_puts_its_share_on_each_problems_best_sample():
    """--best-of b: b of a problem's loss on its best sample alone, 1 - b on the mean of its
    samples; at b = 1 only the best sample of each problem gets a gradient. Checked bounds."""
    import torch

    from edgefill.train.losses import hole_error, ssim_map
    from edgefill.train.train_refiner import best_of_loss

    torch.manual_seed(0)
    y = torch.rand(4, 3, 64, 64) * 2 - 1
    known = torch.ones(4, 1, 64, 64)
    known[..., 16:48, 16:48] = 0
    err = torch.tensor([0.05, 0.3, 0.4, 0.1]).view(4, 1, 1, 1)  # problem 0: row 0 best; problem 1: row 3 best
    final = (y + err * torch.randn(4, 3, 64, 64)).requires_grad_()
    cfg = RefinerTrainConfig(samples=2, best_of=1.0, ssim_weight=0.5)
    best_of_loss(final, y, known, cfg).backward()
    moved = final.grad.abs().sum(dim=(1, 2, 3))
    assert moved[0] > 0 and moved[3] > 0 and moved[1] == 0 and moved[2] == 0
    each = (hole_error(final, y, known, per_row=True)
            + 0.5 * (1 - ssim_map(final, y).mean(dim=(1, 2, 3)))).detach().view(2, 2)
    half = best_of_loss(final, y, known, RefinerTrainConfig(samples=2, best_of=0.5, ssim_weight=0.5))
    assert torch.isclose(half, 0.5 * each.min(dim=1).values.mean() + 0.5 * each.mean())
    for bad in ({"best_of": 0.5}, {"best_of": 1.5, "samples": 2}, {"best_of": -0.1, "samples": 2}):
        with pytest.raises(EdgefillError, match="best-of share"):
            RefinerTrainConfig(**bad)


def test_cli_train_refiner_on_telea_fills_and_on_sample_pairs(tmp_path, tiny_bundle, faces_npz):
    """The no-GAN baseline (--fill telea: OpenCV's fill, evaluate's call) and the diversity-keeping
    recipe (--samples-per-mask 2 --keep-weight: two starts per mask, the keep term on); fine-tuning
    chains that grow the refiner (Telea channels, then residual blocks) and export."""
    import torch

    from edgefill.runtime.imaging.diffusion import opencv_inpaint
    from edgefill.runtime.imaging.masks import masked_input
    from edgefill.train.train_refiner import keep_error

    base = ["train", "refiner", "--data", str(faces_npz), "--gan", str(tiny_bundle), "--config", "tiny",
            "--completions", "16", "--batch-size", "8", "--search-batch", "8", "--epochs", "1"]
    proc = run_cli(*base, "--out", str(tmp_path / "telea"), "--fill", "telea")
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(json.loads(proc.stdout)["val_hole_psnr_refined"])
    with np.load(sorted((tmp_path / "telea" / "completions" / "train").glob("chunk_*.npz"))[0]) as f:
        index, masks, comp = f["index"], f["masks"], f["completions"]
    with np.load(faces_npz) as f:
        faces = f["images"]
    assert np.array_equal(comp, opencv_inpaint(masked_input(faces[index], masks), masks, "telea"))

    proc = run_cli(*base, "--out", str(tmp_path / "pairs"), "--samples-per-mask", "2", "--keep-weight", "2",
                   "--photometric", "1", "--best-of", "0.5")
    assert proc.returncode == 0, proc.stderr
    recorded = load_checkpoint(tmp_path / "pairs", kind="refiner").config
    assert recorded["photometric"] == 1.0 and recorded["best_of"] == 0.5
    summary = json.loads(proc.stdout)
    assert summary["completions"] == 16 and np.isfinite(summary["train_loss"])
    assert 0 < summary["val_pairwise_hole_psnr_completion"] < 99
    with np.load(sorted((tmp_path / "pairs" / "completions" / "train").glob("chunk_*.npz"))[0]) as f:
        comp, loss = f["completions"], f["loss"]
    assert comp.shape[1:] == (2, 64, 64, 3) and np.all(loss[:, 0] <= loss[:, 1])
    # the keep term is 0 when outputs deviate exactly as the completions do, positive when washed out
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    known = torch.zeros(4, 1, 64, 64)
    assert keep_error(x + 0.3, x, known, 2).item() < 1e-12
    assert keep_error(torch.zeros_like(x), x, known, 2).item() > 0.01
    # fine-tuning from a refiner: the pairs run's own checkpoint, epoch 1 -> a new run of 1 epoch
    proc = run_cli(*base, "--out", str(tmp_path / "tuned"), "--samples-per-mask", "2", "--keep-weight", "2",
                   "--init-refiner", str(tmp_path / "pairs"), "--completions-dir", str(tmp_path / "pairs" / "completions"))
    assert proc.returncode == 0, proc.stderr
    # the manifest's record names the chain: the tuned run's own epochs, and the run it started from
    from edgefill.export.bundle_writer import refiner_record

    record = refiner_record(str(tmp_path / "tuned"))
    assert record["epoch"] == 1 and record["init"]["checkpoint"] == str(tmp_path / "pairs")
    assert record["init"]["keep_weight"] == 2.0 and "init" not in record["init"]
    # a refiner without the Telea channels (the telea run's) starts one with them
    proc = run_cli(*base, "--out", str(tmp_path / "widened"), "--telea-channels", "--init-refiner", str(tmp_path / "telea"))
    assert proc.returncode == 0, proc.stderr
    assert refiner_record(str(tmp_path / "widened"))["init"]["checkpoint"] == str(tmp_path / "telea")
    # a deeper one (residual blocks) from the widened one, exported into a bundle that validates
    proc = run_cli(*base, "--out", str(tmp_path / "deep"), "--telea-channels", "--blocks", "1",
                   "--init-refiner", str(tmp_path / "widened"), "--completions-dir", str(tmp_path / "widened" / "completions"))
    assert proc.returncode == 0, proc.stderr
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.frontends.inpainter import Inpainter

    export_bundle(str(tiny_bundle), str(tmp_path / "deep_bundle"), refiner=str(tmp_path / "deep"), validate=True)
    deep = Inpainter(tmp_path / "deep_bundle", provider="cpu")
    assert deep.bundle.manifest["models"]["refiner"]["blocks"] == 1 and deep.pipeline.refiner_channels == 7
    with np.load(faces_npz) as f:
        face = f["images"][:1]
    hole = np.zeros((1, 64, 64), np.uint8)
    hole[:, 16:48, 16:48] = 255
    assert deep.refine(face, hole).shape == (1, 64, 64, 3)
    for bad, fragment in ((["--fill", "telea", "--samples-per-mask", "2"], "one completion per mask"),
                          (["--init-refiner", str(tmp_path / "pairs"), "--width", "3"], "is not the one to train"),
                          (["--samples-per-mask", "3"], "divide the batch size")):
        assert_one_line_error(run_cli(*base, "--out", str(tmp_path / "bad"), *bad), fragment)


def test_help_is_instant_and_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "train" in proc.stdout
    proc = run_cli("train", "gan", "--help")
    assert proc.returncode == 0 and "--resume" in proc.stdout and "--config" in proc.stdout


def test_cli_tune_search_uses_the_validation_split(tmp_path, faces_npz):
    gan = tmp_path / "gan"
    proc = run_cli("train", "gan", "--config", "tiny", "--data", str(faces_npz), "--epochs", "1", "--out", str(gan),
                   "--val-fraction", "0.25", "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    bundle = tmp_path / "bundle"
    proc = run_cli("export", "--checkpoint", str(gan), "--out", str(bundle), "--no-validate", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "tune.json"
    proc = run_cli("train", "tune-search", "--bundle", str(bundle), "--data", str(faces_npz), "--gan", str(gan),
                   "--out", str(out), "--limit", "4", "--steps", "3", "--restarts", "1", "--masks", "center")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["images"] == 4 and report["split"].startswith("the GAN run's validation")
    chosen = report["chosen"]
    assert chosen["steps"] == 3 and chosen["blend"] in ("paste", "poisson") and chosen["prior"] in ("lsgan", "log")
    # the chosen lr/lam/prior is the best trial under the criterion for the paste blend it was tuned with
    # criterion: paste hole PSNR, SSIM breaking ties; the chosen setting must beat or tie every trial
    crit = {(t["lr"], t["lam"], t["prior"]): (t["paste"]["hole_psnr"], t["paste"]["ssim"]) for t in report["trials"]}
    assert len(crit) >= 7 and all(np.isfinite(v).all() for v in crit.values())
    chosen_key = (chosen["lr"], chosen["lam"], chosen["prior"])
    assert chosen_key in crit and crit[chosen_key] == max(crit.values()), (chosen_key, crit)
    # a GAN run without a hold-out cannot be tuned on: one clear line
    nohold = tmp_path / "nohold"
    run_cli("train", "gan", "--config", "tiny", "--data", str(faces_npz), "--epochs", "1", "--out", str(nohold),
            "--batch-size", "16")
    assert_one_line_error(run_cli("train", "tune-search", "--bundle", str(bundle), "--data", str(faces_npz),
                                  "--gan", str(nohold), "--out", str(tmp_path / "t2.json")), "without --val-fraction")
    assert not (tmp_path / "t2.json").exists()


def test_residual_blocks_start_as_the_identity_and_are_counted():
    """--blocks: a U-Net refiner grown from one with fewer blocks (and without the Telea channels)
    computes what it did, every old weight nonzero; the blocks train (gradients reach them); the
    profile's FLOP count grows by two 3x3 convs per block and scale; blocks need the unet arch."""
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.profile.flops import refiner_layers, total_macs
    from edgefill.train.config import RefinerConfig
    from edgefill.train.refiner import build_refiner, grow_state, grows_into

    small = RefinerConfig(width=4, arch="unet", mask_channel=True)
    deep = RefinerConfig(width=4, arch="unet", mask_channel=True, telea_channels=True, blocks=2)
    assert grows_into(small, deep) and not grows_into(deep, small)
    assert not grows_into(RefinerConfig(width=4, arch="unet", mask_channel=True, telea_channels=True, blocks=3), deep)
    torch.manual_seed(0)
    a, b = build_refiner(small).eval(), build_refiner(deep).eval()
    for p in a.parameters():
        torch.nn.init.normal_(p, std=0.1)
    b.load_state_dict(grow_state(a.state_dict(), b.state_dict()))
    x = torch.rand(2, 4, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(b(torch.cat([x, torch.rand(2, 3, 64, 64)], 1)), a(x), rtol=0, atol=1e-6)
    b.train()
    b(torch.cat([x, x[:, :3]], 1)).square().mean().backward()
    assert b.b16[1].body[4].weight.grad.abs().sum() > 0
    macs = [total_macs(refiner_layers(32, "unet", 7, n)) for n in (0, 1)]
    assert macs[1] - macs[0] == 2 * 9 * ((8 * 32) ** 2 * 16 + (4 * 32) ** 2 * 64 + (2 * 32) ** 2 * 256 + 32 ** 2 * 1024)
    with pytest.raises(EdgefillError, match="unet"):
        RefinerConfig(width=4, arch="autoencoder", blocks=1)


@pytest.mark.parametrize("arch", ["unet", "autoencoder"])
def test_widened_refiner_computes_what_the_narrow_one_did(arch):
    """--init-refiner from a refiner without the Telea channels: the new channels' weights start
    at zero, so the widened refiner's output equals the narrow one's whatever Telea's fill is."""
    from edgefill.train.config import RefinerConfig
    from edgefill.train.refiner import build_refiner, grows_into, grow_state

    narrow_cfg = RefinerConfig(width=4, arch=arch, mask_channel=True)
    wide_cfg = RefinerConfig(width=4, arch=arch, mask_channel=True, telea_channels=True)
    assert grows_into(narrow_cfg, wide_cfg)
    assert not grows_into(wide_cfg, narrow_cfg)
    assert not grows_into(RefinerConfig(width=8, arch=arch, mask_channel=True), wide_cfg)
    torch.manual_seed(0)
    narrow, wide = build_refiner(narrow_cfg).eval(), build_refiner(wide_cfg).eval()
    for p in narrow.parameters():  # nonzero everywhere, the U-Net's zero-initialised output conv included
        torch.nn.init.normal_(p, std=0.1)
    wide.load_state_dict(grow_state(narrow.state_dict(), wide.state_dict()))
    x = torch.rand(2, 4, 64, 64) * 2 - 1
    telea = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(wide(torch.cat([x, telea], 1)), narrow(x), rtol=0, atol=1e-6)


def test_photometric_jitter_changes_completion_and_truth_alike(sample_faces):
    """The refiner's lighting augmentation: one change per problem (its samples share it), the
    known pixels of completion and truth stay equal, strength 0 is the identity, the same
    generator gives the same change (so a resumed run augments as an unbroken one)."""
    from edgefill.runtime.imaging.masks import make_mask
    from edgefill.train.photometric import jitter_pair
    from edgefill.train.train_refiner import training_batch

    truth = np.repeat(sample_faces[:4], 2, axis=0)  # 4 problems x 2 samples, problem-major
    hole = np.stack([make_mask("center")] * 8) >= 128
    comp = truth.copy()
    comp[hole] = 128
    c0, t0 = jitter_pair(comp, truth, 0.0, np.random.default_rng(0), group=2)
    assert c0 is comp and t0 is truth
    c1, t1 = jitter_pair(comp, truth, 1.0, np.random.default_rng(0), group=2)
    np.testing.assert_array_equal(c1[~hole], t1[~hole])
    assert np.abs(t1.astype(int) - truth.astype(int)).mean() > 2  # it changes the faces
    np.testing.assert_array_equal(t1[0::2], t1[1::2])  # a problem's samples share one change
    c2, t2 = jitter_pair(comp, truth, 1.0, np.random.default_rng(0), group=2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(t1, t2)
    assert not np.array_equal(t1, jitter_pair(comp, truth, 1.0, np.random.default_rng(1), group=2)[1])

    masks = np.stack([make_mask("center")] * 4)
    train_set = {"completions": comp[0::2], "masks": masks, "index": np.arange(4)}
    idx, flips = np.arange(4), np.array([False, True, False, True])
    x, y, known = training_batch(train_set, sample_faces[:4], idx, flips, 7, torch.device("cpu"), 1.0,
                                 np.random.default_rng(3))
    k = known.bool().expand_as(y)
    assert torch.equal(x[:, :3][k], y[k])  # the refiner input's known pixels are the truth's
    x0, y0, _ = training_batch(train_set, sample_faces[:4], idx, flips, 7, torch.device("cpu"))
    assert not torch.equal(y, y0)

    from edgefill.train.config import RefinerTrainConfig

    with pytest.raises(EdgefillError, match="photometric"):
        RefinerTrainConfig(photometric=-1)
