"""Units of the video front end (runtime.frontends.video): face region geometry, tracking and
smoothing, scene cuts, temporal state, masks per frame, the flicker measure, sources and the
writer. No model: milliseconds to a second each."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import SAMPLES


def textured(h: int = 180, w: int = 320, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture with corners to track, uint8 (h,w,3)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


class FakeDetections:
    """Stands in for FaceTracker.detect: returns the Haar boxes scripted per call."""

    def __init__(self, boxes):
        self.boxes = list(boxes)
        self.calls = 0

    def __call__(self, image, gray=None):
        self.calls += 1
        return self.boxes.pop(0) if self.boxes else []


def test_crop_geometry_reproduces_the_model_crops_of_the_sample_faces():
    """Haar box -> CelebA-shaped square: measured again on the 8 committed CelebA test crops, the
    offsets agree with the constants, and the square recovered from the detection overlaps the true
    crop (IoU > 0.85)."""
    from edgefill.runtime.frontends.video import faces
    from edgefill.runtime.imaging.images import read_image

    imgs = np.stack([read_image(f) for f in sorted((SAMPLES / "faces").glob("*.png"))])
    geo = faces.measure_crop_geometry(imgs)
    assert geo["found"] >= 6
    assert geo["dy"] == pytest.approx(faces.CROP_DY, abs=0.03) and geo["side"] == pytest.approx(faces.CROP_SIDE, abs=0.05)
    assert abs(geo["dx"]) < 0.03
    # one face end to end: upscale + pad, detect with the tracker, compare its box with the crop
    size, pad = 256, 128
    big = cv2.copyMakeBorder(cv2.resize(imgs[0], (size, size), interpolation=cv2.INTER_CUBIC), pad, pad, pad, pad,
                             cv2.BORDER_REPLICATE)
    tracker = faces.FaceTracker(detect_width=big.shape[1], follow=False)
    region = tracker(0, big)
    assert region.box is not None and region.restarted
    x, y, w, h = region.box
    ix = max(0, min(x + w, pad + size) - max(x, pad)) * max(0, min(y + h, pad + size) - max(y, pad))
    assert ix / (w * h + size * size - ix) > 0.85


def test_square_box_stays_inside_the_frame_and_keeps_its_size():
    from edgefill.runtime.frontends.video.faces import square_box

    assert square_box(10, 10, 100, 320, 180) == (0, 0, 100, 100)  # shifted, not shrunk
    assert square_box(310, 170, 100, 320, 180) == (220, 80, 100, 100)
    assert square_box(160, 90, 400, 320, 180) == (70, 0, 180, 180)  # larger than the frame: clipped
    assert square_box(160, 90, 5, 320, 180) is None


def test_tracker_smooths_jitter_restarts_on_a_jump_and_ends_after_misses():
    from edgefill.runtime.frontends.video.faces import FaceTracker

    frame = textured()
    rng = np.random.default_rng(1)
    raw = [(100 + rng.normal(0, 4), 40 + rng.normal(0, 4), 80, 80) for _ in range(30)]
    tracker = FaceTracker(detect_every=1, smooth=0.15, follow=False)
    tracker.detect = FakeDetections([[b] for b in raw])
    regions = [tracker(i, frame) for i in range(30)]
    assert regions[0].restarted and not any(r.restarted for r in regions[1:])
    xs = np.array([r.box[0] for r in regions], float)
    raw_x = np.array([b[0] for b in raw])
    assert np.abs(np.diff(xs)).mean() < 0.4 * np.abs(np.diff(raw_x)).mean()  # the crop does not jump
    # a face far away (more than half a crop side): the track restarts there
    tracker.detect = FakeDetections([[(220, 60, 80, 80)]])
    jumped = tracker(30, frame)
    assert jumped.restarted and jumped.box[0] > 180
    # lost: the box is held through lost_after - 1 misses, then frames pass through
    tracker.detect = FakeDetections([[], [], []])
    held = [tracker(31 + i, frame) for i in range(3)]
    assert held[0].box is not None and held[1].box is not None and held[2].box is None
    # the face comes back: a clean restart
    tracker.detect = FakeDetections([[(100, 40, 80, 80)]])
    back = tracker(34, frame)
    assert back.box is not None and back.restarted


def test_tracker_detects_every_n_frames_and_follows_the_motion_in_between():
    from edgefill.runtime.frontends.video.faces import FaceTracker

    big = textured(400, 700, seed=3)
    frames = [np.ascontiguousarray(big[40:220, 20 + 3 * i:340 + 3 * i]) for i in range(10)]  # content moves 3 px left
    tracker = FaceTracker(detect_every=5, follow=True)
    fake = FakeDetections([[(120, 40, 80, 80)]])  # one detection at frame 0; frame 5's finds nothing
    tracker.detect = fake
    regions = [tracker(i, f) for i, f in enumerate(frames)]
    assert fake.calls == 2  # frames 0 and 5 only
    xs = [r.box[0] for r in regions]
    assert xs[4] - xs[0] == pytest.approx(-12, abs=2)  # followed the content, not held still
    still = FaceTracker(detect_every=5, follow=False)
    still.detect = FakeDetections([[(120, 40, 80, 80)]])
    assert len({still(i, f).box for i, f in enumerate(frames[:5])}) == 1  # without following: held


def test_scene_cut_ends_the_track_at_once():
    from edgefill.runtime.frontends.video.faces import FaceTracker

    tracker = FaceTracker(detect_every=3, follow=False)
    tracker.detect = FakeDetections([[(100, 40, 80, 80)], [], [], []])
    a, b = textured(seed=0), np.full((180, 320, 3), 250, np.uint8)  # a cut to a flat title card
    first = tracker(0, a)
    assert first.box is not None
    assert tracker(1, a).box is not None  # no detection this frame: the box is carried
    cut = tracker(2, b)
    assert cut.box is None and tracker.cuts == 1  # not held through misses as an occlusion would be


def test_fixed_region_is_checked_against_the_frame():
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.video.faces import FixedRegion

    r = FixedRegion((10, 10, 50, 50), 96, 80)
    assert r(0, None).restarted and not r(1, None).restarted and r(1, None).box == (10, 10, 50, 50)
    with pytest.raises(EdgefillError, match="not inside"):
        FixedRegion((60, 40, 64, 64), 96, 80)


def test_temporal_state_starts_from_the_previous_z_and_smooths_only_the_hole():
    from edgefill.runtime.core.starts import GivenStart, RandomStart
    from edgefill.runtime.frontends.video.temporal import TemporalState

    state = TemporalState(RandomStart(), previous=True, smooth=0.5)
    assert isinstance(state.start(restarted=True), RandomStart)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    first = state.update(np.full(100, 0.3, np.float32), np.zeros((64, 64, 3), np.uint8), mask)
    assert not first.any()
    start = state.start(restarted=False)
    assert isinstance(start, GivenStart) and np.allclose(start.z, 0.3)
    second = state.update(np.zeros(100, np.float32), np.full((64, 64, 3), 200, np.uint8), mask)
    assert (second[20, 20] == 100).all() and (second[0, 0] == 200).all()  # blended inside, untouched outside
    assert isinstance(state.start(restarted=True), RandomStart) and state.result is None  # a restart forgets
    independent = TemporalState(RandomStart(), previous=False)
    independent.update(np.zeros(100, np.float32), np.zeros((64, 64, 3), np.uint8), mask)
    assert isinstance(independent.start(restarted=False), RandomStart)


def test_mask_source_kind_png_array_and_mask_video(tmp_path):
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.video.masks import MaskSource

    assert MaskSource("center", 96, 80, 10).for_frame(3) == "center"
    png = tmp_path / "m.png"
    m = np.zeros((40, 48), np.uint8)
    m[10:20, 10:20] = 255
    cv2.imwrite(str(png), m)
    still = MaskSource(str(png), 96, 80, 10).for_frame(7)  # half size, same aspect: resized
    assert still.shape == (80, 96) and still[25, 25] == 255 and still[0, 0] == 0
    arr = MaskSource(np.pad(m, ((0, 40), (0, 48))), 96, 80, None).for_frame(0)
    assert arr.shape == (80, 96) and arr[15, 15] == 255
    video = tmp_path / "mv.mkv"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10, (96, 80))
    for i in range(4):
        f = np.zeros((80, 96, 3), np.uint8)
        f[10:20, 10 * i:10 * i + 10] = 255
        wr.write(f)
    wr.release()
    src = MaskSource(str(video), 96, 80, 4)
    got = [src.for_frame(i) for i in range(4)]
    for i, g in enumerate(got):
        assert g.dtype == np.uint8 and g[15, 10 * i + 5] == 255 and g.sum() == 100 * 255
    with pytest.raises(EdgefillError, match="frames"):
        MaskSource(str(video), 96, 80, 5)
    with pytest.raises(EdgefillError, match="must match"):
        MaskSource(str(video), 64, 80, 4)
    with pytest.raises(EdgefillError, match="not a mask kind"):
        MaskSource(str(tmp_path / "nope.png"), 96, 80, 4)


def test_flicker_ratio_is_one_for_the_source_and_grows_with_temporal_noise():
    from edgefill.runtime.frontends.video.flicker import FlickerMeter

    big = textured(300, 400, seed=5)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 255
    rng = np.random.default_rng(0)
    meter = FlickerMeter(scale=1.0)
    for i in range(8):
        src = np.ascontiguousarray(big[50:170, 30 + 2 * i:190 + 2 * i])
        src = np.clip(src + rng.normal(0, 2, src.shape), 0, 255).astype(np.uint8)  # a camera's own noise
        noisy = src.copy()
        noisy[mask >= 128] = np.clip(noisy[mask >= 128] + rng.normal(0, 12, (int((mask >= 128).sum()), 3)), 0, 255)
        meter.add(src, mask, same=src, noisy=noisy)
    res = meter.result()
    assert res["pairs"] == 7
    assert res["ratio"]["same"] == pytest.approx(1.0)
    assert res["ratio"]["noisy"] > 3.0


def test_sources_read_rgb_in_order_and_refuse_what_they_cannot_open(tmp_path):
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.video.sources import open_source

    for i in range(5):
        f = np.zeros((40, 48, 3), np.uint8)
        f[..., 0] = 50 * i  # red ramps up: checks the colour order and the frame order
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    src = open_source(str(tmp_path / "f%03d.png"))
    frames = []
    while (fr := src.read()) is not None:
        frames.append(fr)
    src.close()
    assert src.kind == "sequence" and [f.index for f in frames] == list(range(5))
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100, 150, 200] and frames[0].image[0, 0, 2] == 0
    with pytest.raises(EdgefillError, match="cannot open image sequence"):
        open_source(str(tmp_path / "none%03d.png"))
    with pytest.raises(EdgefillError, match="video not found"):
        open_source(str(tmp_path / "missing.mp4"))


def test_sink_writes_atomically_and_keeps_a_partial_file_on_abort(tmp_path):
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.video.writer import VideoSink

    out = tmp_path / "o.mkv"
    sink = VideoSink(out, 10.0, (48, 40))
    frame = np.zeros((40, 48, 3), np.uint8)
    for _ in range(3):
        sink.write(frame)
        assert not out.exists()  # nothing at OUT until the run finishes
    assert sink.abort() == tmp_path / "o.partial.mkv" and not out.exists()
    cap = cv2.VideoCapture(str(tmp_path / "o.partial.mkv"))
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    cap.release()
    assert decoded == 3  # playable, every frame written before the abort
    empty = VideoSink(out, 10.0, (48, 40))
    assert empty.abort() is None and sorted(p.name for p in tmp_path.iterdir()) == ["o.partial.mkv"]
    (tmp_path / "dir.mkv").mkdir()
    with pytest.raises(EdgefillError, match="is a folder"):
        VideoSink(tmp_path / "dir.mkv", 10.0, (48, 40))


def test_video_help_is_fast_and_imports_no_heavy_module():
    code = ("import sys\n"
            "from edgefill.runtime.frontends.cli.main import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['video', '--help']) == 0\n"
            "assert '--frame-budget-ms' in out.getvalue() and '--realtime' in out.getvalue()\n"
            "heavy = [m for m in ('cv2', 'onnxruntime', 'numpy', 'torch') if m in sys.modules]\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout  # what makes --help fast on any machine: no heavy import


# --- the bundle's face detector (BlazeFace) and the eye-aligned crop ---------------------------

def _default_detector_spec() -> dict:
    from edgefill.runtime.core.bundle import open_bundle

    spec = open_bundle(None).manifest.get("detector")
    if not spec:
        pytest.skip("the default bundle has no detector")
    return spec


def test_blazeface_anchors_follow_the_spec_order():
    from edgefill.runtime.frontends.video.blazeface import anchors

    a = anchors(_default_detector_spec())
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])  # 2 per cell on the 16x16 grid
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(a[512], [0.5 / 8, 0.5 / 8]) and np.allclose(a[512:518], a[512])  # then 6 per cell, 8x8
    assert np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_blazeface_decode_offsets_scores_and_weighted_nms():
    from edgefill.runtime.frontends.video.blazeface import anchors, decode

    spec = _default_detector_spec()
    a = anchors(spec)
    reg = np.zeros((896, 16), np.float32)
    logits = np.full((896, 1), -20.0, np.float32)
    i, j = 100, 101  # two anchors of one cell: the same face, slightly different boxes
    for k, dx in ((i, 0.0), (j, 4.0)):
        reg[k, :4] = [dx, 0.0, 40.0, 40.0]
        reg[k, 4:16] = np.tile([dx - 8.0, -6.0], 6)
    logits[i], logits[j] = 3.0, 1.0
    far = 700
    reg[far, :4] = [0, 0, 30, 30]
    logits[far] = 0.5
    found = decode(reg, logits, spec, a)
    assert len(found) == 2 and found[0][0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    score, box, kp = found[0]
    w1, w2 = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.0))
    cx = a[i, 0] + (w2 * 4.0 / 128) / (w1 + w2)  # the two overlapping boxes, averaged by score
    assert (box[0] + box[2]) / 2 == pytest.approx(cx, abs=1e-6) and box[2] - box[0] == pytest.approx(40 / 128)
    assert kp.shape == (6, 2) and kp[0, 1] == pytest.approx(a[i, 1] - 6 / 128)
    strict = decode(reg, logits, spec, a, min_score=0.9)  # only the 0.953 box passes: nothing to average
    assert len(strict) == 1 and (strict[0][1][0] + strict[0][1][2]) / 2 == pytest.approx(a[i, 0], abs=1e-6)
    assert [round(f[0], 3) for f in decode(reg, logits, spec, a, min_score=0.6)] == [0.953, 0.622]


def test_letterbox_maps_frame_pixels_back():
    from edgefill.runtime.frontends.video.blazeface import letterbox

    frame = np.zeros((180, 320, 3), np.uint8)
    frame[90, 160] = 255
    x, scale, px, py = letterbox(frame, 128)
    assert x.shape == (1, 3, 128, 128) and scale == pytest.approx(0.4) and px == 0 and py == 28
    assert x[0, 0, :28].max() == -1.0 and x[0, 0, -28:].max() == -1.0  # the padding is black (-1)
    yy, xx = np.unravel_index(np.argmax(x[0, 0]), (128, 128))
    assert (xx - px) / scale == pytest.approx(160, abs=3) and (yy - py) / scale == pytest.approx(90, abs=3)


def test_shipped_detector_finds_the_sample_faces_where_the_template_says():
    """The default bundle's detector.onnx on the committed CelebA test faces (as a frame would show
    them: upscaled and padded): one face each, its keypoints within a few crop pixels of the
    template measured on train.npz."""
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.frontends.video.blazeface import BlazeFace
    from edgefill.runtime.imaging.images import read_image

    spec = _default_detector_spec()
    det = BlazeFace(Pipeline(None).engine)
    template = np.array(spec["template"]["points"])
    assert template[0, 0] < template[1, 0] and abs(template[0, 1] - template[1, 1]) < 2  # eyes level
    for path in sorted((SAMPLES / "faces").glob("*.png")):
        big = cv2.copyMakeBorder(cv2.resize(read_image(path), (128, 128), interpolation=cv2.INTER_CUBIC),
                                 64, 64, 64, 64, cv2.BORDER_REPLICATE)
        faces = det(big)
        assert len(faces) == 1 and faces[0].score > 0.5, path.name
        kp = (faces[0].keypoints[:4] - 64) / 2
        assert np.abs(kp[:2] - template[:2]).max() < 3, (path.name, kp)  # eyes: CelebA is eye-aligned
        assert np.abs(kp[2:] - template[2:]).max() < 8, (path.name, kp)  # nose, mouth: heads turn


def test_similarity_crop_and_paste_back_touch_only_the_hole_and_its_feather():
    from edgefill.runtime.frontends.video import align

    template = np.array([[21.0, 34.0], [43.0, 34.0], [32.0, 48.0], [32.0, 59.0]])
    angle = np.deg2rad(10)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (template - 32) @ rot.T * 3 + [160, 90]  # the face 3x bigger, rotated 10 degrees, at (160, 90)
    m = align.similarity(points, template)
    back = points @ m[:, :2].T + m[:, 2]
    assert np.abs(back - template).max() < 1e-3
    assert np.hypot(*m[:, 0]) == pytest.approx(1 / 3, rel=1e-3)
    frame = textured(180, 320)
    crop = align.warp_in(frame, m)
    assert crop.shape == (64, 64, 3)
    mask64 = np.zeros((64, 64), np.uint8)
    mask64[16:48, 16:48] = 255
    hole = align.hole_in_frame(mask64, m, 320, 180)
    assert (hole >= 128).sum() == pytest.approx(32 * 32 * 9, rel=0.05)  # the hole, 3x bigger in the frame
    result = np.full((64, 64, 3), 7, np.uint8)
    out = align.paste_aligned(frame, result, hole, m)
    inside = hole >= 128
    assert (out[inside] == 7).all()  # the hole is the result only, never mixed with what was under it
    near = cv2.dilate(inside.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert np.array_equal(out[~near], frame[~near])  # beyond the feather: untouched
    band = near & ~inside
    assert (out[band] != frame[band]).any()  # the feathered edge


class FakeLandmarks:
    """Stands in for BlazeFace: scripted faces (keypoints (6,2)) per call."""

    def __init__(self, faces):
        self.faces = list(faces)

    def __call__(self, image):
        from edgefill.runtime.frontends.video.blazeface import Face

        kps = self.faces.pop(0) if self.faces else []
        return [Face(0.9, (0, 0, 1, 1), np.asarray(k, np.float32)) for k in kps]


def _kp(cx, cy, s=1.0):
    base = np.array([[-11, -14], [11, -14], [0, 0], [0, 11], [-24, -10], [24, -10]], np.float64) * s
    return base + [cx, cy]


def test_aligned_tracker_smooths_landmarks_restarts_on_a_jump_and_gives_a_transform():
    from edgefill.runtime.frontends.video.faces import AlignedTracker

    template = np.array([[21.0, 34.0], [43.0, 34.0], [32.0, 48.0], [32.0, 59.0]])
    frame = textured()
    rng = np.random.default_rng(2)
    script = [[_kp(160 + rng.normal(0, 3), 90 + rng.normal(0, 3), 2.0)] for _ in range(20)]
    tracker = AlignedTracker(FakeLandmarks(script), template, detect_every=1, smooth=0.15, follow=False)
    regions = [tracker(i, frame) for i in range(20)]
    assert regions[0].restarted and not any(r.restarted for r in regions[1:])
    assert all(r.transform is not None and r.box is not None for r in regions)
    eyes = np.array([r.points[:2].mean(0) for r in regions])
    raw = np.array([s[0][:2].mean(0) for s in script])
    assert np.abs(np.diff(eyes, axis=0)).mean() < 0.4 * np.abs(np.diff(raw, axis=0)).mean()  # smoothed
    m = regions[-1].transform
    assert np.hypot(*m[:, 0]) == pytest.approx(0.5, rel=0.05)  # the eyes 44 px apart here, 22 in the crop
    tracker.detector = FakeLandmarks([[_kp(60, 60, 2.0)]])
    jumped = tracker(20, frame)
    assert jumped.restarted and jumped.points[:2].mean(0)[0] == pytest.approx(60, abs=1)
    tracker.detector = FakeLandmarks([[], [], []])
    assert [tracker(21 + i, frame).box is not None for i in range(3)] == [True, True, False]


def test_multi_face_tracker_keeps_one_track_per_face():
    from edgefill.runtime.frontends.video.faces import MultiFaceTracker

    template = np.array([[21.0, 34.0], [43.0, 34.0], [32.0, 48.0], [32.0, 59.0]])
    frame = textured()
    a, b, c = _kp(80, 90, 1.5), _kp(240, 90, 1.5), _kp(160, 40, 1.0)
    script = [[a, b]] * 3 + [[b, a, c]] + [[b]] * 3  # a third face while two are tracked; then `a` leaves
    tracker = MultiFaceTracker(FakeLandmarks(script), template, max_faces=2, detect_every=1, follow=False)
    regions = [tracker(i, frame) for i in range(len(script))]
    assert [len(r) for r in regions] == [2, 2, 2, 2, 2, 2, 1]  # `a` held through 2 misses, ended at the 3rd
    assert [r.track_id for r in regions[0]] == [0, 1] and all(r.restarted for r in regions[0])
    assert not any(r.restarted for r in regions[1])
    assert [r.track_id for r in regions[3]] == [0, 1]  # the order of detections does not swap the tracks
    assert regions[3][0].points[:2].mean(0)[0] == pytest.approx(80, abs=1)  # track 0 stays on face a
    assert regions[-1][0].track_id == 1  # face b keeps its track; c never got one (no room)


def test_live_queue_hands_inference_the_newest_frame_and_counts_the_stale_one():
    """--realtime: at most one located frame waits for inference; a newer one replaces it (a drop)."""
    import queue

    from edgefill.runtime.frontends.video.run import _END, LIVE_QUEUE_SIZE, _replace_stale

    assert LIVE_QUEUE_SIZE == 1
    q = queue.Queue(LIVE_QUEUE_SIZE)
    assert _replace_stale(q, "f0") is False
    assert _replace_stale(q, "f1") is True and _replace_stale(q, "f2") is True
    assert q.get_nowait() == "f2" and q.empty()
    assert _replace_stale(q, "f3") is False
    q.get_nowait()
    q.put_nowait(_END)  # the end marker is never replaced
    assert _replace_stale(q, "f4") is False and q.get_nowait() is _END


def test_frames_carry_when_their_decode_began(tmp_path):
    """The end-to-end latency starts at the frame's own decode, also when a live source's thread
    decoded it before anyone asked."""
    import time

    from edgefill.runtime.frontends.video.sources import open_source

    path = tmp_path / "c.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100.0, (48, 40))
    for i in range(6):
        writer.write(np.full((40, 48, 3), 40 * i, np.uint8))
    writer.release()
    for realtime in (False, True):
        src = open_source(str(path), realtime=realtime)
        before = time.perf_counter()
        frames = []
        while (fr := src.read()) is not None:
            frames.append(fr)
        src.close()
        assert frames and all(f.decode_s >= 0 for f in frames)
        reads = [f.read_at for f in frames]
        assert reads == sorted(reads) and all(r > 0 for r in reads)
        assert reads[-1] <= time.perf_counter() and (realtime or reads[0] >= before)


def test_turned_and_outside_faces_fall_back_on_synthetic_landmarks():
    """align.turn: ~0 for a frontal face whatever its roll and scale, the nose's offset along the
    eye line over the eye distance when turned; align.outside_fraction: the crop's share outside
    the frame; VideoInpainter.pose: "outside" first, then "turned", None under both thresholds."""
    from types import SimpleNamespace

    from edgefill.runtime.frontends.video import align
    from edgefill.runtime.frontends.video.api import VideoInpainter
    from edgefill.runtime.frontends.video.faces import Region
    from edgefill.runtime.frontends.video.settings import VideoSettings

    template = np.array([[21.0, 34.0], [43.0, 34.0], [32.0, 48.0], [32.0, 59.0]])
    frontal = _kp(160, 120, 2.0)[:4]
    assert align.turn(template, template) == 0.0
    assert abs(align.turn(frontal, template)) < 1e-9
    turned = frontal + [[0, 0], [0, 0], [17.6, 0], [8, 0]]  # the nose 17.6 px towards the left eye (eyes 44 apart)
    assert align.turn(turned, template) == pytest.approx(0.4, abs=1e-6)
    assert align.turn(frontal + [[0, 0], [0, 0], [-17.6, 0], [0, 0]], template) == pytest.approx(-0.4, abs=1e-6)
    a = np.deg2rad(25)  # roll and scale change nothing
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    assert align.turn(1.7 * (turned - 160) @ rot.T + 300, template) == pytest.approx(0.4, abs=1e-6)

    m = align.similarity(frontal, template)  # a crop of side 128 frame px, inside 320x240
    assert align.outside_fraction(m, 320, 240) == 0.0
    left = align.crop_corners(m)[:, 0].min()
    shifted = align.similarity(frontal - [left + 64, 0], template)  # half the crop left of x = 0
    assert align.outside_fraction(shifted, 320, 240) == pytest.approx(0.5, abs=0.02)

    vi = SimpleNamespace(template=template, width=320, height=240,
                         settings=VideoSettings(fallback_yaw=0.3, fallback_outside=0.25))
    pose = lambda pts, m: VideoInpainter.pose(vi, Region((0, 0, 8, 8), False, transform=m, points=pts))  # noqa: E731
    assert pose(frontal, m)[2] is None
    assert pose(turned, align.similarity(turned, template))[2] == "turned"
    assert pose(frontal - [left + 64, 0], shifted)[2] == "outside"
    vi.settings = vi.settings.replace(fallback_yaw=None, fallback_outside=None)  # --no-fallback: measured, never acted on
    yaw, outside, reason = pose(turned, align.similarity(turned, template))
    assert reason is None and yaw == pytest.approx(0.4, abs=1e-6) and outside == 0.0
    assert VideoInpainter.pose(vi, Region((0, 0, 8, 8), False)) == (None, None, None)  # a Haar box: no landmarks
