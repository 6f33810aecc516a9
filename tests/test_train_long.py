"""Training that spans sessions (issue 20): the SWD metric, DiffAugment, the EMA, the portable
resume file and export of the best EMA generator. Tiny models and small image sets: seconds."""
import json

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, jittered_faces, run_cli
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.swd import laplacian_pyramid, sliced_wasserstein


@pytest.fixture(scope="module")
def faces(sample_faces):
    """128 face-like images: the 8 samples, shifted, flipped and colour-jittered."""
    return jittered_faces(sample_faces, 16)


def test_swd_same_set_is_zero_and_is_deterministic(faces):
    assert sliced_wasserstein(faces, faces)["swd"] == 0.0
    a, b = faces[::2], faces[1::2]
    first, again = sliced_wasserstein(a, b, seed=3), sliced_wasserstein(a, b, seed=3)
    assert first == again and set(first) == {"swd64", "swd32", "swd16", "swd"}
    assert first["swd"] == pytest.approx(np.mean([first["swd64"], first["swd32"], first["swd16"]]))
    assert sliced_wasserstein(a, b, seed=4) != first  # the seed matters, the call order does not


def test_swd_grows_with_blur_noise_and_flat_images(faces):
    """Blur and noise change the finest band (level 64) far beyond two halves of one set; flat
    images are far at every level. (A global colour shift is normalised away per set, as in ProGAN.)"""
    import cv2

    a, b = faces[::2], faces[1::2]
    floor = sliced_wasserstein(a, b)
    blurred = np.stack([cv2.GaussianBlur(x, (7, 7), 1.5) for x in b])
    noisy = np.clip(b.astype(np.int16) + np.random.default_rng(1).integers(-40, 41, b.shape), 0, 255).astype(np.uint8)
    assert sliced_wasserstein(a, blurred)["swd64"] > 2.5 * floor["swd64"]
    assert sliced_wasserstein(a, noisy)["swd64"] > 4 * floor["swd64"]
    grey = sliced_wasserstein(a, np.full_like(b, 128))
    assert all(grey[k] > 4 * floor[k] for k in ("swd64", "swd32", "swd16", "swd"))


def test_laplacian_pyramid_reconstructs_and_bad_input_is_one_error(faces):
    bands = laplacian_pyramid(faces[:4])
    assert [b.shape[1] for b in bands] == [64, 32, 16]
    from edgefill.runtime.imaging.swd import _up

    recon = bands[0] + _up(bands[1] + _up(bands[2]))
    assert np.allclose(recon, faces[:4].astype(np.float32) / 127.5 - 1, atol=1e-5)
    with pytest.raises(EdgefillError, match="uint8"):
        sliced_wasserstein(faces.astype(np.float32), faces)
    with pytest.raises(EdgefillError, match="differ"):
        sliced_wasserstein(faces, faces[:, :32, :32])


def test_swd_sets_of_unequal_size(faces):
    small = sliced_wasserstein(faces[:40], faces[40:])
    assert np.isfinite(small["swd"]) and small["swd"] > 0


def test_diffaugment_is_differentiable_random_per_image_and_reproducible():
    from edgefill.train.augment import diff_augment, parse_policy

    x = (torch.rand(6, 3, 64, 64) * 2 - 1).requires_grad_(True)
    policy = parse_policy("color,translation,cutout")
    y1 = diff_augment(x, policy, torch.Generator().manual_seed(5))
    y2 = diff_augment(x, policy, torch.Generator().manual_seed(5))
    assert y1.shape == x.shape and torch.equal(y1, y2)
    assert not torch.equal(y1, diff_augment(x, policy, torch.Generator().manual_seed(6)))
    y1.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # cutout zeroes a quarter of the image at most (a 32x32 square, possibly clipped by the border)
    ones = torch.ones(8, 3, 64, 64)
    cut = diff_augment(ones, ("cutout",), torch.Generator().manual_seed(0))
    zero_frac = (cut == 0).float().mean(dim=(1, 2, 3))
    assert (zero_frac > 0).all() and (zero_frac <= 0.25 + 1e-6).all()
    # translation moves content by at most 8 pixels and fills with zeros
    img = torch.zeros(1, 3, 64, 64)
    img[..., 30:34, 30:34] = 1
    moved = diff_augment(img.repeat(16, 1, 1, 1), ("translation",), torch.Generator().manual_seed(1))
    for m in moved:
        ys, xs = torch.nonzero(m[0], as_tuple=True)
        assert len(ys) == 16 and abs(int(ys.min()) - 30) <= 8 and abs(int(xs.min()) - 30) <= 8
    assert parse_policy("") == () and parse_policy("cutout, color") == ("cutout", "color")
    with pytest.raises(EdgefillError, match="unknown DiffAugment"):
        parse_policy("color,rotate")


def test_ema_averages_parameters_and_batchnorm_buffers():
    from edgefill.train.config import GanTrainConfig
    from edgefill.train.train_gan import ema_beta, ema_update

    a, b = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        b.weight.fill_(3.0)
        b.running_mean.fill_(2.0)
        b.num_batches_tracked.fill_(7)
    ema_update(a, b, 0.75)
    assert torch.allclose(a.weight, torch.full((3,), 1.5)) and torch.allclose(a.running_mean, torch.full((3,), 0.5))
    assert int(a.num_batches_tracked) == 7
    cfg = GanTrainConfig(ema_kimg=10, batch_size=64)
    assert ema_beta(cfg, 0) == 0.0  # no history yet: the EMA is G
    assert ema_beta(cfg, 10_000) < ema_beta(cfg, 1_000_000) == pytest.approx(0.5 ** (64 / 10_000))


def test_export_ships_the_best_ema_generator(tmp_path, sample_faces):
    """A tiny run with ticks every 2 steps: export (validated) takes best/'s EMA G, says so in the
    manifest, and its weights are exactly the best ones."""
    from safetensors.torch import load_file

    from edgefill.runtime.core.bundle import open_bundle

    data = tmp_path / "faces.npz"
    np.savez(data, images=np.concatenate([np.roll(sample_faces, s, axis=2) for s in range(8)]))
    run = tmp_path / "run"
    proc = run_cli("train", "gan", "--config", "tiny", "--data", str(data), "--out", str(run), "--epochs", "2",
                   "--batch-size", "16", "--checkpoint-every", "2", "--swd-images", "32", "--ema-kimg", "0.05")
    assert proc.returncode == 0, proc.stderr
    best = json.loads((run / "best" / "best.json").read_text())
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and best["swd"] == min(t["swd"] for t in log)
    bundle = tmp_path / "bundle"
    proc = run_cli("export", "--checkpoint", str(run), "--out", str(bundle), "--quiet")
    assert proc.returncode == 0, proc.stderr
    b = open_bundle(str(bundle))
    weights = b.manifest["training"]["gan"]["weights"]
    assert weights["generator"] == "ema, best by SWD" and weights["step"] == best["step"]
    want = load_file(str(run / "best" / "weights.safetensors"))
    stored = b.state_dict("generator")
    assert stored.keys() >= {"convs.0.weight", "norms.0.running_mean", "to_rgb.weight"}
    for k, v in stored.items():
        w = want[f"generator.{k}"].numpy()
        assert np.array_equal(np.asarray(v).reshape(w.shape).astype(w.dtype), w), k


def test_resume_from_a_missing_or_foreign_portable_file_is_one_line(tmp_path, sample_faces):
    data = tmp_path / "faces.npz"
    np.savez(data, images=np.concatenate([sample_faces] * 4))
    base = ["train", "gan", "--config", "tiny", "--data", str(data), "--batch-size", "16", "--resume"]
    assert_one_line_error(run_cli(*base, "--out", str(tmp_path / "new"), "--portable", str(tmp_path / "none.ckpt")),
                          "no checkpoint")
    junk = tmp_path / "junk.ckpt"
    torch.save({"kind": "something else"}, junk)
    assert_one_line_error(run_cli(*base, "--out", str(tmp_path / "new"), "--portable", str(junk)),
                          "not an edgefill GAN resume file")


def test_resume_keeps_the_runs_bf16_setting_unless_told(tmp_path, sample_faces):
    """--bf16/--no-bf16 on --resume switches the numerics (bf16 is emulated, ~30x slower, on CPUs
    without bf16 instructions); without the flag the run keeps its own setting."""
    from edgefill.train.checkpoint import load_checkpoint

    data = tmp_path / "faces.npz"
    np.savez(data, images=np.concatenate([sample_faces] * 4))
    base = ["train", "gan", "--config", "tiny", "--data", str(data), "--batch-size", "16", "--out", str(tmp_path / "r"),
            "--swd-images", "0"]
    assert run_cli(*base, "--epochs", "1").returncode == 0
    assert load_checkpoint(tmp_path / "r").config["cpu_bf16"] is True
    proc = run_cli(*base, "--epochs", "2", "--resume", "--no-bf16")
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(tmp_path / "r").config["cpu_bf16"] is False
    proc = run_cli(*base, "--epochs", "3", "--resume")
    assert proc.returncode == 0, proc.stderr
    ck = load_checkpoint(tmp_path / "r")
    assert ck.config["cpu_bf16"] is False and ck.state["epoch"] == 3
