"""K samples per hole (issue 22) through the one pipeline: Pipeline.run_samples, the starts that
place them, and the Python API. Quality and diversity are measured by `edgefill evaluate
--samples`, not here."""
from __future__ import annotations

import numpy as np
import pytest

from edgefill.runtime.core.starts import GivenStart, sample_starts
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.frontends.inpainter import MAX_SAMPLES, Inpainter
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


@pytest.mark.parametrize("k", [0, -1, MAX_SAMPLES + 1])
def test_a_bad_sample_count_is_one_clear_error(inpainter, k):
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(EdgefillError, match="samples must be"):
        inpainter.inpaint(image, "center", samples=k)
