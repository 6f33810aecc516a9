"""The hole's realism metric (runtime.imaging.swd.hole_sliced_wasserstein): exact zero for a set
against itself, read from the hole alone, higher for blurred and flat fills than for other real
faces, and one error for mismatched inputs. numpy only (no torch); 64-128 images: a second."""
import cv2
import numpy as np
import pytest

from conftest import jittered_faces
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.masks import center_mask, half_mask
from edgefill.runtime.imaging.swd import HoleRealism, hole_sliced_wasserstein


@pytest.fixture(scope="module")
def faces(sample_faces):
    """96 face-like images: the 8 samples, shifted, flipped and colour-jittered."""
    return jittered_faces(sample_faces, 12)


def holes(n: int) -> np.ndarray:
    """Center holes for even images, left-half holes for odd ones: uint8 (n,64,64), 255 = fill."""
    return np.stack([center_mask() if i % 2 == 0 else half_mask("left") for i in range(n)])


def fill(truth: np.ndarray, masks: np.ndarray, source: np.ndarray) -> np.ndarray:
    return np.where((masks >= 128)[..., None], source, truth)


def test_a_set_against_itself_is_zero_and_the_seed_is_reproducible(faces):
    masks = holes(len(faces))
    assert hole_sliced_wasserstein(faces, faces, masks)["swd"] == 0.0
    other = np.roll(faces, 1, axis=0)
    first = hole_sliced_wasserstein(other, faces, masks, seed=3)
    assert first == hole_sliced_wasserstein(other, faces, masks, seed=3)
    assert set(first) == {"swd64", "swd32", "swd16", "swd"} and first["swd"] > 0
    assert hole_sliced_wasserstein(other, faces, masks, seed=4) != first


def test_only_the_hole_is_read(faces):
    """The windows are centred in the hole: at the finest level (whose band-pass reaches a few
    pixels) a change 8 rows below a center hole (rows 16..47) moves nothing, the same change in
    the hole does. (The coarse levels' low-pass spreads over the whole face, as it should.)"""
    masks = np.stack([center_mask()] * len(faces))
    away = faces.copy()
    away[:, 56:] = 0
    assert hole_sliced_wasserstein(away, faces, masks)["swd64"] == 0.0
    inside = faces.copy()
    inside[:, 28:36, 28:36] = 0
    assert hole_sliced_wasserstein(inside, faces, masks)["swd64"] > 0


def test_blurred_and_flat_fills_are_far_from_real_faces(faces):
    """Real faces of other people in the hole set the floor; a blurred fill (a mean-like estimate)
    is far above it at the finest level and a flat grey fill at every level."""
    masks = holes(len(faces))
    floor = hole_sliced_wasserstein(fill(faces, masks, np.roll(faces, 1, axis=0)), faces, masks)
    blurred = fill(faces, masks, np.stack([cv2.GaussianBlur(x, (9, 9), 3.0) for x in faces]))
    assert hole_sliced_wasserstein(blurred, faces, masks)["swd64"] > 2.5 * floor["swd64"]
    grey = hole_sliced_wasserstein(fill(faces, masks, np.full_like(faces, 128)), faces, masks)
    assert all(grey[k] > 3 * floor[k] for k in floor)


def test_images_without_a_hole_are_left_out_and_bad_input_is_one_error(faces):
    masks = holes(len(faces))
    masks[::3] = 0
    other = np.roll(faces, 1, axis=0)
    keep = masks.reshape(len(masks), -1).any(axis=1)
    assert hole_sliced_wasserstein(other, faces, masks) == \
        hole_sliced_wasserstein(other[keep], faces[keep], masks[keep])
    nothing = hole_sliced_wasserstein(other, faces, np.zeros_like(masks))
    assert all(np.isnan(v) for v in nothing.values())
    with pytest.raises(EdgefillError, match="paired"):
        hole_sliced_wasserstein(other[:10], faces, masks)
    with pytest.raises(EdgefillError, match="paired"):
        hole_sliced_wasserstein(other, faces, masks[:, :32])
    with pytest.raises(EdgefillError, match="uint8"):
        hole_sliced_wasserstein(other.astype(np.float32), faces, masks)


def test_one_reference_scores_many_outputs_as_the_function_does(faces):
    """HoleRealism computes the reference's side once (evaluate scores every method against the
    same truths): each score equals hole_sliced_wasserstein's, in any order of calls."""
    masks = holes(len(faces))
    realism = HoleRealism(faces, masks, seed=5)
    outputs = [np.roll(faces, 1, axis=0), fill(faces, masks, np.full_like(faces, 128)), faces]
    for out in outputs[::-1]:
        assert realism.score(out) == hole_sliced_wasserstein(out, faces, masks, seed=5)
    with pytest.raises(EdgefillError, match="paired"):
        realism.score(faces[:10])
    with pytest.raises(EdgefillError, match="paired"):
        HoleRealism(faces, masks[:10])
