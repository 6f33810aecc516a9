"""ONNX export: round trip, gradient, epsilon trap, tamper refusal, determinism, bad input, CLI.

All on the tiny models of conftest (seconds each on a 2-core CPU)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from edgefill.runtime.core.bundle import REFINER_WEIGHTS, STEP_INPUTS, STEP_OUTPUTS, WEIGHTS, open_bundle  # noqa: E402
from edgefill.runtime.errors import EdgefillError  # noqa: E402


def _session(bundle, name):
    return ort.InferenceSession(str(bundle.graph_path(name)), providers=["CPUExecutionProvider"])


def _step_feeds(z_dim, b=2, seed=0, **over):
    from edgefill.export.validate import step_feeds
    from edgefill.runtime.imaging.masks import center_mask, importance_weights

    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (b, z_dim)).astype(np.float32)
    y = rng.uniform(-1, 1, (b, 3, 64, 64)).astype(np.float32)
    W = np.repeat(importance_weights(center_mask()), b, 0)
    feeds = step_feeds(z, y, W)
    feeds.update({k: np.asarray(v, np.float32) for k, v in over.items()})
    return feeds


def test_round_trip_manifest_graphs_and_shared_weights(tiny_bundle, tiny_models):
    bundle = open_bundle(tiny_bundle)
    m = bundle.manifest
    assert m["precision"] == "fp32" and m["opset"] >= 17
    assert set(m["graphs"]) == {"generator", "discriminator", "refiner", "search_step"}
    assert set(m["files"]) == {WEIGHTS, REFINER_WEIGHTS, *(g["file"] for g in m["graphs"].values())}
    assert m["search"]["importance_weights"]["computed_by"] == "runtime"
    assert m["search"]["prior"] == "lsgan" and m["search"]["loss"]["prior_code"] == {"lsgan": 0.0, "log": 1.0}
    assert m["validation"]["passed"] and all(r["ok"] for r in m["validation"]["rows"])
    assert m["training"]["gan"]["data"]["source"] == "seeded random weights"
    assert list(m["graphs"]["search_step"]["inputs"]) == list(STEP_INPUTS)
    assert list(m["graphs"]["search_step"]["outputs"]) == list(STEP_OUTPUTS)

    G, D, R = tiny_models
    # the torch fallback's tensors are the checkpoint's, bit for bit
    for name, value in G.state_dict().items():
        if value.dtype == torch.float32:
            np.testing.assert_array_equal(bundle.tensor(f"generator.{name}"), value.numpy())
    # every graph points into the one weights.bin; nothing big is stored inline; step graph adds no tensors
    names = {}
    for gname in m["graphs"]:
        model = onnx.load(str(bundle.graph_path(gname)), load_external_data=False)
        ext = {i.name for i in model.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL}
        inline = [i for i in model.graph.initializer if i.data_location != onnx.TensorProto.EXTERNAL]
        assert all(len(i.raw_data) <= 4096 for i in inline), gname
        assert ext <= set(m["tensors"]), gname
        names[gname] = ext
    assert names["search_step"] <= names["generator"] | names["discriminator"]
    for file in (WEIGHTS, REFINER_WEIGHTS):  # one weight file per model family, each tensor once
        stored = sum(t["nbytes"] for t in m["tensors"].values() if t["file"] == file)
        assert stored <= (tiny_bundle / file).stat().st_size < stored + 64 * len(m["tensors"]), file
    assert {t["file"] for k, t in m["tensors"].items() if k.startswith("refiner.")} == {REFINER_WEIGHTS}

    # graphs run by path, with a dynamic batch, and match torch
    rng = np.random.default_rng(3)
    for b in (1, 5):
        z = rng.uniform(-1, 1, (b, bundle.z_dim)).astype(np.float32)
        (img,) = _session(bundle, "generator").run(None, {"z": z})
        with torch.no_grad():
            ref = G(torch.from_numpy(z)).numpy()
            assert img.shape == (b, 3, 64, 64) and np.abs(img - ref).max() < 1e-5
            (score,) = _session(bundle, "discriminator").run(None, {"image": ref})
            assert np.abs(score - D(torch.from_numpy(ref)).numpy()).max() < 1e-5
            hole = (rng.uniform(size=(b, 1, 64, 64)) < 0.3).astype(np.float32)  # the refiner sees the hole
            x = np.concatenate([ref, hole], axis=1)
            (refined,) = _session(bundle, "refiner").run(None, {"image_hole": x})
            assert np.abs(refined - R(torch.from_numpy(x)).numpy()).max() < 1e-5


@pytest.mark.parametrize("prior", ["lsgan", "log"])
def test_step_graph_gradient_matches_autograd(tiny_bundle, tiny_models, prior):
    from edgefill.runtime.core.torch_search import search_loss

    G, D, _ = tiny_models
    bundle = open_bundle(tiny_bundle)
    feeds = _step_feeds(bundle.z_dim, b=3, beta1=0.0, lam=0.5, prior={"lsgan": 0.0, "log": 1.0}[prior])
    out = dict(zip(STEP_OUTPUTS, _session(bundle, "search_step").run(list(STEP_OUTPUTS), feeds)))
    z = torch.from_numpy(feeds["z"]).requires_grad_(True)
    loss, x = search_loss(G, D, z, torch.from_numpy(feeds["y"]), torch.from_numpy(feeds["W"]), 0.5, prior)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    grad = grad.numpy()
    # beta1 = 0, m = 0: m_next is exactly the gradient
    assert np.abs(out["m_next"] - grad).max() <= 1e-4 * np.abs(grad).max()
    assert np.abs(out["loss"] - loss.detach().numpy()).max() <= 1e-5 * np.abs(loss.detach().numpy()).max()
    assert np.abs(out["image"] - x.detach().numpy()).max() < 1e-5
    np.testing.assert_array_equal(out["t_next"], feeds["t"] + 1)
    assert np.all(np.abs(out["z_next"]) <= 1.0)


@pytest.mark.parametrize("activation", ["relu", "leaky"])
def test_hand_written_vjp_matches_autograd_for_both_activations(activation):
    import dataclasses

    from edgefill.export.wrappers import SearchStep
    from edgefill.train.config import preset
    from edgefill.train.discriminator import Discriminator
    from edgefill.train.generator import Generator
    from edgefill.train.layers import randomise_batchnorm_stats
    from edgefill.runtime.core.torch_search import search_loss

    torch.manual_seed(1)
    g, d, _ = preset("tiny")
    G, D = Generator(dataclasses.replace(g, activation=activation, dropout=0.3)), Discriminator(d)
    randomise_batchnorm_stats(G, 0), randomise_batchnorm_stats(D, 1)
    G.eval(), D.eval()
    feeds = {k: torch.from_numpy(v) for k, v in _step_feeds(g.z_dim, b=2, beta1=0.0).items()}
    out = SearchStep(G, D).eval()(*(feeds[k] for k in STEP_INPUTS))
    z = feeds["z"].clone().requires_grad_(True)
    loss, _ = search_loss(G, D, z, feeds["y"], feeds["W"], float(feeds["lam"]), "lsgan")
    (grad,) = torch.autograd.grad(loss.sum(), z)
    assert (out[1] - grad).abs().max() <= 1e-5 * grad.abs().max()


def test_zero_gradient_step_is_finite_epsilon_trap(tiny_bundle):
    """W = 0 and lam = 0 give a zero gradient; Adam's update is then 0 / (0 + eps). A graph that
    folded eps away (the dynamo optimiser's trap) returns NaN here."""
    bundle = open_bundle(tiny_bundle)
    feeds = _step_feeds(bundle.z_dim, lam=0.0)
    feeds["W"] = np.zeros_like(feeds["W"])
    out = dict(zip(STEP_OUTPUTS, _session(bundle, "search_step").run(list(STEP_OUTPUTS), feeds)))
    assert np.all(np.isfinite(out["z_next"])) and np.all(np.isfinite(out["m_next"]))
    np.testing.assert_array_equal(out["z_next"], feeds["z"])
    model = onnx.load(str(bundle.graph_path("search_step")), load_external_data=False)
    assert "eps" in [i.name for i in model.graph.input]


def test_tampered_bundle_is_refused(tiny_bundle, tmp_path):
    for name in (WEIGHTS, "search_step.onnx"):
        copy = tmp_path / name
        shutil.copytree(tiny_bundle, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(EdgefillError, match="damaged"):
            open_bundle(copy)


def test_same_checkpoint_gives_same_hashes(tiny_bundle, tiny_gan_checkpoint, tiny_refiner_checkpoint, tmp_path):
    from edgefill.export.bundle_writer import export_bundle

    for _ in range(2):  # the second export replaces the first bundle in place
        again = export_bundle(str(tiny_gan_checkpoint), str(tmp_path / "again"),
                              refiner=str(tiny_refiner_checkpoint), validate=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]
    assert again["manifest"]["files"] == open_bundle(tiny_bundle).manifest["files"]
    assert again["manifest"]["tensors"] == open_bundle(tiny_bundle).manifest["tensors"]


def test_wrong_kind_checkpoint_is_a_clear_error(tiny_refiner_checkpoint, tiny_gan_checkpoint, tmp_path):
    from edgefill.export.bundle_writer import export_bundle

    with pytest.raises(EdgefillError, match="refiner checkpoint.*--checkpoint takes the GAN checkpoint"):
        export_bundle(str(tiny_refiner_checkpoint), str(tmp_path / "b"))
    with pytest.raises(EdgefillError, match="--refiner takes a refiner checkpoint"):
        export_bundle(str(tiny_gan_checkpoint), str(tmp_path / "b"), refiner=str(tiny_gan_checkpoint))
    assert not (tmp_path / "b").exists()


def test_failed_validation_writes_nothing(tiny_gan_checkpoint, tmp_path, monkeypatch):
    import edgefill.export.validate as V
    from edgefill.export.bundle_writer import ValidationFailed, export_bundle
    from edgefill.export.specs import Tolerance

    # an impossible gradient tolerance: the gradient rows must fail, with the numbers in the table
    monkeypatch.setitem(V.GRADIENT_TOL, "fp32", Tolerance(0.0, 0.0))
    out = tmp_path / "bundle"
    with pytest.raises(ValidationFailed) as info:
        export_bundle(str(tiny_gan_checkpoint), str(out))
    assert "dL/dz vs autograd" in info.value.table and "FAIL" in info.value.table
    assert "\n" not in str(info.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_step_graph_off_by_1e_3_fails_the_early_search_check(tiny_gan_checkpoint, tmp_path, monkeypatch):
    """The early-z limit widens only to torch32's own drift from float64 (tiny: far below 1e-3),
    so a step graph whose z is off by 1e-3 from the first step on is still refused."""
    import edgefill.export.validate as V
    from edgefill.export.bundle_writer import ValidationFailed, export_bundle

    real_run = V.Validator.run

    def off_run(self, name, feeds):
        out = real_run(self, name, feeds)
        if name == "search_step":
            out["z_next"] = out["z_next"] + np.float32(1e-3)
        return out

    monkeypatch.setattr(V.Validator, "run", off_run)
    with pytest.raises(ValidationFailed) as info:
        export_bundle(str(tiny_gan_checkpoint), str(tmp_path / "bundle"))
    early = [line for line in info.value.table.splitlines() if "z over steps 1-" in line]
    assert early and all("FAIL" in line and "torch32 vs float64" in line for line in early), info.value.table


def test_out_that_is_not_a_bundle_is_refused(tiny_gan_checkpoint, tmp_path):
    from edgefill.export.bundle_writer import export_bundle

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EdgefillError, match="not an edgefill bundle"):
        export_bundle(str(tiny_gan_checkpoint), str(tmp_path), validate=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_export_fp16_end_to_end(tiny_gan_checkpoint, tiny_refiner_checkpoint, tiny_bundle, tiny_models,
                                    tmp_path):
    out = tmp_path / "fp16"
    summary = tmp_path / "summary.json"
    proc = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--refiner", str(tiny_refiner_checkpoint),
                   "--out", str(out), "--fp16", "--json", str(summary), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dL/dz vs autograd" in proc.stdout and "fp16 cost" in proc.stdout and "FAIL" not in proc.stdout
    bundle = open_bundle(out)
    assert bundle.precision == "fp16"
    meta = bundle.manifest["tensors"]["generator.convs.0.weight"]
    assert meta["dtype"] == "float16"
    assert bundle.manifest["tensors"]["generator.norms.0.running_var"]["dtype"] == "float32"
    ref = tiny_models[0].state_dict()["convs.0.weight"].numpy()
    assert np.abs(bundle.tensor("generator.convs.0.weight") - ref).max() <= 1e-3 * np.abs(ref).max()
    for file in (WEIGHTS, REFINER_WEIGHTS):
        assert (out / file).stat().st_size < 0.6 * (tiny_bundle / file).stat().st_size, file
    data = json.loads(summary.read_text())
    assert data["precision"] == "fp16" and all(r["ok"] for r in data["validation"])
    # the fp16 graphs run on the CPU provider with float32 I/O
    z = np.zeros((2, bundle.z_dim), np.float32)
    (img,) = _session(bundle, "generator").run(None, {"z": z})
    assert img.dtype == np.float32 and img.shape == (2, 3, 64, 64)


def test_cli_export_bad_input_is_one_line(tiny_refiner_checkpoint, tmp_path):
    proc = run_cli("export", "--checkpoint", str(tiny_refiner_checkpoint), "--out", str(tmp_path / "b"))
    assert_one_line_error(proc, "refiner checkpoint")
    proc = run_cli("export", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "b"))
    assert_one_line_error(proc, "no edgefill checkpoint")
    assert not (tmp_path / "b").exists()


def _tiny_refiner_run(folder, seed: int, width: int | None = None):
    """A refiner run folder holding the tiny preset's refiner (width `width`) with seeded weights."""
    from dataclasses import replace

    from edgefill.train.checkpoint import save_checkpoint
    from edgefill.train.config import RefinerTrainConfig, preset, to_dict
    from edgefill.train.layers import randomise_batchnorm_stats
    from edgefill.train.refiner import build_refiner

    r = preset("tiny")[2]
    r = replace(r, width=width or r.width)
    torch.manual_seed(seed)
    R = build_refiner(r)
    randomise_batchnorm_stats(R, seed=seed)
    save_checkpoint(folder, "refiner", to_dict(RefinerTrainConfig(refiner=r)),
                    {"epoch": 1, "step_in_epoch": 0, "step": 1, "history": {"loss": []}}, {"refiner": R.eval()}, {})
    return folder


def test_average_refiner_means_the_weights_and_refuses_another_architecture(tiny_gan_checkpoint,
                                                                            tiny_refiner_checkpoint, tmp_path):
    """--average-refiner: the refiner's weights and batch-norm statistics become the mean of its
    own and the other runs' (integer buffers stay its own), recorded in the manifest; a refiner
    of another width, or no refiner to average, is one clear error line and writes nothing."""
    from edgefill.export.bundle_writer import load_models

    others = [str(_tiny_refiner_run(tmp_path / f"r{i}", seed=i)) for i in (1, 2)]
    base = load_models(str(tiny_gan_checkpoint), str(tiny_refiner_checkpoint))[0].refiner.state_dict()
    loose = [load_models(str(tiny_gan_checkpoint), o)[0].refiner.state_dict() for o in others]
    models, training, *_ = load_models(str(tiny_gan_checkpoint), str(tiny_refiner_checkpoint), average_refiner=others)
    got = models.refiner.state_dict()
    floats = [k for k, v in base.items() if v.is_floating_point()]
    assert floats and any(k.endswith("running_var") for k in floats)
    for k, v in got.items():
        want = (base[k] + loose[0][k] + loose[1][k]) / 3 if k in floats else base[k]
        assert torch.allclose(v, want, atol=1e-6), k
    assert not torch.equal(got[floats[0]], base[floats[0]])
    assert [r["checkpoint"] for r in training["refiner"]["averaged_with"]] == others

    wide = _tiny_refiner_run(tmp_path / "wide", seed=3, width=16)  # the tiny preset is 8 wide
    proc = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--refiner", str(tiny_refiner_checkpoint),
                   "--average-refiner", str(wide), "--out", str(tmp_path / "b"))
    assert_one_line_error(proc, "not the same refiner architecture")
    proc = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--average-refiner", others[0],
                   "--out", str(tmp_path / "b"))
    assert_one_line_error(proc, "--average-refiner needs a refiner")
    assert not (tmp_path / "b").exists()


def test_reexport_keeps_the_source_bundles_search_defaults(tiny_gan_checkpoint, tmp_path):
    """A bundle re-exported from a bundle keeps its search defaults (blend, lam, lr, ...): once they
    silently fell back to the built-in ones, and the shipped refiner met another blend than the one
    it was trained on. Only the fields given are replaced."""
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.core.search_config import SearchConfig

    first = tmp_path / "first"
    export_bundle(str(tiny_gan_checkpoint), str(first), validate=False,
                  search_overrides={"blend": "poisson", "lam": 1.0, "lr": 0.01, "steps": 7, "restarts": None})
    assert open_bundle(first).search_defaults == SearchConfig(blend="poisson", lam=1.0, lr=0.01, steps=7)
    export_bundle(str(first), str(tmp_path / "again"), validate=False, search_overrides={"steps": 9})
    assert open_bundle(tmp_path / "again").search_defaults == SearchConfig(blend="poisson", lam=1.0, lr=0.01, steps=9)
