"""The search's start network (issue: amortised search): training (tiny, resumable), export into
the bundle (validated like every graph), the runtime's start choice on both backends, and old
bundles without an encoder. Quality is measured by `edgefill evaluate --steps-curve`, not here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory, sample_faces):
    """64 faces (the 8 samples, flipped and rolled) as a small .npz dataset."""
    faces = np.concatenate([sample_faces, sample_faces[:, :, ::-1]])
    faces = np.concatenate([np.roll(faces, s, axis=2) for s in range(4)])
    path = tmp_path_factory.mktemp("data") / "faces.npz"
    np.savez(path, images=faces)
    return path


@pytest.fixture(scope="module")
def tiny_encoder_run(tmp_path_factory, tiny_gan_checkpoint, faces_npz):
    """`edgefill train encoder` on the tiny GAN: 3 synthetic + 3 real steps, batch 8."""
    out = tmp_path_factory.mktemp("enc") / "run"
    proc = run_cli("train", "encoder", "--data", str(faces_npz), "--gan", str(tiny_gan_checkpoint), "--out", str(out),
                   "--synthetic-steps", "3", "--real-steps", "3", "--batch-size", "8", "--width", "4",
                   "--checkpoint-every", "2")
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def encoder_bundle(tmp_path_factory, tiny_bundle, tiny_encoder_run):
    """The tiny bundle re-exported from itself with the encoder (validated), encoder start 7 x 1."""
    from edgefill.export.bundle_writer import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny_enc"
    summary = export_bundle(str(tiny_bundle), str(out), encoder=str(tiny_encoder_run[0]), validate=True,
                            encoder_search={"steps": 7, "restarts": 1})
    return out, summary


def test_train_encoder_writes_checkpoint_pictures_and_log(tiny_encoder_run):
    out, summary = tiny_encoder_run
    assert summary["steps"] == 6 and summary["phase"] == "real"
    for key in ("val_hole_psnr_encoder", "val_hole_psnr_20_steps", "latent", "contextual", "prior"):
        assert np.isfinite(summary[key]), key
    assert (out / "checkpoint" / "checkpoint.json").is_file()
    assert (out / "encoder_step00003.png").is_file() and (out / "encoder_step00006.png").is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["synthetic", "real"]


def test_train_encoder_resume_continues_exactly(tmp_path, tiny_gan_checkpoint, faces_npz):
    """4 steps straight == 2 steps, then resumed to 4 (data drawn from (seed, step))."""
    from edgefill.train.checkpoint import load_checkpoint
    from edgefill.train.config import EncoderConfig, EncoderTrainConfig
    from edgefill.train.train_encoder import train_encoder

    def cfg(real):
        return EncoderTrainConfig(encoder=EncoderConfig(width=4), synthetic_steps=2, real_steps=real, batch_size=8,
                                  checkpoint_every=1, device="cpu")

    train_encoder(cfg(2), str(faces_npz), str(tiny_gan_checkpoint), str(tmp_path / "a"), progress=False)
    train_encoder(cfg(0), str(faces_npz), str(tiny_gan_checkpoint), str(tmp_path / "b"), progress=False)
    train_encoder(cfg(2), str(faces_npz), str(tiny_gan_checkpoint), str(tmp_path / "b"), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a.state["step"] == b.state["step"] == 4
    for k in a.tensors:
        assert np.array_equal(a.tensors[k].numpy(), b.tensors[k].numpy()), k


def test_init_encoder_starts_from_given_weights_and_hole_weight_adds_the_hole_term(tmp_path, tiny_encoder_run,
                                                                                    tiny_gan_checkpoint, faces_npz):
    """--init-encoder loads an encoder run's weights (lr 0 keeps them, BN statistics aside);
    --hole-weight adds the L1 against the truth in the hole to the real phase's loss."""
    from edgefill.train.checkpoint import load_checkpoint

    out = tmp_path / "ft"
    proc = run_cli("train", "encoder", "--data", str(faces_npz), "--gan", str(tiny_gan_checkpoint), "--out", str(out),
                   "--synthetic-steps", "0", "--real-steps", "1", "--batch-size", "8", "--width", "4", "--lr", "0",
                   "--hole-weight", "2", "--init-encoder", str(tiny_encoder_run[0]))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["hole_l1"] > 0 and np.isfinite(summary["hole_l1"])
    assert summary["loss"] == pytest.approx(summary["known_l1"] + summary["contextual"] + summary["prior"]
                                            + summary["hole_l1"], rel=1e-5)
    before, after = load_checkpoint(tiny_encoder_run[0]), load_checkpoint(out)
    weights = [k for k in before.tensors if k.endswith(".weight")]
    assert weights and all(np.array_equal(before.tensors[k].numpy(), after.tensors[k].numpy()) for k in weights)
    # the bundle's record of a fine-tune names the run it started from, with that run's own record
    from edgefill.export.bundle_writer import encoder_record

    record = encoder_record(str(out))
    assert (record["hole_weight"], record["lr"], record["steps"]) == (2.0, 0.0, 1)
    assert record["init"]["checkpoint"] == str(tiny_encoder_run[0]) and "init" not in record["init"]
    assert record["init"]["steps"] == load_checkpoint(tiny_encoder_run[0]).state["step"]


@pytest.mark.parametrize("init,extra,fragment", [
    ("run", ["--width", "8"], "is not the one to train"),
    ("missing", [], "--init-encoder"),
    ("bundle", [], "has no encoder"),
])
def test_bad_init_encoder_is_one_line(tmp_path, tiny_encoder_run, tiny_gan_checkpoint, tiny_bundle, faces_npz, init,
                                      extra, fragment):
    path = {"run": tiny_encoder_run[0], "missing": tmp_path / "nothing", "bundle": tiny_bundle}[init]
    proc = run_cli("train", "encoder", "--data", str(faces_npz), "--gan", str(tiny_gan_checkpoint),
                   "--out", str(tmp_path / "o"), "--synthetic-steps", "0", "--real-steps", "1", "--batch-size", "8",
                   "--init-encoder", str(path), *extra)
    assert_one_line_error(proc, fragment)


def test_encoder_bundle_is_validated_and_records_its_start_defaults(encoder_bundle):
    from edgefill.runtime.core.bundle import open_bundle

    root, summary = encoder_bundle
    rows = [r for r in summary["validation"] if r["check"].startswith("encoder")]
    assert len(rows) >= 3 and all(r["ok"] for r in rows), rows
    assert (root / "encoder.onnx").is_file() and (root / "encoder.bin").is_file()
    b = open_bundle(root)
    assert b.has_graph("encoder") and b.manifest["models"]["encoder"]["width"] == 4
    assert b.search_defaults_for("encoder").steps == 7 and b.search_defaults_for("encoder").restarts == 1
    assert b.search_defaults_for("random") == b.search_defaults  # the random start keeps its own
    assert "encoder" in b.manifest["training"]


def test_reexporting_a_bundle_keeps_its_weights_bit_for_bit(encoder_bundle, tiny_bundle):
    from edgefill.runtime.core.bundle import open_bundle

    old, new = open_bundle(tiny_bundle), open_bundle(encoder_bundle[0])
    for name in old.manifest["tensors"]:
        assert np.array_equal(old.tensor(name), new.tensor(name)), name


def test_encoder_start_matches_the_graph_and_is_restart_zero(encoder_bundle, sample_faces):
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.core.starts import EncoderStart, RandomStart, encoder_input, random_rows
    from edgefill.runtime.imaging.masks import make_mask

    pipe = Pipeline(encoder_bundle[0], provider="cpu")
    masks = np.stack([make_mask("center")] * 3)
    cfg = pipe.config(restarts=3, start="encoder")
    z0 = pipe.start(sample_faces[:3], masks, cfg, EncoderStart(), seeds=[5, 6, 7])
    z_enc = pipe.engine.forward("encoder", encoder_input(sample_faces[:3], masks))
    assert np.allclose(z0[::3], z_enc) and np.abs(z_enc).max() <= 1.0
    rand = random_rows(3, 3, pipe.bundle.z_dim, [5, 6, 7])
    keep = np.ones(9, bool)
    keep[::3] = False
    assert np.array_equal(z0[keep], rand[keep])  # the other restarts stay random, same seeds
    assert pipe.make_start(None).name == "encoder" and pipe.make_start("random") == RandomStart()


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_inpaint_uses_the_encoder_by_default_on_both_backends(encoder_bundle, sample_faces, backend):
    from edgefill.runtime import Inpainter

    inp = Inpainter(encoder_bundle[0], provider="cpu", backend=backend)
    res = inp.inpaint(sample_faces[0], "center", seed=1)
    assert res.stats["init"] == "encoder" and res.stats["steps"] == 7 and res.stats["restarts"] == 1
    rnd = inp.inpaint(sample_faces[0], "center", seed=1, init="random")
    assert rnd.stats["init"] == "random" and rnd.stats["steps"] == inp.search_defaults.steps
    # outside the hole nothing changes, whatever the start
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    assert np.array_equal(res.image[~hole], sample_faces[0][~hole])


def test_onnx_and_torch_agree_from_the_encoder_start(encoder_bundle, sample_faces):
    from edgefill.runtime import Inpainter
    from edgefill.runtime.imaging.masks import make_mask

    masks = np.stack([make_mask("center")] * 2)
    out = {}
    for backend in ("onnx", "torch"):
        inp = Inpainter(encoder_bundle[0], provider="cpu", backend=backend)
        out[backend] = inp.inpaint_batch(sample_faces[:2], masks, steps=10, refine=False, init="encoder")
    assert np.allclose(out["onnx"].search.loss, out["torch"].search.loss, rtol=1e-4)


def test_old_bundle_without_encoder_searches_from_random_and_refuses_init_encoder(tiny_bundle, sample_faces,
                                                                                   tmp_path):
    from edgefill.runtime import Inpainter
    from edgefill.runtime.errors import EdgefillError

    inp = Inpainter(tiny_bundle, provider="cpu")
    assert not inp.bundle.has_graph("encoder")
    res = inp.inpaint(sample_faces[0], "center", steps=3)
    assert res.stats["init"] == "random"
    with pytest.raises(EdgefillError, match="has no encoder"):
        inp.inpaint(sample_faces[0], "center", steps=3, init="encoder")
    src = tmp_path / "face.png"
    from edgefill.runtime.imaging.images import write_image

    write_image(src, sample_faces[0])
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--bundle",
                   str(tiny_bundle), "--init", "encoder", "--steps", "2")
    assert_one_line_error(proc, "has no encoder")


def test_cli_inpaint_reports_the_start(encoder_bundle, sample_faces, tmp_path):
    from edgefill.runtime.imaging.images import write_image

    src = tmp_path / "face.png"
    write_image(src, sample_faces[1])
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--bundle",
                   str(encoder_bundle[0]), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["settings"]["init"] == "encoder" and report["settings"]["steps"] == 7
    assert report["outputs"][0]["steps_run"] == 7


def test_bad_encoder_checkpoint_is_one_line(tiny_bundle, tiny_refiner_checkpoint, tmp_path):
    proc = run_cli("export", "--checkpoint", str(tiny_bundle), "--encoder", str(tiny_refiner_checkpoint),
                   "--out", str(tmp_path / "b"), "--no-validate")
    assert_one_line_error(proc, "--encoder takes an encoder checkpoint")
    assert not (tmp_path / "b").exists()


def test_record_at_snapshots_are_the_best_z_so_far_on_both_backends(encoder_bundle, sample_faces):
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.core.starts import RandomStart
    from edgefill.runtime.imaging.masks import make_mask

    masks = np.stack([make_mask("center")] * 2)
    for backend in ("onnx", "torch"):
        pipe = Pipeline(encoder_bundle[0], provider="cpu", backend=backend)
        cfg = pipe.config(steps=6, restarts=2)
        z0 = pipe.start(sample_faces[:2], masks, cfg, RandomStart(), [0, 1])
        y, W = pipe.problem(sample_faces[:2], masks)
        full = pipe.search(y, W, cfg, z0, record_at=(1, 3, 6))
        short = pipe.search(y, W, cfg.replace(steps=3), z0)
        assert set(full.extra["z_at"]) == {1, 3, 6}, backend
        assert np.array_equal(full.extra["z_at"][6], full.z), backend
        assert np.array_equal(full.extra["z_at"][3], short.z), backend
        assert full.extra["seconds_at"][1] <= full.extra["seconds_at"][6]


def test_cli_steps_curve_writes_json_table_and_plot(encoder_bundle, faces_npz, tmp_path):
    out_json, plot = tmp_path / "curve.json", tmp_path / "curve.png"
    proc = run_cli("evaluate", "--data", str(faces_npz), "--bundle", str(encoder_bundle[0]), "--steps-curve",
                   "0,2,4", "--limit", "3", "--json", str(out_json), "--plot", str(plot), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out_json.read_text())
    assert set(rep["curve"]) == {"random", "encoder"} and rep["settings"]["images"] == 3
    for name, c in rep["curve"].items():
        assert [p["steps"] for p in c["points"]] == [0, 2, 4]
        assert [p["step_evaluations"] for p in c["points"]] == [0, 2 * c["points"][0]["restarts"],
                                                                4 * c["points"][0]["restarts"]]
        assert all(p["n"] == 3 and np.isfinite(p["hole_psnr"]) and p["seconds_per_face"] > 0 for p in c["points"])
    assert rep["curve"]["encoder"]["points"][0]["restarts"] == 1  # the encoder start's own defaults
    assert "| encoder | 4 x 1 |" in proc.stdout and "| telea |" in proc.stdout
    assert plot.is_file() and plot.stat().st_size > 1000


@pytest.mark.parametrize("args, fragment", [
    (["--mask", "center,half"], "one --mask kind"),
    (["--starts", "random,sideways"], "--starts takes random"),
    (["--steps-curve", "0,x"], "comma-separated integers"),
    (["--plot", "c.bmp"], "--plot must end"),
])
def test_steps_curve_bad_input_is_one_line(encoder_bundle, faces_npz, tmp_path, args, fragment):
    base = {"--steps-curve": "0,2", "--starts": "random", "--mask": "center"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv]
    proc = run_cli("evaluate", "--data", str(faces_npz), "--bundle", str(encoder_bundle[0]), "--limit", "2",
                   "--no-progress", *flat)
    assert_one_line_error(proc, fragment)


def test_a_new_refiner_on_a_bundle_keeps_its_encoder_and_start_settings(tmp_path, encoder_bundle,
                                                                       tiny_refiner_checkpoint):
    """Shipping a retrained refiner must not drop the bundle's encoder (nor its 7 x 1 start)."""
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.core.bundle import open_bundle

    out = tmp_path / "new_refiner"
    export_bundle(str(encoder_bundle[0]), str(out), refiner=str(tiny_refiner_checkpoint), validate=True)
    old, new = open_bundle(encoder_bundle[0]), open_bundle(out)
    assert new.has_graph("encoder") and new.search_defaults_for("encoder").steps == 7
    for name in old.manifest["tensors"]:
        if name.startswith("encoder."):
            assert np.array_equal(old.tensor(name), new.tensor(name)), name
    assert new.manifest["training"]["encoder"] == old.manifest["training"]["encoder"]
    assert new.manifest["training"]["refiner"]["checkpoint"] == str(tiny_refiner_checkpoint)


def test_a_new_encoder_on_a_bundle_keeps_its_start_settings_unless_given(tmp_path, encoder_bundle, tiny_encoder_run):
    """A retrained encoder keeps the bundle's tuned encoder start (7 x 1 here); it fell back to the
    random start's search (every step and restart of it) before; --encoder-steps still replaces it."""
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.core.bundle import open_bundle

    kept, given = tmp_path / "kept", tmp_path / "given"
    export_bundle(str(encoder_bundle[0]), str(kept), encoder=str(tiny_encoder_run[0]), validate=False)
    export_bundle(str(encoder_bundle[0]), str(given), encoder=str(tiny_encoder_run[0]), validate=False,
                  encoder_search={"steps": 3, "restarts": None})
    assert open_bundle(kept).manifest["search"]["encoder_start"] == {"steps": 7, "restarts": 1}
    assert open_bundle(kept).manifest["training"]["encoder"]["hole_weight"] == 0.0  # the recipe travels along
    assert open_bundle(given).manifest["search"]["encoder_start"] == {"steps": 3, "restarts": 1}
