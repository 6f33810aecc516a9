"""Runtime pieces that need no bundle: blending, pre/post-processing and the mask-size policy,
the functional torch rebuild of G and D, BestTracker without z/x, engine settings."""
import numpy as np
import pytest

from edgefill.runtime.imaging import blend
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.masks import center_mask, make_mask
from edgefill.runtime.imaging.preprocess import fit_mask, parse_box, paste_back, prepare
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.best_of_k import BestTracker


def _smooth(h=64, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([100 + xx, 80 + yy, 120 + 0.5 * (xx + yy) + 10 * np.sin(xx / 5)], -1).astype(np.uint8)


def _holes():
    rng = np.random.default_rng(1)
    holes = {"center": center_mask() >= 128, "left": np.zeros((64, 64), bool), "corner": np.zeros((64, 64), bool),
             "pixels": rng.random((64, 64)) < 0.8, "thin": np.zeros((64, 64), bool), "dot": np.zeros((64, 64), bool)}
    holes["left"][:, :32] = True
    holes["corner"][:20, :20] = True
    holes["thin"][30, 5:60] = True
    holes["dot"][0, 0] = True
    return holes


# -- blending -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", blend.MODES)
@pytest.mark.parametrize("name", list(_holes()))
def test_blend_changes_only_hole_pixels(mode, name):
    truth = _smooth()
    hole = _holes()[name]
    known = np.where(hole[..., None], 128, truth).astype(np.uint8)
    generated = np.clip(truth.astype(int) + 40, 0, 255).astype(np.uint8)
    out = blend.blend(mode, known[None], generated[None], (hole * 255).astype(np.uint8)[None])
    assert out.shape == (1, 64, 64, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0][~hole], known[~hole])
    if mode == "paste":
        np.testing.assert_array_equal(out[0][hole], generated[hole])


@pytest.mark.parametrize("name", ["center", "corner", "thin", "dot", "left"])
def test_poisson_takes_the_level_from_the_known_pixels(name):
    """G(z) off by a harmonic function (constant + linear ramp): Poisson recovers the truth, paste does not."""
    truth = _smooth()
    yy, xx = np.mgrid[0:64, 0:64]
    hole = _holes()[name]
    known = np.where(hole[..., None], 128, truth).astype(np.uint8)
    generated = np.clip(truth + 40 - 0.6 * xx[..., None] + 0.3 * yy[..., None], 0, 255).astype(np.uint8)
    masks = (hole * 255).astype(np.uint8)
    err_paste = np.abs(blend.paste(known, generated, masks).astype(int) - truth)[hole].mean()
    err_poisson = np.abs(blend.poisson(known, generated, masks).astype(int) - truth)[hole].mean()
    assert err_paste > 25
    assert err_poisson < 12 and err_poisson < err_paste / 3, (err_poisson, err_paste)


def test_blend_empty_and_full_masks():
    known, generated = _smooth(), np.full((64, 64, 3), 7, np.uint8)
    empty, full = np.zeros((64, 64), np.uint8), np.full((64, 64), 255, np.uint8)
    for mode in blend.MODES:
        np.testing.assert_array_equal(blend.blend(mode, known, generated, empty), known)
        np.testing.assert_array_equal(blend.blend(mode, known, generated, full), generated)
    with pytest.raises(EdgefillError):
        blend.blend("median", known, generated, empty)
    with pytest.raises(EdgefillError):
        blend.paste(known, generated, np.zeros((32, 32), np.uint8))


# -- pre/post-processing --------------------------------------------------------------------------
def test_box_crops_and_only_hole_pixels_change():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    prep = prepare(image, "center", box="10,20,48,60")
    assert prep.box == (10, 20, 48, 60) and prep.image64.shape == (64, 64, 3)
    hole = prep.mask >= 128
    assert hole[20:80, 10:58].mean() == pytest.approx(0.25, abs=0.03) and not hole[:20].any() and not hole[:, 58:].any()
    out = paste_back(prep, np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert (out[hole] == 0).all()


def test_whole_image_is_resized_by_default_and_pasted_back():
    image = _smooth(100, 150)
    prep = prepare(image, "half-left")
    assert prep.box == (0, 0, 150, 100)
    np.testing.assert_array_equal(prep.mask64, make_mask("half-left"))
    out = paste_back(prep, np.full((64, 64, 3), 255, np.uint8))
    hole = prep.mask >= 128
    assert hole[:, :75].all() and not hole[:, 75:].any()
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert (out[hole] == 255).all()


@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "rgb16"])
def test_image_modes(kind):
    base = _smooth(80, 80)
    image = {"gray": base[:, :, 0], "rgba": np.dstack([base, np.full((80, 80), 200, np.uint8)]),
             "gray16": base[:, :, 0].astype(np.uint16) * 257, "rgb16": base.astype(np.uint16) * 257}[kind]
    prep = prepare(image, "center")
    assert prep.original.shape == (80, 80, 3) and prep.original.dtype == np.uint8
    expected = base if kind in ("rgba", "rgb16") else np.repeat(base[:, :, :1], 3, axis=2)
    np.testing.assert_array_equal(prep.original, expected)


def test_mask_size_policy():
    m64 = center_mask()
    # same size: as is; same aspect ratio: nearest-resized; other aspect ratio: refused
    np.testing.assert_array_equal(fit_mask(m64, 64, 64), m64)
    big = fit_mask(m64, 256, 256)
    assert big.shape == (256, 256) and (big[64:192, 64:192] == 255).all() and big.sum() == 255 * 128 * 128
    with pytest.raises(EdgefillError, match="aspect ratio"):
        fit_mask(m64, 218, 178)
    with pytest.raises(EdgefillError, match="one channel"):
        fit_mask(np.zeros((64, 64, 3), np.uint8), 64, 64)


def test_file_and_array_masks_describe_the_whole_image(tmp_path):
    import cv2

    image = _smooth(128, 128)
    mask = np.zeros((128, 128), np.uint8)
    mask[40:50, 60:62] = 255  # a thin hole: every 64x64 pixel it touches becomes missing
    path = tmp_path / "m.png"
    cv2.imwrite(str(path), mask)
    prep = prepare(image, str(path))
    np.testing.assert_array_equal(prep.mask, mask)
    assert (prep.mask64[20:25, 30] == 255).all() and prep.mask64.sum() == 255 * 5
    with pytest.raises(EdgefillError, match="outside --box"):
        prepare(image, mask, box=(0, 0, 32, 32))
    with pytest.raises(EdgefillError, match="neither a mask kind"):
        prepare(image, str(tmp_path / "missing.png"))


@pytest.mark.parametrize("spec", ["1,2,3", "a,b,c,d", "0,0,200,10", "-1,0,10,10", "0,0,2,2"])
def test_bad_boxes(spec):
    with pytest.raises(EdgefillError):
        prepare(_smooth(), "center", box=spec)
    assert parse_box(None) is None


# -- best-of-K tracking without host copies -------------------------------------------------------
def test_best_tracker_without_z_reports_rows_and_keeps_behaviour():
    cfg = SearchConfig(patience=2, min_delta=0.0)
    a, b = BestTracker(2, 3, cfg), BestTracker(2, 3, cfg)
    z = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)
    steps = [np.array([5, 4, 6, 9, 8, 7.]), np.array([3, 9, 9, 9, 9, 9.]), np.array([9, 9, 9, 9, 9, 1.]),
             np.array([9.] * 6), np.array([9.] * 6)]
    stops = []
    for i, loss in enumerate(steps):
        stops.append(a.update(loss.astype(np.float32)))
        b.update(loss.astype(np.float32), z + i)
        if i == 0:
            assert a.replaced.all() and list(a.rows) == [1, 5]
        if i == 1:
            assert list(a.replaced) == [True, False] and a.rows[0] == 0
    assert stops == [False, False, False, False, True]
    np.testing.assert_array_equal(a.best_loss, [3, 1])
    np.testing.assert_array_equal(a.best_loss, b.best_loss)
    np.testing.assert_array_equal(b.best_z, [z[0] + 1, z[5] + 2])
    assert a.best_z is None and len(a.history) == 5


# -- functional torch rebuild ----------------------------------------------------------------------
def test_functional_rebuild_matches_train_modules(tiny_models):
    import torch

    from edgefill.runtime.core.torch_fallback import functional_discriminator, functional_generator
    from edgefill.train.config import GeneratorConfig, preset, to_dict

    G, D, _ = tiny_models
    g_cfg, d_cfg, _ = preset("tiny")
    g_state = {k: v.numpy() for k, v in G.state_dict().items()}
    d_state = {k: v.numpy() for k, v in D.state_dict().items()}
    fg, fd = functional_generator(to_dict(g_cfg), g_state), functional_discriminator(to_dict(d_cfg), d_state)
    z = torch.rand(5, g_cfg.z_dim) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fg(z), G(z), atol=1e-6, rtol=1e-5)
        x = G(z)
        torch.testing.assert_close(fd(x), D(x), atol=1e-6, rtol=1e-5)
    # and the leaky-ReLU generator variant
    from edgefill.train.generator import Generator

    leaky_cfg = GeneratorConfig(width=8, activation="leaky")
    GL = Generator(leaky_cfg).eval()
    fl = functional_generator(to_dict(leaky_cfg), {k: v.numpy() for k, v in GL.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(fl(z), GL(z), atol=1e-6, rtol=1e-5)
    with pytest.raises(EdgefillError, match="lack"):
        functional_generator(to_dict(g_cfg), {})


# -- engine settings --------------------------------------------------------------------------------
def test_session_options_are_deliberate():
    import onnxruntime as ort

    from edgefill.runtime.core.engine import physical_cores, session_options

    so = session_options()
    assert so.intra_op_num_threads == physical_cores() >= 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert session_options(3).intra_op_num_threads == 3


# -- diffusion fills ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["telea", "ns"])
def test_diffusion_fill_reads_only_known_pixels_and_fills_repeated_rows_once(method, monkeypatch):
    """The K samples of one face differ only in the hole: one cv2.inpaint serves them all, and the
    result equals filling each row on its own."""
    import cv2

    from edgefill.runtime.imaging import diffusion

    rng = np.random.default_rng(0)
    face, hole = _smooth(), center_mask()
    rows = np.repeat(face[None], 4, axis=0)
    rows[:, hole >= 128] = rng.integers(0, 256, (4, int((hole >= 128).sum()), 3), dtype=np.uint8)
    other = face.copy()
    other[0, 0] = 0  # a different known pixel: its own fill
    images, masks = np.concatenate([rows, other[None]]), np.repeat(hole[None], 5, axis=0)
    alone = np.stack([cv2.inpaint(images[i], hole, diffusion.INPAINT_RADIUS, diffusion.DIFFUSION_METHODS[method])
                      for i in range(5)])
    calls = []
    real = cv2.inpaint
    monkeypatch.setattr(diffusion.cv2, "inpaint", lambda *a: calls.append(1) or real(*a))
    out = diffusion.opencv_inpaint(images, masks, method)
    assert len(calls) == 2
    np.testing.assert_array_equal(out, alone)
    assert out.dtype == np.uint8 and not np.array_equal(out[0], out[4])


def test_swap_dir_puts_a_finished_folder_in_place_and_removes_the_previous_one(tmp_path):
    """atomic.swap_dir (bundles, Triton repositories, training checkpoints): renames only; the old
    folder goes, the new one is whole at the target; an explicit `old` name is used and cleared."""
    from edgefill.runtime.atomic import swap_dir

    target = tmp_path / "bundle"
    for text in ("first", "second"):
        new = tmp_path / ".bundle.tmp"
        new.mkdir()
        (new / "file.txt").write_text(text)
        swap_dir(new, target)
        assert (target / "file.txt").read_text() == text and not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no hidden .old-PID left
    old = tmp_path / "bundle.old"
    old.mkdir()  # a stale one from an interrupted swap
    (old / "stale.txt").write_text("x")
    new = tmp_path / "bundle.new"
    new.mkdir()
    (new / "file.txt").write_text("third")
    swap_dir(new, target, old)
    assert (target / "file.txt").read_text() == "third" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_known_only_fills_the_holes_edge_from_known_pixels_alone():
    """preprocess.known_only: a hole pixel next to known ones gets their mean; one out of reach the
    mean of the known pixels near the hole; known pixels stay; no hole: the same array."""
    from edgefill.runtime.imaging.preprocess import known_only

    image = np.zeros((12, 12, 3), np.uint8)
    image[:, :6] = 40
    image[:, 6:] = 200  # the hole's content: must not be read
    hole = np.zeros((12, 12), bool)
    hole[:, 6:] = True
    out = known_only(image, hole, reach=1)
    assert np.array_equal(out[~hole], image[~hole]) and out is not image
    assert (out[:, 6] == 40).all()  # its known neighbours are all 40
    assert (out[:, 8:] == 40).all()  # out of reach: the known pixels' mean, never the 200 under the hole
    assert known_only(image, np.zeros((12, 12), bool), reach=1) is image
