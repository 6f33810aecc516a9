"""K samples per hole (issue 22) through the one pipeline: Pipeline.run_samples, the starts that
place them, and the Python API. Quality and diversity are measured by `edgefill evaluate
--samples`, not here."""
from __future__ import annotations

import numpy as np
import pytest

from edgefill.runtime.core.starts import GivenStart, sample_starts
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.frontends.inpainter import MAX_SAMPLES, Inpainter
from edgefill.runtime.imaging.blend import MAX_SAMPLE_GAIN, anchored, calibrated
from edgefill.runtime.imaging.masks import make_mask


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    masks = np.stack([make_mask("center", rng) for _ in range(3)])
    return images, masks


@pytest.fixture(scope="module")
def inpainter(tiny_bundle):
    return Inpainter(str(tiny_bundle), threads=1)


def test_one_sample_is_the_single_output(inpainter, problems):
    images, masks = problems
    single = inpainter.inpaint_batch(images, masks, steps=3, restarts=2, seed=7)
    sset = inpainter.inpaint_samples(images, masks, 1, steps=3, restarts=2, seed=7)
    assert sset.final.shape == (3, 1, 64, 64, 3)
    np.testing.assert_array_equal(sset.final[:, 0], single.final)
    np.testing.assert_array_equal(sset.sample, np.zeros((3, 1), np.int64))


def test_k_samples_differ_are_ranked_and_do_not_depend_on_the_batch(inpainter, problems):
    images, masks = problems
    sset = inpainter.inpaint_samples(images, masks, 4, steps=3, restarts=1, seed=7)
    assert sset.final.shape == (3, 4, 64, 64, 3) and sset.refined is not None
    assert sset.z.shape == (3, 4, inpainter.bundle.z_dim) and sset.loss.shape == (3, 4)
    assert np.all(np.diff(sset.loss, axis=1) >= 0), "samples are ordered by search loss"
    assert sorted(sset.sample[0].tolist()) == [0, 1, 2, 3]
    single = inpainter.inpaint_batch(images, masks, steps=3, restarts=1, seed=7)
    k0 = int(np.flatnonzero(sset.sample[1] == 0)[0])
    np.testing.assert_array_equal(sset.final[1, k0], single.final[1])
    hole = masks[0] >= 128
    assert len({sset.searched[0, k][hole].tobytes() for k in range(4)}) == 4, "each start gives its own fill"
    alone = inpainter.inpaint_samples(images[1:2], masks[1:2], 4, steps=3, restarts=1, seeds=[8])
    np.testing.assert_array_equal(alone.final[0], sset.final[1])
    np.testing.assert_array_equal(alone.sample[0], sset.sample[1])


def test_perturbed_starts_keep_sample_zero_and_scale_with_the_spread(inpainter, problems):
    images, masks = problems
    z = np.full((3, inpainter.bundle.z_dim), 0.25, np.float32)
    start = GivenStart(z)
    rows = sample_starts(start, inpainter.engine, images, masks, 2, [1, 2, 3], 3, 0.0)
    assert rows.shape == (3 * 3 * 2, inpainter.bundle.z_dim)
    per = rows.reshape(3, 3, 2, -1)
    np.testing.assert_array_equal(per[:, 0], start.z0(inpainter.engine, images, masks, 2, [1, 2, 3]).reshape(3, 2, -1))
    np.testing.assert_array_equal(per[:, 1, 0], z), "spread 0: every sample starts at the given z"
    wide = sample_starts(start, inpainter.engine, images, masks, 2, [1, 2, 3], 3, 0.5).reshape(3, 3, 2, -1)
    np.testing.assert_array_equal(wide[:, 0], per[:, 0])
    step = np.abs(wide[:, 1:, 0] - 0.25).mean()
    assert 0.2 < step < 0.6 and np.all(np.abs(wide) <= 1.0)
    again = sample_starts(start, inpainter.engine, images, masks, 2, [1, 2, 3], 3, 0.5).reshape(3, 3, 2, -1)
    np.testing.assert_array_equal(again, wide)


def test_inpaint_with_samples_returns_k_full_size_results(inpainter):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    results = inpainter.inpaint(image, "center", samples=3, steps=2, seed=5)
    assert len(results) == 3
    assert [r.stats["sample"] for r in results] == [0, 1, 2]
    assert sorted(r.stats["start_index"] for r in results) == [0, 1, 2]
    assert all(r.image.shape == (90, 70, 3) and r.image.dtype == np.uint8 for r in results)
    losses = [r.stats["loss"] for r in results]
    assert losses == sorted(losses)
    again = inpainter.inpaint(image, "center", samples=3, steps=2, seed=5)
    for a, b in zip(results, again):
        np.testing.assert_array_equal(a.image, b.image)


def test_samples_after_the_first_take_their_own_step_count(inpainter, problems):
    """sample_steps: samples k >= 1 run that many steps as their own batch; sample 0 keeps `steps`
    and so stays the single output; `steps` given alone applies to every sample."""
    images, masks = problems
    p = inpainter.pipeline
    cfg = p.config(steps=4, restarts=1, sample_steps=1)
    assert (cfg.steps, cfg.steps_of_samples) == (4, 1) and (cfg.steps_for(1), cfg.steps_for(3)) == (4, 5)
    assert p.config(steps=4).steps_of_samples == 4
    assert p.config(sample_steps=2).steps_of_samples == 2
    ticks = []
    sset = p.run_samples(images, masks, cfg, samples=3, seeds=[1, 2, 3], progress=ticks.append)
    assert sset.batch.search.steps_run == 4 and sset.batch.search.extra["sample_steps_run"] == 1
    assert sum(ticks) == 5 and sset.batch.search.history.shape == (4, 9)
    fills = inpainter.inpaint(images[0], masks[0], samples=3, steps=4, sample_steps=1, seed=1)
    assert sorted((r.stats["start_index"], r.stats["steps_run"]) for r in fills) == [(0, 4), (1, 1), (2, 1)]
    np.testing.assert_array_equal(sset.batch.final[::3], p.run(images, masks, cfg, seeds=[1, 2, 3]).final)
    one = p.run(np.repeat(images, 2, 0), np.repeat(masks, 2, 0), cfg.replace(steps=1),
                z0=sample_starts(p.make_start("random"), p.engine, images, masks, 1, [1, 2, 3], 3, 0.5)
                .reshape(3, 3, -1)[:, 1:].reshape(6, -1), refine=False)
    np.testing.assert_array_equal(sset.batch.searched.reshape(3, 3, 64, 64, 3)[:, 1:].reshape(6, 64, 64, 3),
                                  one.searched)
    with pytest.raises(EdgefillError, match="sample_steps"):
        cfg.replace(sample_steps=-1)


def test_sample_set_keeps_what_the_placement_started_from(inpainter, problems):
    """SampleSet.unplaced (the refined samples, start order) and views_apart (D) are what
    blend.calibrated placed: placing them again at the pipeline's scale gives the final samples
    exactly; K = 1 has neither."""
    images, masks = problems
    p = inpainter.pipeline
    cfg = p.config(steps=2, restarts=1)
    sset = p.run_samples(images, masks, cfg, samples=3, seeds=[1, 2, 3])
    assert sset.unplaced.shape == (3, 3, 64, 64, 3) and sset.views_apart.shape == (3,)
    single = sset.batch.final.reshape(3, 3, 64, 64, 3)[:, 0]
    sizes = p.refine_config.sample_scale * np.sqrt(sset.views_apart + 1.0)
    np.testing.assert_array_equal(calibrated(single, sset.unplaced, masks, sizes),
                                  sset.batch.final.reshape(3, 3, 64, 64, 3))
    one = p.run_samples(images, masks, cfg, samples=1, seeds=[1, 2, 3])
    assert one.unplaced is None and one.views_apart is None


def _placement_problem(seed: int, size: int, k: int, rows: slice, cols: slice):
    """Two random anchors (2,size,size,3), their k samples (2,k,size,size,3) and a box hole."""
    rng = np.random.default_rng(seed)
    anchor = rng.integers(40, 200, size=(2, size, size, 3), dtype=np.uint8)
    samples = rng.integers(40, 200, size=(2, k, size, size, 3), dtype=np.uint8)
    masks = np.zeros((2, size, size), np.uint8)
    masks[:, rows, cols] = 255
    return rng, anchor, samples, masks


def test_anchored_samples_keep_their_differences_on_the_anchor():
    _, anchor, samples, masks = _placement_problem(0, 8, 3, slice(2, 6), slice(2, 6))
    out = anchored(anchor, samples, masks)
    assert out.shape == samples.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0], anchor)
    hole = masks >= 128
    diff = samples[:, 2].astype(int) - samples[:, 0].astype(int)
    expect = np.clip(anchor.astype(int) + diff, 0, 255)
    np.testing.assert_array_equal(out[:, 2][hole], expect[hole])
    np.testing.assert_array_equal(out[:, 1][~hole], anchor[~hole])
    with pytest.raises(EdgefillError, match="anchored expects"):
        anchored(anchor, samples[:, 0], masks)


def _hole_rms(a, b, masks):
    hole = (masks >= 128)[..., None]
    d = a.astype(np.float64) - b.astype(np.float64)
    return np.sqrt((d * d * hole).sum(axis=(-3, -2, -1)) / (hole.sum(axis=(-3, -2, -1)) * 3))


def test_calibrated_samples_keep_their_differences_at_the_given_size():
    rng, anchor, samples, masks = _placement_problem(1, 16, 4, slice(4, 12), slice(3, 13))
    hole = masks >= 128
    sizes = np.array([6.0, 15.0])
    out = calibrated(anchor, samples, masks, sizes)
    assert out.shape == samples.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0], anchor)  # sample 0 is the anchor
    for k in range(4):
        np.testing.assert_array_equal(out[:, k][~hole], anchor[~hole])  # known pixels untouched
    # each other sample sits sizes[i] levels RMS from the anchor, up to rounding
    np.testing.assert_allclose(_hole_rms(out[:, 1:], anchor[:, None], masks[:, None]), sizes[:, None].repeat(3, 1),
                               atol=0.35)
    # ... along its own difference from the mean of samples 1..K-1 (the search's differences kept)
    centred = samples[:, 1:].astype(np.float64) - samples[:, 1:].astype(np.float64).mean(axis=1, keepdims=True)
    moved = out[:, 1:].astype(np.float64) - anchor[:, None].astype(np.float64)
    for i in range(2):
        for k in range(3):
            a, b = centred[i, k][hole[i]].ravel(), moved[i, k][hole[i]].ravel()
            assert np.corrcoef(a, b)[0, 1] > 0.99
    # K = 2: the one other sample keeps its difference from sample 0
    two = calibrated(anchor, samples[:, :2], masks, sizes)
    a = samples[0, 1].astype(np.float64) - samples[0, 0]
    assert np.corrcoef(a[hole[0]].ravel(), (two[0, 1].astype(np.float64) - anchor[0])[hole[0]].ravel())[0, 1] > 0.99
    # identical samples stay the anchor; one sample is the anchor alone
    same = np.repeat(samples[:, :1], 4, axis=1)
    np.testing.assert_array_equal(calibrated(anchor, same, masks, sizes), np.repeat(anchor[:, None], 4, axis=1))
    np.testing.assert_array_equal(calibrated(anchor, samples[:, :1], masks, sizes), anchor[:, None])
    # a difference is enlarged at most MAX_SAMPLE_GAIN times (rounding noise is not blown up)
    near = samples.copy()
    near[:, 1:] = np.clip(near[:, :1].astype(int) + rng.integers(-1, 2, size=near[:, 1:].shape), 0, 255)
    capped = calibrated(anchor, near, masks, np.array([50.0, 50.0]))
    c = near[:, 1:].astype(np.float64)
    limit = MAX_SAMPLE_GAIN * _hole_rms(c, c.mean(axis=1, keepdims=True), masks[:, None])
    assert np.all(_hole_rms(capped[:, 1:], anchor[:, None], masks[:, None]) <= limit + 0.35)
    np.testing.assert_array_equal(calibrated(anchor, samples, masks, np.zeros(2)), np.repeat(anchor[:, None], 4, 1))
    with pytest.raises(EdgefillError, match="calibrated expects anchor"):
        calibrated(anchor, samples[:, 0], masks, sizes)
    for bad in (np.array([1.0]), np.array([1.0, -1.0]), np.array([1.0, np.nan])):
        with pytest.raises(EdgefillError, match="one finite size"):
            calibrated(anchor, samples, masks, bad)


def test_sample_scale_is_a_bundle_setting_checked_on_the_way_in(tiny_bundle, problems, monkeypatch):
    """RefineConfig.sample_scale: from the manifest (absent: the default), overridden per
    Inpainter, refused when negative or not a number; the pipeline places samples at
    sample_scale * sqrt(D + 1) levels, and sample 0 stays the single output."""
    from edgefill.runtime.core.refine_config import RefineConfig

    assert RefineConfig.from_dict({}).sample_scale == 1.8 == RefineConfig().sample_scale
    assert RefineConfig.from_dict({"sample_scale": "0.5"}).sample_scale == 0.5
    for bad in (-0.1, float("nan"), float("inf"), "wide", None):
        with pytest.raises(EdgefillError, match="sample_scale must be a finite number"):
            RefineConfig(sample_scale=bad)
    with pytest.raises(EdgefillError, match="sample_scale must be a number"):
        RefineConfig.from_dict({"sample_scale": "wide"})
    images, masks = problems
    import edgefill.runtime.imaging.blend as blending

    placed = []

    def spy(anchor, samples, masks_, sizes):
        placed.append(np.asarray(sizes, np.float64).copy())
        return calibrated(anchor, samples, masks_, sizes)

    monkeypatch.setattr(blending, "calibrated", spy)
    runs = {}
    for scale in (1.0, 4.0, 0.0):
        inp = Inpainter(str(tiny_bundle), threads=1, sample_scale=scale)
        assert inp.pipeline.refine_config.sample_scale == scale
        runs[scale] = inp.inpaint_samples(images, masks, 3, steps=2, seed=7)
    assert len(placed) == 2, "scale 0 keeps the unscaled placement"
    np.testing.assert_allclose(placed[1], 4.0 * placed[0])  # sizes = scale * sqrt(D + 1): D > 0 per face
    assert np.all(placed[0] > 1.0)
    single = Inpainter(str(tiny_bundle), threads=1).inpaint_batch(images, masks, steps=2, seed=7)
    for sset in runs.values():
        np.testing.assert_array_equal(sset.searched, runs[0.0].searched)  # only the placement differs
        np.testing.assert_array_equal(sset.batch.final[::3], single.final)  # sample 0 is the single output
    # the tiny generator's samples differ by under a level: enlarged MAX_SAMPLE_GAIN times, no more
    final = runs[4.0].batch.final.reshape(3, 3, 64, 64, 3)
    assert 0 < _hole_rms(final[:, 1:], single.final[:, None], masks[:, None]).max() < 4 * MAX_SAMPLE_GAIN


@pytest.mark.parametrize("k", [0, -1, MAX_SAMPLES + 1])
def test_a_bad_sample_count_is_one_clear_error(inpainter, k):
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(EdgefillError, match="samples must be"):
        inpainter.inpaint(image, "center", samples=k)


@pytest.fixture(scope="module")
def samples_refiner_bundle(tmp_path_factory, tiny_bundle):
    """The tiny bundle re-exported through the CLI with a second refiner (other weights) as its
    samples refiner, as `train refiner --samples-per-mask 2 --keep-weight W` would give."""
    import torch

    from conftest import run_cli
    from edgefill.train.checkpoint import save_checkpoint
    from edgefill.train.config import RefinerTrainConfig, preset, to_dict
    from edgefill.train.layers import randomise_batchnorm_stats
    from edgefill.train.refiner import build_refiner

    torch.manual_seed(3)
    _, _, r = preset("tiny")
    R = build_refiner(r)
    randomise_batchnorm_stats(R, seed=9)
    with torch.no_grad():
        torch.nn.init.normal_(R.out.weight, 0.0, 0.2)
    ck = tmp_path_factory.mktemp("tiny_samples_refiner")
    save_checkpoint(ck, "refiner", to_dict(RefinerTrainConfig(refiner=r, samples=2, keep_weight=8.0)),
                    {"epoch": 1, "step_in_epoch": 0, "step": 4, "history": {"loss": []}, "gan": str(tiny_bundle)},
                    {"refiner": R.eval()}, {})
    out = tmp_path_factory.mktemp("bundles") / "tiny_samples"
    proc = run_cli("export", "--checkpoint", str(tiny_bundle), "--samples-refiner", str(ck), "--sample-spread",
                   "0.75", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_samples_refiner_ships_validated_and_refines_k_samples_only(samples_refiner_bundle, tiny_bundle, problems):
    """--samples-refiner: its own graph, its tensors in refiner.bin, checked against torch at export;
    K > 1 samples are refined by it and moved onto sample 0, which stays the single output (the
    refiner's), as does evaluate's single row."""
    from edgefill.runtime.core.bundle import open_bundle

    m = open_bundle(samples_refiner_bundle).manifest
    assert m["graphs"]["samples_refiner"]["file"] == "samples_refiner.onnx"
    assert m["models"]["samples_refiner"] == m["models"]["refiner"]
    assert m["training"]["samples_refiner"]["keep_weight"] == 8.0
    assert m["search"]["sample_spread"] == 0.75
    names = [n for n in m["tensors"] if n.startswith("samples_refiner.")]
    assert names and all(m["tensors"][n]["file"] == "refiner.bin" for n in names)
    checked = [r for r in m["validation"]["rows"] if r["check"].startswith("samples_refiner")]
    assert checked and all(r["ok"] for r in checked)

    images, masks = problems
    inp, plain = Inpainter(str(samples_refiner_bundle), threads=1), Inpainter(str(tiny_bundle), threads=1)
    assert inp.pipeline.samples_refiner(3) == "samples_refiner" and inp.pipeline.samples_refiner(1) == "refiner"
    sset = inp.inpaint_samples(images, masks, 3, steps=2, seed=7)
    flat, n = sset.batch, len(images)
    single = inp.inpaint_batch(images, masks, steps=2, seed=7)
    np.testing.assert_array_equal(single.final, plain.inpaint_batch(images, masks, steps=2, seed=7).final)
    np.testing.assert_array_equal(flat.final[::3], single.final)  # sample 0 is the single output
    kept = inp.pipeline.refine(flat.searched, np.repeat(masks, 3, 0), "samples_refiner").reshape(n, 3, 64, 64, 3)
    # placed around the single output at sample_scale * sqrt(D + 1), D the refiner's view disagreement
    _, spread = inp.pipeline._refine(single.searched, masks, "refiner", None, disagreement=True)
    sizes = inp.pipeline.refine_config.sample_scale * np.sqrt(spread + 1.0)
    np.testing.assert_array_equal(flat.final.reshape(n, 3, 64, 64, 3), calibrated(single.final, kept, masks, sizes))
    # sample_scale 0: the samples refiner's differences from sample 0, as sessions 27-36 shipped them
    # (the tiny generator's samples differ by under a level, so placed they are all the single output)
    unscaled = Inpainter(str(samples_refiner_bundle), threads=1, sample_scale=0).inpaint_samples(
        images, masks, 3, steps=2, seed=7)
    np.testing.assert_array_equal(unscaled.batch.final.reshape(n, 3, 64, 64, 3), anchored(single.final, kept, masks))
    ref = Inpainter(str(tiny_bundle), threads=1, sample_scale=0).inpaint_samples(images, masks, 3, steps=2, seed=7,
                                                                                sample_spread=0.75)
    np.testing.assert_array_equal(unscaled.searched, ref.searched)  # only the refining differs
    assert not np.array_equal(unscaled.final, ref.final)

    from edgefill.runtime.frontends.evaluate import run_batch

    cfg = inp.config_for(steps=2)
    out = run_batch(images, masks, ("lsgan+refiner",), inp, cfg, np.arange(3), samples=3)
    alone = run_batch(images, masks, ("lsgan+refiner",), inp, cfg, np.arange(3))
    np.testing.assert_array_equal(out.outputs["lsgan+refiner"], alone.outputs["lsgan+refiner"])


def test_a_bundle_source_keeps_its_samples_refiner_and_a_wrong_one_is_one_clear_error(
        samples_refiner_bundle, tiny_gan_checkpoint, tmp_path):
    from conftest import assert_one_line_error, run_cli
    from edgefill.runtime.core.bundle import open_bundle

    again = tmp_path / "again"
    proc = run_cli("export", "--checkpoint", str(samples_refiner_bundle), "--out", str(again), "--quiet")
    assert proc.returncode == 0, proc.stderr
    a, b = open_bundle(samples_refiner_bundle), open_bundle(again)
    for name in [n for n in a.manifest["tensors"] if n.startswith("samples_refiner.")]:
        np.testing.assert_array_equal(a.tensor(name), b.tensor(name))
    bad = run_cli("export", "--checkpoint", str(samples_refiner_bundle), "--samples-refiner",
                  str(tiny_gan_checkpoint), "--out", str(tmp_path / "bad"))
    assert_one_line_error(bad, "--samples-refiner takes a refiner checkpoint")
    assert not (tmp_path / "bad").exists()
    bare = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--samples-refiner",
                   str(b.manifest["training"]["samples_refiner"]["checkpoint"]), "--out", str(tmp_path / "bare"))
    assert_one_line_error(bare, "--samples-refiner needs a refiner too")
    assert not (tmp_path / "bare").exists()


def test_a_gan_run_takes_both_refiners_from_a_bundle(samples_refiner_bundle, tiny_gan_checkpoint, tiny_bundle,
                                                     tmp_path):
    """--refiner B --samples-refiner B: a stack rebuilt on a (new) GAN run keeps a bundle's refiners
    as they are, with their training records; a bundle without a samples refiner is one clear error."""
    from conftest import assert_one_line_error, run_cli
    from edgefill.runtime.core.bundle import open_bundle

    out = tmp_path / "rebuilt"
    proc = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--refiner", str(samples_refiner_bundle),
                   "--samples-refiner", str(samples_refiner_bundle), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    src, got = open_bundle(samples_refiner_bundle), open_bundle(out)
    for role in ("refiner", "samples_refiner"):
        names = [n for n in src.manifest["tensors"] if n.startswith(role + ".")]
        assert names
        for name in names:
            np.testing.assert_array_equal(src.tensor(name), got.tensor(name))
        record = got.manifest["training"][role]
        assert record["bundle"] == str(samples_refiner_bundle)
        assert record["epoch"] == src.manifest["training"][role]["epoch"]
    assert got.manifest["training"]["samples_refiner"]["keep_weight"] == 8.0
    bad = run_cli("export", "--checkpoint", str(tiny_gan_checkpoint), "--refiner", str(tiny_bundle),
                  "--samples-refiner", str(tiny_bundle), "--out", str(tmp_path / "bad"))
    assert_one_line_error(bad, "has no samples refiner")
    assert not (tmp_path / "bad").exists()
