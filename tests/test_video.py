"""`edgefill video` on small synthetic clips made here (lossless FFV1 where pixels are compared)
and, when ../shared is present, on the real clips. Tiny bundle, few steps: seconds each."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli

SHARED_VIDEO = REPO.parent / "shared" / "data" / "video"


def make_clip(path: Path, frames: int = 16, size=(96, 80), fps: float = 12.0, codec: str = "FFV1",
              seed: int = 0) -> list[np.ndarray]:
    """A smooth moving pattern, written with a lossless codec; returns the RGB frames."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (w * 2, h * 2), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    out = []
    for i in range(frames):
        o = i % min(w, h)
        frame = np.ascontiguousarray(base[o:o + h, o:o + w])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        out.append(frame)
    writer.release()
    return out


def read_frames(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    cap.release()
    size = (frames[0].shape[1], frames[0].shape[0]) if frames else (0, 0)
    return frames, fps, size


def video(*args, **kw) -> subprocess.CompletedProcess:
    return run_cli("video", *args, "--no-progress", **kw)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "clip.mkv"
    return path, make_clip(path)


def test_file_keeps_every_frame_size_fps_and_pixels_outside_the_hole(clip, tiny_bundle, tmp_path):
    src, frames = clip
    out = tmp_path / "out.mkv"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--mask", "center", "--steps", "2",
                 "--bundle", str(tiny_bundle), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["frames_in"] == rep["frames_out"] == len(frames) and rep["dropped"] == 0
    got, fps, size = read_frames(out)
    assert len(got) == len(frames) and size == (96, 80) and fps == pytest.approx(12.0)
    hole = np.zeros((80, 96), bool)
    hole[8 + 16:8 + 48, 16 + 16:16 + 48] = True  # the center kind: the middle 32x32 of the 64x64 box
    for a, b in zip(got, frames):
        assert np.array_equal(a[~hole], b[~hole])  # lossless codec: untouched outside the hole
    assert any(not np.array_equal(a[hole], b[hole]) for a, b in zip(got, frames))
    full = json.loads((tmp_path / "r.json").read_text())
    for stage in ("decode", "detect", "inpaint", "align", "start", "search", "refine", "paste", "encode", "total"):
        assert full["latency"][stage]["count"] == len(frames) and full["latency"][stage]["p99_ms"] is not None
    assert full["track_restarts"] == 1 and full["steps_run"]["max"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "r.json"]  # no temp file left


def test_frames_without_a_face_pass_through_untouched(clip, tiny_bundle, tmp_path):
    src, frames = clip
    out = tmp_path / "out.mkv"
    proc = video(str(src), "--out", str(out), "--face", "auto", "--bundle", str(tiny_bundle), "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["frames_without_face"] == rep["frames_out"] == len(frames)
    got, _, _ = read_frames(out)
    assert all(np.array_equal(a, b) for a, b in zip(got, frames))


def test_side_by_side_and_evaluate(clip, tiny_bundle, tmp_path):
    src, frames = clip
    out = tmp_path / "sbs.mkv"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "1",
                 "--side-by-side", "--evaluate", "--smooth", "0.5")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    got, _, size = read_frames(out)
    assert size == (192, 80) and np.array_equal(got[3][:, :96], frames[3])
    ev = rep["evaluation"]
    assert ev["frames"] == len(frames) and ev["flicker"]["pairs"] == len(frames) - 1
    for key in ("hole_psnr", "telea_hole_psnr", "ssim", "telea_ssim"):
        assert np.isfinite(ev[key]["mean"]), key
    assert ev["flicker"]["ratio"]["output"] > 0 and ev["flicker"]["ratio"]["telea"] > 0
    from edgefill.runtime.frontends.video.settings import VideoSettings

    recorded = set(rep["settings"]) - {"previous_z"} | {"previous"}  # every VideoSettings field, as run
    assert set(VideoSettings().as_dict()) <= recorded
    assert rep["settings"]["box"] == [16, 8, 64, 64] and rep["settings"]["face"] is None
    assert rep["settings"]["smooth"] == 0.5 and rep["settings"]["steps"] == 1


def test_realtime_drops_and_counts_what_it_cannot_keep_up_with(tmp_path, tiny_bundle):
    """Bounded by design, not by the machine's speed: every frame's search runs until its 200 ms
    budget (100000 steps never finish first), so at most 5 frames a second come out of a source
    that delivers 200 a second for 0.3 s: frames must be dropped, on any hardware."""
    src = tmp_path / "fast.mkv"
    frames = make_clip(src, frames=60, fps=200.0)
    out = tmp_path / "live.mkv"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "100000",
                 "--frame-budget-ms", "200", "--realtime")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["live"] and rep["dropped"] > 0
    assert rep["frames_in"] == len(frames) == rep["frames_processed"] + rep["dropped"]
    assert rep["fps"] <= 1000 / 200 * 1.01  # each frame out took at least its budget
    got, fps, _ = read_frames(out)
    assert len(got) == rep["frames_out"] == rep["frames_processed"]
    assert fps == pytest.approx(rep["fps_stamped"], rel=0.02) and fps < 200  # stamped with the achieved fps


def test_realtime_without_a_budget_gives_the_search_a_share_of_the_frame_interval(clip, tiny_bundle, tmp_path):
    from edgefill.runtime.frontends.video.run import REALTIME_BUDGET_SHARE

    src, frames = clip
    proc = video(str(src), "--out", str(tmp_path / "o.mkv"), "--box", "16,8,64,64", "--bundle", str(tiny_bundle),
                 "--realtime")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["settings"]["frame_budget_auto"] is True
    assert rep["settings"]["frame_budget_ms"] == pytest.approx(REALTIME_BUDGET_SHARE * 1000 / rep["source_fps"])
    assert rep["frames_in"] == rep["frames_processed"] + rep["dropped"] == len(frames)
    assert 1 <= rep["steps_run"]["max"] <= rep["settings"]["steps"]
    proc = video(str(src), "--out", str(tmp_path / "f.mkv"), "--box", "16,8,64,64", "--bundle", str(tiny_bundle))
    rep = json.loads(proc.stdout)  # a file keeps the plain search: every step, no budget
    assert rep["settings"]["frame_budget_ms"] is None and rep["settings"]["frame_budget_auto"] is False


def test_audio_is_copied_and_a_source_without_audio_is_reported(tmp_path, tiny_bundle):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")
    from edgefill.runtime.frontends.video.writer import has_audio

    silent = tmp_path / "silent.mp4"
    make_clip(silent, frames=12, codec="mp4v")
    with_audio = tmp_path / "audio.mp4"
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-f", "lavfi",
                           "-i", "sine=frequency=440:duration=1", "-c:v", "copy", "-c:a", "aac", "-shortest",
                           str(with_audio)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert has_audio(str(with_audio)) and not has_audio(str(silent))
    out = tmp_path / "out.mp4"
    proc = video(str(with_audio), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "1",
                 "--keep-audio")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["audio"] == "copied" and has_audio(str(out))
    out2 = tmp_path / "out2.mp4"
    proc = video(str(silent), "--out", str(out2), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "1",
                 "--keep-audio")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["audio"] == "none in the source" and len(read_frames(out2)[0]) == 12


def test_ctrl_c_leaves_a_playable_partial_file_and_no_out(tmp_path, tiny_bundle):
    """SIGINT is answered within one search step and the encoding of the frames done, however
    loaded the machine. The run cannot end first by design: every frame's search runs until its
    25 ms budget (100000 steps never finish), so 400 frames take at least 10 s. The signal goes
    when the output shows frames on disk (the temporary file grows past 0 bytes: the encoder has
    flushed frames), not after a guessed sleep; the process is killed in `finally` whatever
    happens."""
    src = tmp_path / "long.mkv"
    make_clip(src, frames=400, size=(192, 160))
    out = tmp_path / "out.mkv"
    proc = subprocess.Popen([sys.executable, "-m", "edgefill.runtime", "video", str(src), "--out", str(out), "--box",
                             "32,16,128,128", "--bundle", str(tiny_bundle), "--steps", "100000", "--frame-budget-ms",
                             "25", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size > 0 for p in tmp_path.glob(".out.*")):
                break  # ready: frames are being written
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no frame reached the output in 120 s"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        answered = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgefill: interrupted:"), err
    assert not out.exists()
    partial = tmp_path / "out.partial.mkv"
    assert partial.is_file() and str(partial) in lines[0]
    frames, _, size = read_frames(partial)
    assert len(frames) > 0 and size == (192, 160)
    assert not list(tmp_path.glob(".out.*"))
    assert answered < 60


@pytest.mark.parametrize("case, fragment", [
    ("not a video", "cannot open video"),
    ("zero frames", "no frames"),
    ("zero frames mkv", "no frames"),
    ("empty sequence", "cannot open image sequence"),
    ("out is a folder", "is a folder"),
    ("missing", "video not found"),
    ("camera", "cannot open camera"),
    ("url", "cannot open stream"),
    ("mask video length", "frames, the video"),
    ("mask video size", "they must match"),
    ("unwritable", "does not exist"),
    ("codec", "cannot write"),
    ("suffix", "--out must end in one of"),
    ("box outside", "not inside"),
    ("mask outside box", "holes outside --box"),
    ("both box and face", "not both"),
])
def test_bad_input_is_one_line_and_leaves_no_output(clip, tiny_bundle, tmp_path, case, fragment):
    src, frames = clip
    out = tmp_path / "out.mkv"
    args = [str(src), "--out", str(out), "--bundle", str(tiny_bundle), "--steps", "1", "--box", "16,8,64,64"]
    if case == "not a video":
        bad = tmp_path / "notes.mp4"
        bad.write_text("not a video at all")
        args[0] = str(bad)
    elif case == "missing":
        args[0] = str(tmp_path / "nope.mp4")
    elif case in ("zero frames", "zero frames mkv"):
        empty = tmp_path / ("zero.avi" if case == "zero frames" else "zero.mkv")
        cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*("MJPG" if case == "zero frames" else "FFV1")), 10,
                        (96, 80)).release()  # a container with no frame in it
        assert empty.is_file()
        args[0] = str(empty)
    elif case == "empty sequence":
        args[0] = str(tmp_path / "frames_%04d.png")
    elif case == "out is a folder":
        (tmp_path / "dir.mkv").mkdir()
        args[2] = str(tmp_path / "dir.mkv")
    elif case == "camera":
        args[0] = "97"
    elif case == "url":
        args[0] = "http://127.0.0.1:1/stream.mp4"
    elif case in ("mask video length", "mask video size"):
        mv = tmp_path / "mask.mkv"
        make_clip(mv, frames=5 if case == "mask video length" else len(frames),
                  size=(96, 80) if case == "mask video length" else (48, 40))
        args += ["--mask", str(mv)]
    elif case == "unwritable":
        args[2] = str(tmp_path / "no" / "such" / "out.mkv")
    elif case == "codec":
        args += ["--codec", "ZZZZ"]
    elif case == "suffix":
        args[2] = str(tmp_path / "out.gif")
    elif case == "mask outside box":
        m = np.zeros((80, 96), np.uint8)
        m[30:40, 84:90] = 255  # right of the box 16,8,64,64
        cv2.imwrite(str(tmp_path / "m.png"), m)
        args += ["--mask", str(tmp_path / "m.png")]
    elif case == "box outside":
        args[args.index("--box") + 1] = "60,40,64,64"
    elif case == "both box and face":
        args += ["--face", "auto"]
    proc = video(*args, timeout=120)
    assert_one_line_error(proc, fragment)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".mkv", ".mp4", ".gif") and
                  p.name not in ("mask.mkv", "notes.mp4", "zero.mkv", "dir.mkv")) == []
    assert not list(tmp_path.glob(".out.*"))  # no temporary file left either


def test_python_api_yields_processed_frames(clip, tiny_bundle):
    from edgefill.runtime.frontends.video.api import VideoInpainter

    src, frames = clip
    vi = VideoInpainter(96, 80, "center", box=(16, 8, 64, 64), face=None, steps=2, bundle=tiny_bundle)
    outs = [vi.process(f) for f in frames[:4]]
    assert [info["start"] for _, info in outs] == ["random", "given", "given", "given"]  # previous frame's z
    assert all(o.shape == frames[0].shape for o, _ in outs)
    vi2 = VideoInpainter(96, 80, "center", face="auto", steps=2, bundle=tiny_bundle)
    same, info = vi2.process(frames[0])
    assert same is frames[0] and not info["face"]


@pytest.mark.parametrize("fields, fragment", [
    ({"steps": 0}, "--steps"), ({"steps": 1.5}, "--steps"), ({"steps": None}, "--steps"), ({"detect_every": 0}, "--detect-every"),
    ({"max_faces": 0}, "--max-faces"), ({"smooth": 1.0}, "--smooth"), ({"box_smoothing": 0.0}, "--box-smoothing"),
    ({"frame_budget_ms": 0}, "--frame-budget-ms"), ({"init": "sideways"}, "--init"),
    ({"detector": "yunet"}, "--detector"), ({"blend": "average"}, "--blend"), ({"fill": "diffusion"}, "--fill"),
    ({"fallback_yaw": -1}, "--fallback-yaw"), ({"fallback_outside": 1.5}, "--fallback-outside"),
    ({"face": "left"}, "--face"), ({"box": (1, 2, 3)}, "--box"), ({"box": "1,2,3,4", "face": "auto"}, "not both"),
    ({"box": "1,2,3,4", "max_faces": 2}, "--box is one region"),
    ({"detector": "haar", "max_faces": 2}, "--detector haar follows one face"),
])
def test_video_settings_reject_bad_values_naming_the_flag(fields, fragment):
    """VideoSettings is the one place the video settings are checked: the Python API (a new
    VideoSettings, replace() of a good one, VideoInpainter's keywords) and the CLI get the same error."""
    import re

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.video.api import VideoInpainter
    from edgefill.runtime.frontends.video.settings import VideoSettings

    with pytest.raises(EdgefillError, match=re.escape(fragment)):
        VideoSettings(**fields)
    with pytest.raises(EdgefillError, match=re.escape(fragment)):
        VideoSettings(steps=3).replace(**fields)
    with pytest.raises(EdgefillError, match=re.escape(fragment)):
        VideoInpainter(96, 80, "center", VideoSettings(), **fields)  # checked before any bundle is loaded
    good = VideoSettings(box="16,8,64,64", steps=1)
    assert good.box == (16, 8, 64, 64) and good.as_dict()["face"] is None and VideoSettings().as_dict()["face"] == "auto"


def test_video_help_states_the_settings_defaults():
    """The flags left unset take VideoSettings' defaults; their help text (click cannot show them
    without importing numpy on --help) must name the same values."""
    from edgefill.runtime.frontends.cli.video_cmd import video_cmd
    from edgefill.runtime.frontends.video.settings import VideoSettings

    helps = {p.name: p.help for p in video_cmd.params}
    defaults = VideoSettings()
    for name in ("steps", "smooth", "box_smoothing", "detect_every", "fallback_yaw", "fallback_outside"):
        assert f"default {getattr(defaults, name)}" in helps[name], name
    assert defaults.refine and "default: on" in helps["refine"]
    assert not defaults.flip_average and "off for video" in helps["flip_average"]


@pytest.fixture(scope="module")
def real_clips():
    if not (SHARED_VIDEO / "single_face.mp4").is_file():
        pytest.skip(f"shared video clips not found at {SHARED_VIDEO} (../shared beside the checkout)")
    return SHARED_VIDEO


def test_real_clip_face_auto_end_to_end(real_clips, tmp_path):
    """The issue's 'done when' command, on the whole quick clip with the default bundle."""
    out = tmp_path / "out.mp4"
    proc = video(str(real_clips / "single_face.mp4"), "--face", "auto", "--mask", "center", "--out", str(out),
                 timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["frames_in"] == rep["frames_out"] == 72 and rep["dropped"] == 0
    assert rep["frames_without_face"] <= 1 and rep["size"] == [640, 360]
    got, fps, size = read_frames(out)
    assert len(got) == 72 and size == (640, 360) and fps == pytest.approx(30.0, rel=0.01)


def test_real_clip_keeps_its_audio(real_clips, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")
    from edgefill.runtime.frontends.video.writer import has_audio

    out = tmp_path / "out.mp4"
    proc = video(str(real_clips / "single_face.mp4"), "--face", "auto", "--out", str(out), "--keep-audio",
                 "--codec", "h264", "--steps", "1", "--max-frames", "10", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["audio"] == "copied" and has_audio(str(out))
    assert len(read_frames(out)[0]) == 10


def test_real_clip_scene_cut_to_frames_without_a_face(real_clips, tmp_path):
    """face_noface.mov cuts from a face to a title card at frame 72: the track ends at the cut (not
    a few frames later), and every frame without a face is written untouched (lossless FFV1)."""
    out = tmp_path / "out.mkv"
    proc = video(str(real_clips / "face_noface.mov"), "--face", "auto", "--out", str(out), "--steps", "1",
                 "--max-frames", "84", "--json", str(tmp_path / "r.json"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_out"] == 84 and rep["scene_cuts"] >= 1 and rep["frames_without_face"] >= 84 - 72
    cap = cv2.VideoCapture(str(real_clips / "face_noface.mov"))
    src = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(84)]
    cap.release()
    got, _, _ = read_frames(out)
    assert not np.array_equal(got[40], src[40])  # a face: inpainted
    assert all(np.array_equal(a, b) for a, b in zip(got[73:], src[73:]))  # after the cut: untouched


def test_real_clip_without_faces_passes_through(real_clips, tmp_path):
    out = tmp_path / "out.mkv"
    proc = video(str(real_clips / "no_face.mp4"), "--face", "auto", "--out", str(out), "--max-frames", "10",
                 timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["frames_without_face"] == rep["frames_out"] == 10
    cap = cv2.VideoCapture(str(real_clips / "no_face.mp4"))
    src = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(10)]
    got, _, _ = read_frames(out)
    assert all(np.array_equal(a, b) for a, b in zip(got, src))


def test_image_sequence_with_a_png_mask(tmp_path, tiny_bundle):
    """INPUT a frames/%04d.png pattern, --mask one full-frame PNG: every frame out, only the PNG's
    hole changes (lossless FFV1), the sequence's default fps."""
    frames = make_clip(tmp_path / "unused.mkv", frames=6)
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq / f"f{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    hole = np.zeros((80, 96), np.uint8)
    hole[30:50, 40:60] = 255
    cv2.imwrite(str(tmp_path / "hole.png"), hole)
    out = tmp_path / "out.mkv"
    proc = video(str(seq / "f%04d.png"), "--out", str(out), "--box", "16,8,64,64", "--mask", str(tmp_path / "hole.png"),
                 "--bundle", str(tiny_bundle), "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    got, _, size = read_frames(out)
    assert len(got) == len(frames) and size == (96, 80)
    inside = hole >= 128
    for a, b in zip(got, frames):
        assert np.array_equal(a[~inside], b[~inside]) and not np.array_equal(a[inside], b[inside])


def test_mask_video_gives_each_frame_its_own_hole(clip, tiny_bundle, tmp_path):
    src, frames = clip
    mv = tmp_path / "masks.mkv"
    wr = cv2.VideoWriter(str(mv), cv2.VideoWriter_fourcc(*"FFV1"), 12.0, (96, 80))
    holes = []
    for i in range(len(frames)):
        m = np.zeros((80, 96), np.uint8)
        if i % 4:  # every 4th frame has no hole at all: it passes through
            m[20:40, 20 + 2 * i:36 + 2 * i] = 255
        holes.append(m >= 128)
        if i == 5:
            m[50:60, 84:92] = 255  # reaches past the face box 16,8,64,64: that part is left as it is
        wr.write(cv2.cvtColor(m, cv2.COLOR_GRAY2BGR))
    wr.release()
    out = tmp_path / "out.mkv"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--mask", str(mv), "--bundle", str(tiny_bundle),
                 "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames_hole_clipped"] == 1
    got, _, _ = read_frames(out)
    assert len(got) == len(frames)
    for i, (a, b, h) in enumerate(zip(got, frames, holes)):
        assert np.array_equal(a[~h], b[~h]), i
        assert np.array_equal(a, b) if not h.any() else not np.array_equal(a[h], b[h]), i


def test_h264_keeps_frame_count_size_and_fps(clip, tiny_bundle, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="the video extra (imageio-ffmpeg) is not installed")
    src, frames = clip
    out = tmp_path / "out.mp4"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "1",
                 "--codec", "h264")
    assert proc.returncode == 0, proc.stderr
    got, fps, size = read_frames(out)
    assert len(got) == len(frames) and size == (96, 80) and fps == pytest.approx(12.0, rel=0.01)
    assert json.loads(proc.stdout)["settings"]["codec"] == "h264"


def test_frame_budget_stops_each_search_in_time(clip, tiny_bundle, tmp_path):
    src, frames = clip
    out = tmp_path / "out.mkv"
    proc = video(str(src), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "100000",
                 "--frame-budget-ms", "30", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_out"] == len(frames) and rep["steps_run"]["max"] < 100000  # the deadline stopped every search
    # and only the deadline: 100000 steps never finish in 30 ms, so each frame's search ran until it
    assert rep["latency"]["inpaint"]["count"] == len(frames) and rep["latency"]["inpaint"]["p50_ms"] >= 30 * 0.95
    assert all(f["steps_run"] >= 1 for f in rep["per_frame"])


def test_generators_yield_processed_frames_lazily(clip, tiny_bundle):
    from edgefill.runtime.frontends.video.api import VideoInpainter, inpaint_frames, inpaint_video

    src, frames = clip
    pulled = []

    def feed():
        for f in frames:
            pulled.append(1)
            yield f

    gen = inpaint_frames(feed(), "center", box=(16, 8, 64, 64), face=None, steps=1, bundle=tiny_bundle)
    out0, info0 = next(gen)
    assert len(pulled) == 1 and info0["index"] == 0 and info0["start"] == "random"  # lazy: one frame in, one out
    rest = list(gen)
    assert len(rest) == len(frames) - 1 and all(info["start"] == "given" for _, info in rest)
    vi = VideoInpainter(96, 80, "center", box=(16, 8, 64, 64), face=None, steps=1, bundle=tiny_bundle)
    direct = [o for o, _ in vi.frames(frames)]
    assert all(np.array_equal(a, b) for a, b in zip(direct, [out0] + [o for o, _ in rest]))
    from_file = list(inpaint_video(str(src), "center", box=(16, 8, 64, 64), face=None, steps=1, bundle=tiny_bundle))
    assert len(from_file) == len(frames)
    assert all(np.array_equal(info["source"], f) for (_, info), f in zip(from_file, frames))
    assert all(np.array_equal(o, d) for (o, _), d in zip(from_file, direct))
    from edgefill.runtime.errors import EdgefillError

    with pytest.raises(EdgefillError, match="expected RGB uint8"):
        vi.process(frames[0][:40])


def test_bench_video_still_runs(real_clips, tmp_path):
    """benchmarks/bench_video.py end to end on a few frames (the benchmark itself is on demand)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_video.py"), "--clip",
                           str(real_clips / "single_face.mp4"), "--configs", "default,independent", "--max-frames", "6",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    assert [r["config"] for r in rep["rows"]] == ["default", "independent"]
    assert all(r["frames_out"] == r["frames_in"] == 6 for r in rep["rows"])
    assert set(rep["goals"]) >= {"realtime_24fps", "hole_psnr_vs_telea", "flicker_le_2", "flicker_30pct_below_independent"}


def test_bench_video_runs_each_bundle_and_makes_the_realtime_clip(real_clips, tiny_bundle, tmp_path):
    """--bundles label=path runs every config on each bundle (the fp32 / fp16 / int8 table);
    make_realtime_clip letterboxes 640x360 into 640x480 and stamps 29.97 fps, every frame kept."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_video import REALTIME_FPS, make_realtime_clip

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_video.py"), "--clip",
                           str(real_clips / "single_face.mp4"), "--configs", "default", "--max-frames", "4",
                           "--bundles", f"fp16=default,tiny={tiny_bundle}", "--no-quality", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["config"] for r in rows] == ["default@fp16", "default@tiny"]
    assert rows[1]["bundle"] == str(tiny_bundle) and all(r["frames_out"] == 4 for r in rows)
    assert all(r["stages_ms"]["start"][0] is not None for r in rows)
    clip = tmp_path / "rt.mp4"
    info = make_realtime_clip(str(clip), clips=("single_face.mp4",), folder=real_clips)
    got, fps, size = read_frames(clip)
    assert size == (640, 480) and len(got) == info["frames"] == 72 and fps == pytest.approx(REALTIME_FPS, rel=1e-3)
    assert got[0][:50].max() < 30 and got[0][-50:].max() < 30  # the 60-px bars above and below are black


def make_face_clip(path: Path, frames: int = 12, size=(320, 240), step: int = 2) -> list[np.ndarray]:
    """A committed CelebA test face, upscaled to 160 px, on a textured background; face and
    background slide `step` px right per frame (Haar finds it; lossless FFV1)."""
    from edgefill.runtime.imaging.images import read_image

    w, h = size
    face = cv2.resize(read_image(REPO / "samples" / "faces" / "face0_celeba182655.png"), (160, 160),
                      interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    bg = cv2.resize(rng.integers(0, 256, (h // 16, w // 16 + 4, 3), dtype=np.uint8), (w + step * frames, h),
                    interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 12.0, (w, h))
    out = []
    for i in range(frames):
        img = np.ascontiguousarray(bg[:, step * (frames - i):step * (frames - i) + w])
        img[40:200, 60 + step * i:220 + step * i] = face
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        out.append(img)
    writer.release()
    return out


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("faceclip") / "face.mkv"
    return path, make_face_clip(path)


def _report(tmp_path, name, *args):
    """Run `edgefill video` with --json; (full report, output frames)."""
    out, rj = tmp_path / f"{name}.mkv", tmp_path / f"{name}.json"
    proc = video(*args, "--out", str(out), "--json", str(rj))
    assert proc.returncode == 0, proc.stderr
    return json.loads(rj.read_text()), read_frames(out)[0]


def test_no_previous_init_and_seed_change_where_each_search_starts(clip, tiny_bundle, tmp_path):
    """--no-previous: every frame starts afresh (never from the previous z); --seed: the same seed
    gives the same video, another seed another; --init: the start of a track. The default bundle
    (the tiny one's generator hardly depends on z, so its pixels could not tell); 4 frames, 3 steps (the
    best-of-K result of 1 step is its start, G(z0), so 1 step could not tell either).
    The tiny bundle has no encoder: --init encoder is a one-line error."""
    src, frames = clip
    common = [str(src), "--box", "16,8,64,64", "--steps", "3", "--smooth", "0", "--max-frames", "4"]
    chained, out_chained = _report(tmp_path, "chained", *common, "--init", "random")
    assert chained["starts"] == {"random": 1, "given": 3} and chained["settings"]["previous_z"]
    fresh, out_fresh = _report(tmp_path, "fresh", *common, "--init", "random", "--no-previous")
    assert fresh["starts"] == {"random": 4} and not fresh["settings"]["previous_z"]
    assert [f["start"] for f in fresh["per_frame"]] == ["random"] * 4
    assert np.array_equal(out_chained[0], out_fresh[0]) and not np.array_equal(out_chained[3], out_fresh[3])
    again, out_again = _report(tmp_path, "again", *common, "--init", "random", "--no-previous")
    assert all(np.array_equal(a, b) for a, b in zip(out_fresh, out_again))  # same seed: the same video
    other, out_other = _report(tmp_path, "other", *common, "--init", "random", "--no-previous", "--seed", "7")
    assert other["settings"]["seed"] == 7 and not np.array_equal(out_fresh[0], out_other[0])
    enc, out_enc = _report(tmp_path, "enc", *common, "--init", "encoder")
    auto, out_auto = _report(tmp_path, "auto", *common)
    assert [f["start"] for f in enc["per_frame"]] == ["encoder", "given", "given", "given"]
    assert [f["start"] for f in auto["per_frame"]] == ["encoder", "given", "given", "given"]  # auto: the encoder
    assert not np.array_equal(out_enc[0], out_chained[0])
    proc = video(*common, "--bundle", str(tiny_bundle), "--init", "encoder", "--out", str(tmp_path / "x.mkv"))
    assert_one_line_error(proc, "has no encoder; use --init random")
    assert not (tmp_path / "x.mkv").exists()


def test_refine_and_blend_change_the_fill(clip, tiny_bundle, tmp_path):
    src, frames = clip
    args = [str(src), "--box", "16,8,64,64", "--steps", "1", "--bundle", str(tiny_bundle), "--max-frames", "4"]
    on, out_on = _report(tmp_path, "on", *args, "--refine")
    off, out_off = _report(tmp_path, "off", *args, "--no-refine")
    assert on["settings"]["refine"] is True and off["settings"]["refine"] is False
    hole = np.zeros((80, 96), bool)
    hole[24:56, 32:64] = True
    for a, b, f in zip(out_on, out_off, frames):
        assert np.array_equal(a[~hole], f[~hole]) and np.array_equal(b[~hole], f[~hole])  # outside: the source
        assert not np.array_equal(a[hole], b[hole])  # inside: the refiner changed the fill
    pasted, out_pasted = _report(tmp_path, "pasted", *args, "--refine", "--blend", "paste")
    assert on["settings"]["blend"] == "poisson" and pasted["settings"]["blend"] == "paste"
    assert any(not np.array_equal(a[hole], b[hole]) for a, b in zip(out_on, out_pasted))  # Poisson changed it
    # video refines once by default; --flip-average averages the refiner with its mirror image
    flip, out_flip = _report(tmp_path, "flip", *args, "--refine", "--flip-average")
    assert on["settings"]["flip_average"] is False and flip["settings"]["flip_average"] is True
    assert any(not np.array_equal(a[hole], b[hole]) for a, b in zip(out_on, out_flip))
    assert all(np.array_equal(a[~hole], f[~hole]) for a, f in zip(out_flip, frames))


def test_fill_telea_refines_opencvs_fill_without_a_search(clip, tiny_bundle, tmp_path):
    """--fill telea: no search (no start, no steps), every frame's hole is OpenCV Telea's fill in
    the crop through the same refiner and smoothing; outside the hole the source; with
    --no-refine and no smoothing exactly Telea in the 64x64 crop (align.telea64), pasted back."""
    from edgefill.runtime.frontends.video import align
    from edgefill.runtime.imaging.preprocess import paste_back, prepare

    src, frames = clip
    args = [str(src), "--box", "16,8,64,64", "--steps", "1", "--bundle", str(tiny_bundle), "--max-frames", "4"]
    searched, out_searched = _report(tmp_path, "searched", *args)
    telea, out_telea = _report(tmp_path, "telea", *args, "--fill", "telea")
    assert searched["settings"]["fill"] == "search" and telea["settings"]["fill"] == "telea"
    assert telea["starts"] == {"telea": 4} and [f["start"] for f in telea["per_frame"]] == ["telea"] * 4
    assert telea["steps_run"]["max"] == 0 and telea["latency"]["search"]["count"] == 0
    assert telea["latency"]["fill"]["count"] == 4 and telea["latency"]["refine"]["count"] == 4
    hole = np.zeros((80, 96), bool)
    hole[24:56, 32:64] = True
    for a, b, f in zip(out_searched, out_telea, frames):
        assert np.array_equal(b[~hole], f[~hole]) and not np.array_equal(a[hole], b[hole])
    raw, out_raw = _report(tmp_path, "raw", *args, "--fill", "telea", "--no-refine", "--smooth", "0")
    for got, f in zip(out_raw, frames):
        prep = prepare(f, "center", (16, 8, 64, 64))
        assert np.array_equal(got, paste_back(prep, align.telea64(prep.image64, prep.mask64)))


def test_video_telea_fills_never_read_what_lies_under_the_hole(tiny_bundle):
    """cv2.inpaint's Telea reads the old values of hole pixels at the image's border (a half mask:
    13% of the hole's pixels change on hold-out faces). The video's Telea fills (--fill telea, the
    turned-face fallback, --evaluate's Telea reference) go through imaging.diffusion.opencv_inpaint
    like every other Telea fill, which blanks the hole first: they depend on the known pixels only."""
    import cv2

    from edgefill.runtime.frontends.video import align
    from edgefill.runtime.frontends.video.api import VideoInpainter
    from edgefill.runtime.frontends.video.report import Evaluator
    from edgefill.runtime.imaging import metrics
    from edgefill.runtime.imaging.preprocess import prepare

    rng = np.random.default_rng(0)
    box = (16, 8, 64, 64)
    frame = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
    hole = prepare(frame, "half", box).mask >= 128  # the crop's half mask reaches the crop's border
    other = frame.copy()
    other[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
    crops = [prepare(f, "half", box) for f in (frame, other)]
    raw = [cv2.inpaint(c.image64, (c.mask64 >= 128).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA) for c in crops]
    assert not np.array_equal(*raw)  # the trap: OpenCV alone reads them
    assert np.array_equal(*[align.telea64(c.image64, c.mask64) for c in crops])
    outs = [VideoInpainter(96, 80, "half", box=box, fill="telea", refine=False, smooth=0.0,
                           bundle=tiny_bundle).process(f)[0] for f in (frame, other)]
    assert np.array_equal(*outs)
    bottom = np.zeros((80, 96), np.uint8)
    bottom[40:] = 255  # a full-frame hole along the frame's edge
    below = frame.copy()
    below[40:] = rng.integers(0, 256, below[40:].shape, dtype=np.uint8)
    fill = align.telea64(frame, bottom)  # from the known pixels alone: the same for `below`
    for truth in (frame, below):  # --evaluate: the source is the truth, so its hole holds the answer
        ev = Evaluator()
        ev.add(truth, truth, {"face": True, "mask": bottom, "index": 0, "box": (0, 0, 96, 80)})
        assert ev.rows[0]["telea_hole_psnr"] == float(metrics.hole_psnr(fill, truth, bottom))


def test_detect_every_and_no_follow_on_a_moving_face(face_clip, tiny_bundle, tmp_path):
    """--detect-every N runs the detector on frames 0, N, 2N, ...; between detections the box
    follows the face's motion, or with --no-follow holds still."""
    src, frames = face_clip
    args = [str(src), "--face", "auto", "--steps", "1", "--bundle", str(tiny_bundle)]
    every4, _ = _report(tmp_path, "every4", *args, "--detect-every", "4")
    every3, _ = _report(tmp_path, "every3", *args)
    assert every4["frames_without_face"] == 0 and every3["frames_without_face"] == 0
    assert every4["detections"] == 3 and every3["detections"] == 4  # 12 frames: 0,4,8 and 0,3,6,9
    assert every4["settings"]["detect_every"] == 4
    follow, _ = _report(tmp_path, "follow", *args, "--detect-every", "6")
    held, _ = _report(tmp_path, "held", *args, "--detect-every", "6", "--no-follow")
    xs = [f["box"][0] for f in follow["per_frame"]]
    xh = [f["box"][0] for f in held["per_frame"]]
    assert len(set(xh[:6])) == 1 and len(set(xh[6:])) == 1  # held between detections
    assert xs[5] - xs[0] == pytest.approx(10, abs=3)  # followed the face: 2 px a frame
    assert held["settings"]["follow"] is False and follow["settings"]["follow"] is True


@pytest.mark.parametrize("args, fragment", [
    (["--detect-every", "0"], "--detect-every"),
    (["--smooth", "1"], "--smooth"),
    (["--box-smoothing", "0"], "--box-smoothing"),
    (["--init", "sideways"], "--init"),
    (["--steps", "0"], "--steps"),
    (["--frame-budget-ms", "0"], "--frame-budget-ms"),
    (["--blend", "average"], "--blend"),
    (["--max-faces", "0"], "--max-faces"),
    (["--detector", "yunet"], "--detector"),
    (["--fill", "diffusion"], "--fill"),
])
def test_bad_flag_values_are_one_line(clip, tiny_bundle, tmp_path, args, fragment):
    src, _ = clip
    proc = video(str(src), "--out", str(tmp_path / "o.mkv"), "--bundle", str(tiny_bundle), *args)
    assert_one_line_error(proc, fragment)
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_keeps_the_frames_done_and_says_so(tmp_path, tiny_bundle):
    full = tmp_path / "full.mkv"
    make_clip(full, frames=40)
    cut = tmp_path / "cut.mkv"
    data = full.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    out = tmp_path / "out.mkv"
    proc = video(str(cut), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle), "--steps", "1")
    assert_one_line_error(proc, "truncated or damaged")
    partial = tmp_path / "out.partial.mkv"
    assert not out.exists() and partial.is_file() and str(partial) in proc.stderr
    decoded, _ = len(read_frames(cut)[0]), None
    got, _, size = read_frames(partial)
    assert 0 < len(got) == decoded < 40 and size == (96, 80) and f"({decoded} frames)" in proc.stderr
    assert not list(tmp_path.glob(".out.*"))


def test_frame_size_change_mid_stream_keeps_the_frames_done_and_says_so(tmp_path, tiny_bundle):
    frames = make_clip(tmp_path / "unused.mkv", frames=6)
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, f in enumerate(frames):
        img = f if i < 4 else cv2.resize(f, (70, 60))
        cv2.imwrite(str(seq / f"f{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mkv"
    proc = video(str(seq / "f%04d.png"), "--out", str(out), "--box", "16,8,64,64", "--bundle", str(tiny_bundle),
                 "--steps", "1")
    assert_one_line_error(proc, "frame 4 of")
    assert "70x60" in proc.stderr and "96x80" in proc.stderr and "(4 frames)" in proc.stderr
    got, _, size = read_frames(tmp_path / "out.partial.mkv")
    assert len(got) == 4 and size == (96, 80) and not out.exists()


def test_read_only_output_folder_is_one_line_and_writes_nothing(clip, tiny_bundle, tmp_path):
    """A folder that cannot be written: one error line, nothing under the final name, no temp
    file. Root writes through a folder's permissions, so as root the folder is made read-only
    for real: a read-only bind mount of it in a private mount namespace (unshare -m), skipped
    where the machine allows neither."""
    import os
    import shutil

    src, _ = clip
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    out = ro / "out.mkv"
    cmd = [sys.executable, "-m", "edgefill.runtime", "video", str(src), "--out", str(out), "--box", "16,8,64,64",
           "--bundle", str(tiny_bundle), "--steps", "1", "--no-progress"]
    try:
        if os.geteuid() == 0:
            if shutil.which("unshare") is None:
                pytest.skip("running as root without unshare: no way to make a folder read-only for root")
            cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
                   str(ro), *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if os.geteuid() == 0 and not proc.stderr.startswith("edgefill:"):
            pytest.skip(f"no read-only bind mount here (root): {proc.stderr.strip()[:200]}")
        assert_one_line_error(proc, "not writable")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_face_auto_uses_the_bundles_detector_for_an_eye_aligned_crop(face_clip, tiny_bundle, tmp_path):
    """The default bundle ships BlazeFace: --face auto finds the landmarks, crops eye-aligned, and
    changes only the hole and a feathered band around it; --detector haar is the fallback (a
    bundle without a detector gets it, and asking it for blazeface is a one-line error)."""
    src, frames = face_clip
    args = [str(src), "--face", "auto", "--steps", "1", "--max-frames", "6"]
    aligned, out = _report(tmp_path, "aligned", *args)
    if aligned["settings"]["detector"] != "blazeface":
        pytest.skip("the default bundle has no detector")
    assert aligned["frames_without_face"] == 0 and aligned["settings"]["refine"] is True  # the refiner: on
    full = json.loads((tmp_path / "aligned.json").read_text())
    haar, _ = _report(tmp_path, "haar", *args, "--detector", "haar")
    assert haar["settings"]["detector"] == "haar" and haar["frames_without_face"] == 0
    for f, (a, b) in enumerate(zip(out, frames[:6])):
        x, y, w, h = full["per_frame"][f]["box"]
        changed = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0
        assert changed.any()
        ys, xs = np.nonzero(changed)
        assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h  # only inside the crop
        assert changed.sum() < 0.5 * w * h  # the hole (a quarter of the crop) and its feathered edge
    proc = video(str(src), "--face", "auto", "--bundle", str(tiny_bundle), "--detector", "blazeface", "--out",
                 str(tmp_path / "x.mkv"))
    assert_one_line_error(proc, "has no detector graph")


def make_two_face_clip(path: Path, frames: int = 6) -> list[np.ndarray]:
    """Two committed CelebA test faces (140 px) side by side on a texture, drifting apart 2 px a
    frame (lossless FFV1)."""
    from edgefill.runtime.imaging.images import read_image

    faces = [cv2.resize(read_image(REPO / "samples" / "faces" / name), (140, 140), interpolation=cv2.INTER_CUBIC)
             for name in ("face0_celeba182655.png", "face1_celeba185239.png")]
    rng = np.random.default_rng(1)
    bg = cv2.resize(rng.integers(0, 256, (15, 25, 3), dtype=np.uint8), (400, 240), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 12.0, (400, 240))
    out = []
    for i in range(frames):
        img = bg.copy()
        img[50:190, 40 - 2 * i:180 - 2 * i] = faces[0]
        img[50:190, 220 + 2 * i:360 + 2 * i] = faces[1]
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        out.append(img)
    writer.release()
    return out


def test_max_faces_inpaints_every_face_in_one_batched_call(tmp_path, tiny_bundle):
    """--max-faces 2 on a clip with two faces: both are tracked (two track ids, both holes filled),
    each from its own start; --max-faces 1 fills one face only; without the bundle's detector,
    --max-faces 2 is a one-line error."""
    src = tmp_path / "two_faces_source.mkv"
    frames = make_two_face_clip(src)
    two, out2 = _report(tmp_path, "two", str(src), "--face", "auto", "--max-faces", "2", "--steps", "1")
    if two["settings"]["detector"] != "blazeface":
        pytest.skip("the default bundle has no detector")
    assert [f["faces"] for f in two["per_frame"]] == [2] * len(frames)
    assert two["starts"] == {"encoder": 2, "given": 2 * (len(frames) - 1)}  # each face its own track and z
    one, out1 = _report(tmp_path, "one", str(src), "--face", "auto", "--steps", "1")
    assert [f["faces"] for f in one["per_frame"]] == [1] * len(frames)
    for a2, a1, f in zip(out2, out1, frames):
        left = np.abs(a2[:, :200].astype(int) - f[:, :200]).max(axis=2) > 0
        right = np.abs(a2[:, 200:].astype(int) - f[:, 200:]).max(axis=2) > 0
        assert left.sum() > 500 and right.sum() > 500  # both faces changed
        changed1 = np.abs(a1.astype(int) - f).max(axis=2) > 0
        assert min(changed1[:, :200].sum(), changed1[:, 200:].sum()) == 0  # one face only
    telea, out_telea = _report(tmp_path, "two_telea", str(src), "--face", "auto", "--max-faces", "2", "--fill",
                               "telea")
    assert telea["starts"] == {"telea": 2 * len(frames)} and telea["steps_run"]["max"] == 0
    for a2, f in zip(out_telea, frames):
        changed = np.abs(a2.astype(int) - f).max(axis=2) > 0
        assert changed[:, :200].sum() > 500 and changed[:, 200:].sum() > 500  # both faces, in one batch
    proc = video(str(src), "--face", "auto", "--max-faces", "2", "--bundle", str(tiny_bundle), "--out",
                 str(tmp_path / "x.mkv"))
    assert_one_line_error(proc, "--max-faces above 1 needs")


def test_real_two_face_clip_gets_both_faces(real_clips, tmp_path):
    """The two-face clip bench_video.py --two-faces composes from single_face.mp4: --max-faces 2
    tracks and fills both faces on every frame."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_video import compose_two_faces

    src = compose_two_faces(str(real_clips / "single_face.mp4"), str(tmp_path / "two_faces_source.mkv"), max_frames=8)
    rep, _ = _report(tmp_path, "out", src, "--face", "auto", "--max-faces", "2", "--steps", "1")
    if rep["settings"]["detector"] != "blazeface":
        pytest.skip("the default bundle has no detector")
    assert [f["faces"] for f in rep["per_frame"]] == [2] * 8 and rep["frames_out"] == 8


def test_real_clip_whose_header_overstates_its_frames_is_not_truncated(real_clips, tmp_path):
    """no_face.mp4's header announces 98 frames and 95 decode: within the truncation tolerance
    (sources.TRUNCATED_SHORT_BY), so the run ends normally with all 95."""
    out = tmp_path / "out.mkv"
    proc = video(str(real_clips / "no_face.mp4"), "--out", str(out), "--box", "300,100,300,300", "--steps", "1",
                 "--no-refine", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames_out"] == 95 and out.is_file()


def test_the_aligned_crop_never_reads_what_lies_under_the_hole(face_clip):
    """The eye-aligned crop is sampled bilinearly at 4x and area-downscaled, so a known crop pixel
    at the hole's edge used to mix in frame pixels of the hole: with noise under the hole the
    output changed by 6-8 levels on average inside it, and --evaluate's hole PSNR read some of the
    truth. align.warp_in(frame, m, hole) replaces those pixels by known ones first: the same face
    region and other values under the hole give the same frame out, bit for bit, one face or two."""
    from edgefill.runtime.frontends.video.api import VideoInpainter

    src, frames = face_clip
    h, w = frames[0].shape[:2]
    rng = np.random.default_rng(0)
    for max_faces in (1, 2):
        vi = VideoInpainter(w, h, "center", face="auto", steps=1, previous=False, smooth=0.0, max_faces=max_faces)
        if vi.detector != "blazeface":
            pytest.skip("the default bundle has no detector")
        region = vi.locate(frames[0], 0)
        out, info = vi.process(frames[0], 0, region=region)
        hole = info["mask"] >= 128
        assert info["face"] and hole.any()
        other = frames[0].copy()
        other[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
        fresh = VideoInpainter(w, h, "center", face="auto", steps=1, previous=False, smooth=0.0, max_faces=max_faces)
        out2, _ = fresh.process(other, 0, region=region)
        assert np.array_equal(out[hole], out2[hole]), max_faces


def test_a_face_forced_to_fall_back_gets_telea_in_its_crop_and_is_counted(face_clip, tmp_path):
    """--fallback-yaw 0 makes every (never exactly frontal) face "turned": OpenCV Telea of its hole
    in the aligned crop, pasted back the usual way, no search, its z left as it was; the report
    counts it (faces_fallback, per-frame rows). --no-fallback: the GAN fill, nothing counted."""
    from edgefill.runtime.frontends.video import align
    from edgefill.runtime.frontends.video.api import VideoInpainter
    from edgefill.runtime.imaging.masks import make_mask

    src, frames = face_clip
    report, _ = _report(tmp_path, "fb", str(src), "--steps", "1", "--max-frames", "3", "--fallback-yaw", "0")
    if report["settings"]["detector"] != "blazeface":
        pytest.skip("the default bundle has no detector")
    assert report["faces_fallback"] == {"turned": 3, "outside": 0} and report["steps_run"]["mean"] is None
    assert report["settings"]["fallback_yaw"] == 0 and report["latency"]["fallback"]["count"] == 3
    assert all(r["fallback"] == ["turned"] and abs(r["yaw"][0]) > 0 for r in report["per_frame"])
    off, _ = _report(tmp_path, "nofb", str(src), "--steps", "1", "--max-frames", "2", "--no-fallback")
    assert off["faces_fallback"] == {"turned": 0, "outside": 0} and off["steps_run"]["mean"] == 1
    assert off["settings"]["fallback_yaw"] is None and off["per_frame"][0]["fallback"] == [None]

    h, w = frames[0].shape[:2]
    vi = VideoInpainter(w, h, "center", face="auto", steps=1)
    vi.process(frames[0], 0)  # a GAN frame: the track's z
    z = vi.temporal.z
    assert z is not None
    vi.settings = vi.settings.replace(fallback_yaw=0.0)
    region = vi.locate(frames[1], 1)
    out, info = vi.process(frames[1], 1, region=region)
    assert info["fallback"] == ["turned"] and info["steps_run"] == 0 and vi.temporal.z is z  # z kept
    m = region.transform
    mask64 = make_mask("center", np.random.default_rng(0), 64)
    hole = align.hole_in_frame(mask64, m, w, h)
    expected = align.paste_aligned(frames[1], align.telea64(align.warp_in(frames[1], m, hole), mask64), hole, m)
    assert np.array_equal(out, expected)
    assert (out != frames[1]).any(axis=2)[hole >= 128].mean() > 0.5  # the hole was filled
