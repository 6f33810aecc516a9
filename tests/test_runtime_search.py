"""The runtime's search on the tiny bundle: ORT step graph vs the torch fallback, the IO-bound
loop vs a plain host loop, early stopping, the time budget, eps, providers, refiner, fallback.

Stated agreement, ORT backend vs torch fallback, same starts (tiny bundle, 4 images x 3
restarts, both prior forms): per-image best loss and loss history within 1e-5 relative;
after 10 steps z within 1e-4 and G(z_best) within 1e-5; after 30 steps G(z_best) within 5e-4
(images in [-1,1]: 1/16 of a grey level). Later, z coordinates whose gradient is ~0 drift
apart under Adam's normalisation without changing G(z) (measured on 4 images x 3 restarts:
loss 3e-7 relative after 100 steps, images 3e-5, z up to 0.6 in such coordinates).
"""
import json
import logging
import shutil

import numpy as np
import pytest

from edgefill.runtime.core.bundle import PRIOR_CODE, sha256_file
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.images import to_model
from edgefill.runtime.imaging.masks import importance_weights, make_mask
from edgefill.runtime.core.starts import initial_z

KINDS = ("center", "half-left", "pattern", "random")


@pytest.fixture(scope="module")
def onnx_inpainter(tiny_bundle):
    from edgefill.runtime.frontends.inpainter import Inpainter

    return Inpainter(tiny_bundle, provider="cpu")


@pytest.fixture(scope="module")
def problem(sample_faces):
    return sample_faces[:4], np.stack([make_mask(k) for k in KINDS])


@pytest.mark.parametrize("prior", ["lsgan", "log"])
def test_onnx_and_torch_fallback_agree(tiny_bundle, onnx_inpainter, problem, prior):
    from edgefill.runtime.frontends.inpainter import Inpainter

    torch_inp = Inpainter(tiny_bundle, backend="torch")
    assert (onnx_inpainter.backend, torch_inp.backend) == ("onnx", "torch")
    images, masks = problem
    for steps, img_tol, z_tol in ((10, 1e-5, 1e-4), (30, 5e-4, None)):
        cfg = onnx_inpainter.search_defaults.replace(steps=steps, restarts=3, prior=prior)
        a = onnx_inpainter.search(images, masks, cfg, seed=3)
        b = torch_inp.search(images, masks, cfg, seed=3)
        assert a.steps_run == b.steps_run == steps and a.history.shape == b.history.shape == (steps, 4)
        assert a.images.shape == (4, 3, 64, 64) and a.images.dtype == np.float32
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)
        np.testing.assert_allclose(a.history, b.history, rtol=1e-5)
        np.testing.assert_allclose(a.images, b.images, atol=img_tol)
        if z_tol:
            # the step graph's updates are torch's: the same z at every step. (The public search
            # scores its last step in numpy, so where two steps' losses tie to 1e-7 either may win.)
            y, W, z0 = to_model(images), importance_weights(masks), initial_z(4, 3, 100, 3)
            full = onnx_inpainter.pipeline._searcher.steps(y, W, cfg, z0)
            np.testing.assert_allclose(full.z, torch_inp.pipeline.search(y, W, cfg, z0).z, atol=z_tol)


def test_io_bound_loop_equals_a_plain_host_loop(onnx_inpainter, problem):
    """The z-buffer pool must hand back exactly the z each image's best loss was evaluated at;
    the search with its last step as a scoring pass gives the same z (losses to rounding)."""
    images, masks = problem
    cfg = onnx_inpainter.search_defaults.replace(steps=25, restarts=3, lr=0.1)
    searcher = onnx_inpainter.pipeline._searcher
    k, n = cfg.restarts, len(images)
    z = initial_z(n, k, 100, 5)
    res = searcher.steps(to_model(images), importance_weights(masks), cfg, z)
    scored = onnx_inpainter.search(images, masks, cfg, seed=5)
    np.testing.assert_array_equal(scored.z, res.z)
    np.testing.assert_allclose(scored.loss, res.loss, rtol=1e-5)
    np.testing.assert_allclose(scored.images, res.images, atol=1e-6)

    sess = onnx_inpainter.engine.session("search_step")
    feeds = {"y": np.repeat(to_model(images), k, 0), "W": np.repeat(importance_weights(masks), k, 0),
             **{name: np.array(getattr(cfg, name), np.float32) for name in ("lam", "lr", "beta1", "beta2", "eps")},
             "prior": np.array(PRIOR_CODE[cfg.prior], np.float32)}
    m, v, t = np.zeros_like(z), np.zeros_like(z), np.zeros(len(z), np.float32)
    best_loss, best_z = np.full(n, np.inf, np.float32), np.zeros((n, 100), np.float32)
    for _ in range(cfg.steps):
        z_next, m, v, t, loss = sess.run(["z_next", "m_next", "v_next", "t_next", "loss"],
                                         {**feeds, "z": z, "m": m, "v": v, "t": t})
        per = loss.reshape(n, k)
        for i in range(n):
            j = int(per[i].argmin())
            if per[i, j] < best_loss[i]:
                best_loss[i], best_z[i] = per[i, j], z[i * k + j]
        z = z_next
    np.testing.assert_array_equal(res.loss, best_loss)
    np.testing.assert_array_equal(res.z, best_z)
    np.testing.assert_allclose(res.images, onnx_inpainter.engine.forward("generator", best_z), atol=0)


@pytest.mark.parametrize("prior", ["lsgan", "log"])
def test_a_one_step_search_is_a_scoring_pass_with_the_same_result(onnx_inpainter, problem, prior):
    """steps=1 never uses the gradient: the forward graphs and score_loss give the step graph's
    loss, z and image for every image's best restart."""
    from edgefill.runtime.core.ort_search import score_loss

    images, masks = problem
    searcher = onnx_inpainter.pipeline._searcher
    cfg = onnx_inpainter.search_defaults.replace(steps=1, restarts=3, lam=0.3, prior=prior)
    y, W = to_model(images), importance_weights(masks)
    z0 = initial_z(len(images), 3, 100, 2)
    ticks = []
    a = searcher.search(y, W, cfg, z0, progress=ticks.append)
    b = searcher.steps(y, W, cfg, z0)
    assert a.extra.get("scored") and not b.extra.get("scored") and ticks == [1]
    assert a.steps_run == b.steps_run == 1 and a.history.shape == b.history.shape == (1, 4)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)
    # the tiny random G gives restarts whose losses tie to 1e-6, so compare each winner to its start
    for i in range(len(images)):
        assert any(np.array_equal(a.z[i], row) for row in z0[i * 3:(i + 1) * 3])
    np.testing.assert_allclose(a.images, onnx_inpainter.engine.forward("generator", a.z), atol=1e-6)
    one = cfg.replace(restarts=1)
    c, d = searcher.search(y, W, one, z0[::3]), searcher.steps(y, W, one, z0[::3])
    np.testing.assert_allclose(c.loss, d.loss, rtol=1e-5)
    np.testing.assert_array_equal(c.z, d.z)
    np.testing.assert_allclose(c.images, d.images, atol=1e-5)
    with pytest.raises(EdgefillError, match="prior form"):
        score_loss(a.images, np.zeros(4), y, W, 1.0, "hinge")


def test_eps_survives_graph_optimisation(onnx_inpainter):
    """A zero gradient (nothing known, lam = 0) must leave z unchanged, not NaN: eps is an input."""
    sess = onnx_inpainter.engine.session("search_step")
    z = initial_z(2, 1, 100, 0)
    zeros = np.zeros_like(z)
    out = sess.run(["z_next", "loss"], {"z": z, "m": zeros, "v": zeros, "t": np.zeros(2, np.float32),
                                         "y": np.zeros((2, 3, 64, 64), np.float32),
                                         "W": np.zeros((2, 1, 64, 64), np.float32),
                                         "lam": np.array(0.0, np.float32), "lr": np.array(0.1, np.float32),
                                         "beta1": np.array(0.9, np.float32), "beta2": np.array(0.999, np.float32),
                                         "eps": np.array(1e-8, np.float32), "prior": np.array(0.0, np.float32)})
    assert np.isfinite(out[0]).all()
    np.testing.assert_array_equal(out[0], z)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])


def test_early_stop_on_plateau(onnx_inpainter, sample_faces):
    full = np.full((2, 64, 64), 255, np.uint8)  # nothing known and lam = 0: the loss is flat at 0
    cfg = onnx_inpainter.search_defaults.replace(steps=500, restarts=2, lam=0.0, patience=4)
    res = onnx_inpainter.search(sample_faces[:2], full, cfg, seed=0)
    assert res.steps_run == 5 and res.history.shape == (5, 2)
    assert not onnx_inpainter.search(sample_faces[:2], full, cfg.replace(patience=0, steps=12)).steps_run < 12


def test_time_budget_is_honoured(onnx_inpainter, problem, monkeypatch):
    """The budget is checked against the clock after every step. A clock that advances 10 ms per
    read (whatever this machine's speed) makes a 150 ms budget end the search within 15 steps."""
    import itertools
    import time

    images, masks = problem
    cfg = onnx_inpainter.search_defaults.replace(steps=1_000_000, restarts=2)
    reads = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: next(reads) * 0.010)
    res = onnx_inpainter.search(images, masks, cfg, seed=0, time_budget_ms=150)
    monkeypatch.undo()
    assert 1 <= res.steps_run <= 15
    assert res.history.shape == (res.steps_run, 4) and np.isfinite(res.loss).all()
    with pytest.raises(EdgefillError, match="positive"):
        onnx_inpainter.search(images, masks, cfg, time_budget_ms=0)


def test_seed_repeatable(onnx_inpainter, problem):
    images, masks = problem
    cfg = onnx_inpainter.search_defaults.replace(steps=8, restarts=2)
    a, b = onnx_inpainter.search(images, masks, cfg, seed=7), onnx_inpainter.search(images, masks, cfg, seed=7)
    c = onnx_inpainter.search(images, masks, cfg, seed=8)
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.z, c.z)


def test_batch_results_do_not_depend_on_batch_company(onnx_inpainter, problem):
    images, masks = problem
    both = onnx_inpainter.inpaint_batch(images[:2], masks[:2], steps=6, restarts=2, seed=10)
    alone = onnx_inpainter.inpaint_batch(images[1:2], masks[1:2], steps=6, restarts=2, seed=11)
    np.testing.assert_allclose(both.search.loss[1], alone.search.loss[0], rtol=1e-5)
    np.testing.assert_allclose(both.search.z[1], alone.search.z[0], atol=1e-5)


def test_refiner_keeps_known_pixels(onnx_inpainter, problem):
    images, masks = problem
    refined = onnx_inpainter.refine(images, masks)
    assert refined.shape == images.shape and refined.dtype == np.uint8
    hole = masks >= 128
    np.testing.assert_array_equal(refined[~hole], images[~hole])
    assert not np.array_equal(refined[hole], images[hole])


def test_refiner_sees_the_hole_and_old_refiners_still_load(onnx_inpainter, tiny_bundle, tiny_old_refiner_bundle,
                                                           tiny_models, problem):
    """The new refiner graph takes the hole as a fourth channel (runtime.imaging.images.refiner_input)
    and matches torch on it; a bundle with the first (RGB-only) refiner loads and refines as before."""
    import torch

    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.imaging.images import from_model, refiner_input

    images, masks = problem
    assert onnx_inpainter.pipeline.refiner_channels == 4
    assert "image_hole" in open_bundle(tiny_bundle).manifest["graphs"]["refiner"]["inputs"]
    x = refiner_input(images, masks, 4)
    assert x.shape == (len(images), 4, 64, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 3], (masks >= 128).astype(np.float32))
    mirrored = refiner_input(images[:, :, ::-1], masks[:, :, ::-1], 4)
    with torch.no_grad():  # the default refine stage averages the face's and its mirror's outputs
        ref = from_model(0.5 * (tiny_models[2](torch.from_numpy(x)).numpy()
                                + tiny_models[2](torch.from_numpy(mirrored)).numpy()[..., ::-1]))
    hole = masks >= 128
    got = onnx_inpainter.refine(images, masks)
    assert np.abs(got[hole].astype(int) - ref[hole].astype(int)).max() <= 1
    # the same pixels with another hole give another answer: the refiner reads the mask
    other = masks[::-1].copy()
    both = hole & (other >= 128)
    assert not np.array_equal(onnx_inpainter.refine(images, other)[both], got[both])
    old = Inpainter(str(tiny_old_refiner_bundle), provider="cpu")
    assert old.pipeline.refiner_channels == 3
    assert open_bundle(tiny_old_refiner_bundle).manifest["models"]["refiner"]["arch"] == "autoencoder"
    out = old.refine(images, masks)
    np.testing.assert_array_equal(out[~hole], images[~hole])
    assert not np.array_equal(out[hole], images[hole])
    res = old.inpaint(images[0], masks[0], steps=2, restarts=1, seed=0)
    assert res.stats["refined"] is True
    with pytest.raises(EdgefillError, match="3, 4 or 7 input channels"):
        refiner_input(images, masks, 5)


def test_inpaint_api_contract(onnx_inpainter, sample_faces):
    res = onnx_inpainter.inpaint(sample_faces[0], "center", steps=5, restarts=2, seed=1, blend="poisson")
    hole = make_mask("center") >= 128
    assert res.image.shape == (64, 64, 3) and res.image.dtype == np.uint8
    np.testing.assert_array_equal(res.image[~hole], sample_faces[0][~hole])
    assert res.searched.shape == res.refined.shape == (64, 64, 3)
    np.testing.assert_array_equal(res.image, res.refined)
    s = res.stats
    assert (s["steps_run"], s["backend"], s["provider"], s["prior"], s["blend"], s["refined"]) == \
        (5, "onnx", "cpu", "lsgan", "poisson", True)
    # no hole: unchanged, no search; nothing known: still a full image
    same = onnx_inpainter.inpaint(sample_faces[1], np.zeros((64, 64), np.uint8))
    np.testing.assert_array_equal(same.image, sample_faces[1])
    assert same.stats["steps_run"] == 0
    allmiss = onnx_inpainter.inpaint(sample_faces[1], np.full((64, 64), 255, np.uint8), steps=3, refine=False)
    assert allmiss.refined is None and allmiss.stats["refined"] is False
    np.testing.assert_array_equal(allmiss.image, allmiss.searched)


def test_default_provider_really_loads(tiny_bundle):
    from edgefill.runtime.core.engine import PROVIDERS
    from edgefill.runtime.frontends.inpainter import Inpainter

    inp = Inpainter(tiny_bundle)
    assert inp.provider in PROVIDERS
    assert inp.engine.session("generator").get_providers()[0] == PROVIDERS[inp.provider]


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_forced_gpu_provider_fails_with_one_line_when_it_cannot_load(tiny_bundle, provider):
    from edgefill.runtime.core.engine import Engine
    from edgefill.runtime.core.bundle import open_bundle

    bundle = open_bundle(tiny_bundle)
    try:
        engine = Engine(bundle, provider)
    except EdgefillError as exc:
        assert f"provider {provider} cannot be used" in str(exc) and "\n" not in str(exc)
        return
    pytest.skip(f"{provider} loads on this machine ({engine.provider})")


def test_unknown_provider_and_backend(tiny_bundle):
    from edgefill.runtime.frontends.inpainter import Inpainter

    with pytest.raises(EdgefillError, match="unknown provider"):
        Inpainter(tiny_bundle, provider="npu")
    with pytest.raises(EdgefillError, match="unknown backend"):
        Inpainter(tiny_bundle, backend="jax")


def _without_graph(src, dst, name):
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    file = manifest["graphs"].pop(name)["file"]
    manifest["files"].pop(file)
    (dst / file).unlink()
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_no_step_graph_falls_back_to_torch_with_a_notice(tiny_bundle, tmp_path, caplog, problem):
    from edgefill.runtime.frontends.inpainter import Inpainter

    bundle = _without_graph(tiny_bundle, tmp_path / "nostep", "search_step")
    with caplog.at_level(logging.WARNING, logger="edgefill"):
        inp = Inpainter(bundle)
    assert inp.backend == "torch"
    notices = [r.getMessage() for r in caplog.records if r.name == "edgefill"]
    assert len(notices) == 1 and "no search-step graph" in notices[0] and "torch backend" in notices[0]
    res = inp.search(*problem, inp.search_defaults.replace(steps=3, restarts=1))
    assert res.backend == "torch" and res.steps_run == 3


def test_flip_average_is_the_bundles_setting_and_can_be_turned_off(tiny_bundle, tiny_models, problem, tmp_path):
    """The refine stage averages R(face) and mirror(R(mirror(face))) (runtime.core.refine_config):
    on by default and in every exported manifest; a manifest saying false, or flip_average=False,
    gives the one-pass refiner; the averaged stage is mirror-symmetric."""
    import json
    import shutil

    import torch

    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.imaging.images import from_model, refiner_input

    images, masks = problem
    hole = masks >= 128
    assert open_bundle(tiny_bundle).manifest["refine"] == {"flip_average": True, "sample_scale": 1.8}
    averaged = Inpainter(tiny_bundle, provider="cpu")
    one = Inpainter(tiny_bundle, provider="cpu", flip_average=False)
    assert averaged.pipeline.refine_config.flip_average and not one.pipeline.refine_config.flip_average
    with torch.no_grad():
        single = from_model(tiny_models[2](torch.from_numpy(refiner_input(images, masks, 4))).numpy())
    got_one, got_avg = one.refine(images, masks), averaged.refine(images, masks)
    assert np.abs(got_one[hole].astype(int) - single[hole].astype(int)).max() <= 1
    assert np.abs(got_avg[hole].astype(int) - got_one[hole].astype(int)).max() > 1  # a different answer
    np.testing.assert_array_equal(got_avg[~hole], images[~hole])
    mirror = averaged.refine(images[:, :, ::-1].copy(), masks[:, :, ::-1].copy())[:, :, ::-1]
    assert np.abs(mirror.astype(int) - got_avg.astype(int)).max() <= 1
    # the setting travels in the manifest (not hashed): false turns it off, no entry keeps the default
    for value, expected in ((False, got_one), (None, got_avg)):
        copy = tmp_path / f"bundle_{value}"
        shutil.copytree(tiny_bundle, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        if value is None:
            del manifest["refine"]
        else:
            manifest["refine"] = {"flip_average": value}
        (copy / "manifest.json").write_text(json.dumps(manifest))
        np.testing.assert_array_equal(Inpainter(copy, provider="cpu").refine(images, masks), expected)
    assert Inpainter(tmp_path / "bundle_False", provider="cpu", flip_average=True).pipeline.refine_config.flip_average


def test_no_refiner(tiny_bundle, tmp_path, problem):
    from edgefill.runtime.frontends.inpainter import Inpainter

    inp = Inpainter(_without_graph(tiny_bundle, tmp_path / "noref", "refiner"))
    with pytest.raises(EdgefillError, match="no refiner"):
        inp.refine(*problem)
    res = inp.inpaint(problem[0][0], "center", steps=2, restarts=1)
    assert res.refined is None and res.stats["refined"] is False


def test_damaged_bundle_is_refused(tiny_bundle, tmp_path):
    from edgefill.runtime.frontends.inpainter import Inpainter

    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    data = bytearray((bad / "weights.bin").read_bytes())
    data[100] ^= 0xFF
    (bad / "weights.bin").write_bytes(bytes(data))
    assert sha256_file(bad / "weights.bin") != sha256_file(tiny_bundle / "weights.bin")
    with pytest.raises(EdgefillError, match="damaged"):
        Inpainter(bad)


def test_zip_bundle_loads_and_searches_like_the_folder(tiny_bundle, tmp_path, onnx_inpainter, problem, monkeypatch):
    from edgefill.runtime.frontends.inpainter import Inpainter

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", root_dir=tiny_bundle.parent, base_dir=tiny_bundle.name)
    inp = Inpainter(archive)
    cfg = inp.search_defaults.replace(steps=5, restarts=2)
    np.testing.assert_array_equal(inp.search(*problem, cfg, seed=2).z, onnx_inpainter.search(*problem, cfg, seed=2).z)


def test_fp16_bundle_runs_on_both_backends(tiny_gan_checkpoint, tmp_path, problem):
    """fp16 bundles store half-precision weights; graphs and the torch fallback compute in float32."""
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.frontends.inpainter import Inpainter

    out = tmp_path / "fp16"
    export_bundle(str(tiny_gan_checkpoint), str(out), validate=False, fp16=True)
    a, b = Inpainter(out), Inpainter(out, backend="torch")
    assert a.bundle.precision == "fp16"
    cfg = a.search_defaults.replace(steps=10, restarts=2)
    ra, rb = a.search(*problem, cfg, seed=0), b.search(*problem, cfg, seed=0)
    np.testing.assert_allclose(ra.loss, rb.loss, rtol=1e-5)
    np.testing.assert_allclose(ra.images, rb.images, atol=1e-4)


@pytest.mark.parametrize("blend_mode", ["paste", "poisson"])
def test_every_mask_kind_end_to_end(onnx_inpainter, sample_faces, blend_mode):
    from edgefill.runtime.imaging.masks import MASK_KINDS

    for i, kind in enumerate(MASK_KINDS):
        res = onnx_inpainter.inpaint(sample_faces[i % 8], kind, steps=2, restarts=1, seed=i, blend=blend_mode)
        hole = make_mask(kind, np.random.default_rng(i)) >= 128
        np.testing.assert_array_equal(res.image[~hole], sample_faces[i % 8][~hole])
        assert res.stats["hole_fraction"] == pytest.approx(hole.mean())


def test_step_graph_failing_at_run_time_falls_back_to_torch(tiny_bundle, problem, caplog, monkeypatch):
    from edgefill.runtime.core import ort_search
    from edgefill.runtime.frontends.inpainter import Inpainter

    inp = Inpainter(tiny_bundle)

    def broken(*args, **kwargs):
        raise ort_search.StepGraphError("search-step graph failed on cpu: simulated")

    monkeypatch.setattr(inp.pipeline._searcher, "search", broken)
    with caplog.at_level(logging.WARNING, logger="edgefill"):
        res = inp.search(*problem, inp.search_defaults.replace(steps=2, restarts=1))
    assert res.backend == "torch" and inp.backend == "torch" and res.steps_run == 2
    assert any("simulated; using the torch backend" in r.getMessage() for r in caplog.records)


@pytest.mark.gpu
def test_cuda_search_keeps_state_on_the_device_and_matches_cpu(tiny_bundle, onnx_inpainter, problem, monkeypatch):
    """On a GPU: every buffer the IO-bound loop allocates lives on the device, and results match the CPU."""
    from edgefill.runtime.core.engine import Engine
    from edgefill.runtime.frontends.inpainter import Inpainter

    try:
        gpu = Inpainter(tiny_bundle, provider="cuda")
    except EdgefillError as exc:
        pytest.skip(f"CUDA provider does not load here: {exc}")
    devices = []
    real_empty, real_value = Engine.empty, Engine.ortvalue
    monkeypatch.setattr(Engine, "empty", lambda self, *a, **k: devices.append(real_empty(self, *a, **k)) or devices[-1])
    monkeypatch.setattr(Engine, "ortvalue", lambda self, *a: devices.append(real_value(self, *a)) or devices[-1])
    cfg = gpu.search_defaults.replace(steps=10, restarts=2)
    a, b = gpu.search(*problem, cfg, seed=1), onnx_inpainter.search(*problem, cfg, seed=1)
    assert devices and {d.device_name().lower() for d in devices} == {"cuda"}
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-4)
