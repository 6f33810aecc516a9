"""Shared fixtures: tiny models, the shared face data (skipped with a reason when absent),
and a tiny exported bundle. Everything here runs in seconds on a 2-core CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FACES = REPO.parent / "shared" / "data" / "faces"
SAMPLES = REPO / "samples"

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m edgefill.runtime ARGS` in a subprocess; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgefill.runtime", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def run_cli_on_unwritable(folder: Path, kind: str, *args: str, timeout: float = 300):
    """Run the CLI with `folder` made unwritable for real, even for root (who writes through a
    folder's permissions): kind "read-only" (a read-only bind mount) or "full" (a 4 KiB tmpfs
    already filled by a hidden .fill file, so every write meets a full disk), in a private mount namespace (unshare -m). Returns
    (completed process, the folder's entries as the command left them), or skips where the
    machine allows neither."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare here: no way to make a folder unwritable for root")
    mount = {"read-only": 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"',
             "full": 'mount -t tmpfs -o size=4k tmpfs "$0" && { head -c 8192 /dev/zero > "$0/.fill" 2>/dev/null; true; }'}[kind]
    script = mount + ' || exit 97; "$@"; rc=$?; echo "LEFT:$(ls -A "$0" | tr "\\n" "|")"; exit $rc'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), sys.executable, "-m", "edgefill.runtime",
                           *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode == 97:
        pytest.skip(f"cannot make a {kind} folder here: {proc.stderr.strip()[:200]}")
    left_line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LEFT:")]
    left = [x for x in left_line[-1][5:].split("|") if x and x != ".fill"] if left_line else []
    proc.stdout = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("LEFT:"))
    return proc, left


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str = "") -> None:
    """A bad-input failure: non-zero exit, one `edgefill: error:` line, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgefill: error:"), proc.stderr
    assert fragment.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="session")
def shared_test_npz() -> Path:
    path = SHARED_FACES / "test.npz"
    if not path.is_file():
        pytest.skip(f"shared CelebA test faces not found at {path} (../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def sample_faces() -> np.ndarray:
    """The 8 committed sample faces, uint8 (8,64,64,3) RGB."""
    from edgefill.runtime.imaging.images import read_image

    files = sorted((SAMPLES / "faces").glob("*.png"))
    assert len(files) == 8
    return np.stack([read_image(f) for f in files])


def jittered_faces(sample_faces: np.ndarray, copies: int) -> np.ndarray:
    """8 x copies face-like images uint8 (8*copies,64,64,3): the 8 samples shifted sideways, every
    other copy mirrored, each image's colour jittered (seeded): a face set for distribution tests."""
    rng = np.random.default_rng(0)
    out = []
    for s in range(copies):
        imgs = np.roll(sample_faces, s - copies // 2, axis=2)
        if s % 2:
            imgs = imgs[:, :, ::-1]
        out.append(np.clip(imgs.astype(np.int16) + rng.integers(-12, 13, (8, 1, 1, 3)), 0, 255).astype(np.uint8))
    return np.concatenate(out)


@pytest.fixture(scope="session")
def tiny_models():
    """Seeded tiny G, D, R in eval mode with non-trivial BatchNorm statistics."""
    import torch

    from edgefill.train.config import preset
    from edgefill.train.discriminator import Discriminator
    from edgefill.train.generator import Generator
    from edgefill.train.layers import randomise_batchnorm_stats
    from edgefill.train.refiner import build_refiner

    torch.manual_seed(0)
    g, d, r = preset("tiny")
    models = Generator(g), Discriminator(d), build_refiner(r)
    for i, m in enumerate(models):
        randomise_batchnorm_stats(m, seed=i)
        m.eval()
    with torch.no_grad():  # the U-Net starts as the identity; a random correction makes the refiner visible
        torch.nn.init.normal_(models[2].out.weight, 0.0, 0.05)
    return models


@pytest.fixture(scope="session")
def tiny_gan_checkpoint(tmp_path_factory, tiny_models) -> Path:
    from edgefill.train.checkpoint import save_checkpoint
    from edgefill.train.config import GanTrainConfig, preset, to_dict

    g, d, _ = preset("tiny")
    out = tmp_path_factory.mktemp("tiny_gan")
    save_checkpoint(out, "gan", to_dict(GanTrainConfig(preset="tiny", generator=g, discriminator=d)),
                    {"epoch": 0, "step_in_epoch": 0, "step": 0, "history": {"d_loss": [], "g_loss": []},
                     "data": {"source": "seeded random weights", "images": 0, "skipped": 0}},
                    {"generator": tiny_models[0], "discriminator": tiny_models[1]}, {})
    return out


@pytest.fixture(scope="session")
def tiny_refiner_checkpoint(tmp_path_factory, tiny_models, tiny_gan_checkpoint) -> Path:
    from edgefill.train.checkpoint import save_checkpoint
    from edgefill.train.config import RefinerTrainConfig, preset, to_dict

    _, _, r = preset("tiny")
    out = tmp_path_factory.mktemp("tiny_refiner")
    save_checkpoint(out, "refiner", to_dict(RefinerTrainConfig(refiner=r)),
                    {"epoch": 0, "step_in_epoch": 0, "step": 0, "history": {"loss": []},
                     "gan": str(tiny_gan_checkpoint)},
                    {"refiner": tiny_models[2]}, {})
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_gan_checkpoint, tiny_refiner_checkpoint) -> Path:
    """A tiny bundle exported (and validated) through the public export API."""
    from edgefill.export.bundle_writer import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_bundle(str(tiny_gan_checkpoint), str(out), refiner=str(tiny_refiner_checkpoint), validate=True,
                  progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_old_refiner_bundle(tmp_path_factory, tiny_gan_checkpoint) -> Path:
    """A tiny bundle whose refiner is the first kind (autoencoder, RGB in: no hole channel),
    as every bundle exported before the hole-aware refiner has."""
    import torch

    from edgefill.export.bundle_writer import export_bundle
    from edgefill.train.checkpoint import save_checkpoint
    from edgefill.train.config import RefinerConfig, RefinerTrainConfig, to_dict
    from edgefill.train.layers import randomise_batchnorm_stats
    from edgefill.train.refiner import Refiner

    torch.manual_seed(1)
    cfg = RefinerConfig(width=8)
    R = Refiner(cfg)
    randomise_batchnorm_stats(R, seed=5)
    ck = tmp_path_factory.mktemp("tiny_old_refiner")
    save_checkpoint(ck, "refiner", to_dict(RefinerTrainConfig(refiner=cfg)),
                    {"epoch": 0, "step_in_epoch": 0, "step": 0, "history": {"mse": []}, "gan": str(tiny_gan_checkpoint)},
                    {"refiner": R.eval()}, {})
    out = tmp_path_factory.mktemp("bundles") / "tiny_old_refiner"
    export_bundle(str(tiny_gan_checkpoint), str(out), refiner=str(ck), validate=True, progress=False)
    return out
