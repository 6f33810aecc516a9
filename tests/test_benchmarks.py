"""The on-demand benchmarks still run (tiny settings, tiny bundles): a refactor must not rot them.
Their numbers are not asserted; only that they run and write their JSON."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def load_bench(name: str):
    """benchmarks/NAME.py imported as a module (benchmarks/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=300)


def test_bench_search_runs(tiny_bundle, tmp_path):
    out = tmp_path / "b.json"
    proc = run_bench("bench_search.py", "--bundle", str(tiny_bundle), "--batch-sizes", "1", "--steps", "3",
                     "--repeats", "1", "--step-runs", "1", "--step-steps", "3", "--inpaint-steps", "2",
                     "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["results"]
    assert {r["benchmark"] for r in rows} == {"search_step", "search", "inpaint"}


def test_bench_start_needs_an_encoder(tiny_bundle):
    proc = run_bench("bench_start.py", "--bundle", str(tiny_bundle), "--faces", "1", "--rounds", "1")
    assert proc.returncode == 2 and "has no encoder" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_refine_runs(tiny_bundle, tmp_path):
    out = tmp_path / "r.json"
    proc = run_bench("bench_refine.py", "--bundle", str(tiny_bundle), "--rounds", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert set(report["median_s"]) == {"flip", "one", "samples5"} and report["ratios"]["flip_over_one"] > 0
    proc = run_bench("bench_refine.py", "--bundle", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_serve_runs(tiny_bundle, tmp_path):
    """Every part of the serving benchmark, at tiny sizes (a few seconds each)."""
    import pytest

    pytest.importorskip("tritonclient.http", reason="the serve extra (tritonclient) is not installed")
    out = tmp_path / "s.json"
    proc = run_bench("bench_serve.py", "--bundle", str(tiny_bundle), "--requests", "6", "--isolation", "20",
                     "--stall-requests", "5",
                     "--overload-requests", "16", "--soak-seconds", "3", "--soak-checked", "3", "--max-queue", "16", "--steps", "3",
                     "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"overhead", "scaling", "stalls", "isolation", "overload", "admission", "soak", "faults", "goals"} <= set(report)
    assert report["stalls"]["grpc"]["n"] == 5 and "queue_duration" in report["stalls"]["http"]["triton_ms_per_request"]
    assert report["isolation"]["5xx"] == 0 and report["faults"]["client_hangups"]["next_request_status"] == 200


def test_swd_compare_runs_on_a_bundle_and_a_run(tiny_bundle, tiny_gan_checkpoint, sample_faces, tmp_path):
    import numpy as np

    data = tmp_path / "faces.npz"
    np.savez(data, images=sample_faces)
    out = tmp_path / "swd.json"
    latest = f"{tiny_gan_checkpoint}@latest"
    proc = run_bench("swd_compare.py", str(tiny_bundle), str(tiny_gan_checkpoint), latest, "--data", str(data),
                     "--images", "4", "--seeds", "1,2", "--json", str(out), "--grid", str(tmp_path / "g.png"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    # 48 samples per source, 12 a row at 2x: one 4-row block per source, stacked 12 px apart
    from edgefill.runtime.imaging.images import read_image

    assert read_image(tmp_path / "g.png").shape == (3 * (4 * 130 + 2) + 2 * 12, 12 * 130 + 2, 3)
    assert set(report["sources"]) == {str(tiny_bundle), str(tiny_gan_checkpoint), latest}
    assert all(len(r["per_seed"]) == 2 and r["mean"]["swd"] > 0 for r in report["sources"].values())
    assert report["floor"]["swd"] > 0
    # more images than two disjoint sets can hold: one clear line, exit 2
    proc = run_bench("swd_compare.py", str(tiny_bundle), "--data", str(data), "--images", "5")
    assert proc.returncode == 2 and "--images" in proc.stderr and "Traceback" not in proc.stderr


def test_lighting_runs_through_evaluate(tiny_bundle, sample_faces, tmp_path):
    """benchmarks/lighting.py: every bundle x shift through evaluate(); a bundle against itself
    changes nothing; an unknown shift is one clear line."""
    import numpy as np

    faces_npz = tmp_path / "faces.npz"
    np.savez(faces_npz, images=sample_faces[:4])
    out = tmp_path / "l.json"
    proc = run_bench("lighting.py", str(tiny_bundle), str(tiny_bundle), "--data", str(faces_npz), "--limit", "4",
                     "--shifts", "none,flat", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 4 and {r["shift"] for r in rows} == {"none", "flat"}
    assert all(r["n"] == 4 and r["vs_first_db"] == 0 for r in rows)
    assert rows[0]["hole_psnr"] != rows[1]["hole_psnr"]  # the shift changed the faces
    proc = run_bench("lighting.py", str(tiny_bundle), "--data", str(faces_npz), "--shifts", "sunset")
    assert proc.returncode == 2 and "unknown shift" in proc.stderr and "Traceback" not in proc.stderr


def test_samples_bound_runs_and_its_bound_is_the_formula(tiny_bundle, sample_faces, tmp_path):
    """benchmarks/samples_bound.py: the bound is docs/samples.md's formula; the shipped and oracle
    placements are reported (numbers not asserted); a missing bundle is one clear line."""
    import math

    import numpy as np

    bound_drop = load_bench("samples_bound").bound_drop
    v = 10 ** ((22.83 - 25.0 - 0.6 * 10 * math.log10(8 / 3)) / 10)
    assert bound_drop(22.83, 25.0) == 0.8 * 10 * math.log10(1 + v)
    assert 1.0 < bound_drop(22.83, 25.0) < 1.02 and bound_drop(22.0, 25.0) < bound_drop(23.0, 25.0)
    faces_npz = tmp_path / "faces.npz"
    np.savez(faces_npz, images=sample_faces[:6])
    out = tmp_path / "b.json"
    proc = run_bench("samples_bound.py", str(tiny_bundle), "--data", str(faces_npz), "--limit", "6",
                     "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["faces"] == 6 and report["bound_mean_of_5"] < 0
    for name in ("shipped", "oracle"):  # the tiny bundle's samples barely differ: 25 dB is out of reach
        assert set(report[name]) == {"scale", "pairwise", "mean_of_5", "best_of_5", "reached"}
        assert report[name]["best_of_5"] >= report[name]["mean_of_5"] and isinstance(report[name]["reached"], bool)
    proc = run_bench("samples_bound.py", str(tmp_path / "nope"), "--data", str(faces_npz))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_samples_bound_directions_sampler(tiny_bundle, sample_faces, tmp_path):
    """samples_bound --directions-from: the two error directions are orthonormal; the directional
    samples are the single output outside the hole and +- size along each direction inside it;
    the report gets a `directions` row; a hole that differs per face is one clear line."""
    import numpy as np

    bench = load_bench("samples_bound")
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.frontends.evaluate import mask_batch

    faces = sample_faces[:6]
    masks = mask_batch("center", np.arange(6), 0)
    d = bench.error_directions(Pipeline(str(tiny_bundle), provider="cpu"), faces, masks)
    assert d.shape == (2, int((masks[0] >= 128).sum()) * 3) and np.allclose(d @ d.T, np.eye(2), atol=1e-9)
    single = np.full_like(faces, 128)
    placed = bench.directional(single, masks, d, np.array([3.0] * 6))
    hole = masks[0] >= 128
    assert placed.shape == (6, 5, 64, 64, 3) and (placed[:, 0] == single).all() and (placed[:, :, ~hole] == 128).all()
    diff = placed[:, 1:, hole].astype(np.float64) - 128  # (6, 4, hole pixels, 3)
    assert np.allclose(np.sqrt((diff ** 2).mean(axis=(2, 3))), 3.0, atol=0.05)  # RMS size, rounding aside
    assert np.abs(diff[:, 0] + diff[:, 1]).max() <= 1 and np.abs(diff[:, 2] + diff[:, 3]).max() <= 1  # +- pairs
    faces_npz, out = tmp_path / "faces.npz", tmp_path / "b.json"
    np.savez(faces_npz, images=faces)
    proc = run_bench("samples_bound.py", str(tiny_bundle), "--data", str(faces_npz), "--limit", "6",
                     "--directions-from", str(faces_npz), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(out.read_text())["directions"]
    assert row["best_of_5"] >= row["mean_of_5"] and row["fitted_on"]["faces"] == 6
    proc = run_bench("samples_bound.py", str(tiny_bundle), "--data", str(faces_npz), "--mask", "random",
                     "--directions-from", str(faces_npz))
    assert proc.returncode == 2 and "one hole shape" in proc.stderr and proc.stderr.count("\n") == 1


def test_video_people_runs_through_the_video_front_end(tiny_bundle, sample_faces, tmp_path):
    """benchmarks/video_people.py: a clip per person written and read back through real OpenCV IO,
    every bundle through run_video with --evaluate; a bundle against itself changes nothing; the
    strip is written; bad input is one clear line."""
    import numpy as np

    faces_npz = tmp_path / "faces.npz"
    np.savez(faces_npz, images=sample_faces[:2])
    out, strip = tmp_path / "v.json", tmp_path / "v.png"
    proc = run_bench("video_people.py", f"a={tiny_bundle}", f"b={tiny_bundle}", f"t=telea:{tiny_bundle}", "--data",
                     str(faces_npz), "--people", "2", "--frames", "4", "--json", str(out), "--strip", str(strip))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = report["results"]
    assert len(rows) == 6 and {r["bundle"] for r in rows} == {"a", "b", "t"} and len(set(report["people"])) == 2
    assert report["fills"] == {"a": "search", "b": "search", "t": "telea"}
    assert all(r["evaluated_frames"] + r["frames_without_face"] == 4 for r in rows)
    change = report["summary"]["b"]["vs_first_db"]
    assert change["people"] == 2 and change["mean"] == 0 and change["worst"] == 0 and change["ci"] == [0, 0]
    assert report["summary"]["t"]["vs_first_db"]["mean"] != 0  # Telea's fill instead of the search
    assert strip.stat().st_size > 0
    proc = run_bench("video_people.py", str(tmp_path / "nope"), "--data", str(faces_npz))
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_bench("video_people.py", str(tiny_bundle), "--data", str(faces_npz), "--people", "3")
    assert proc.returncode == 2 and "has 2 faces" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_bench("video_people.py", str(tiny_bundle), "--data", str(faces_npz), "--strip", str(tmp_path / "s.txt"))
    assert proc.returncode == 2 and "--strip" in proc.stderr and "Traceback" not in proc.stderr
    not_a_bundle = tmp_path / "empty"
    not_a_bundle.mkdir()
    proc = run_bench("video_people.py", str(not_a_bundle), "--data", str(faces_npz), "--people", "1", "--frames", "2")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_compose_person_clip_is_a_real_video(sample_faces, tmp_path):
    """The composed clip decodes through OpenCV to the frames asked for, the face where its box says."""
    import cv2
    import numpy as np

    vp = load_bench("video_people")
    clip = str(tmp_path / "p.mkv")
    boxes = vp.compose_person_clip(sample_faces[0], clip, 5, seed=3)
    cap = cv2.VideoCapture(clip)
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == len(boxes) == 5 and frames[0].shape == (360, 640, 3)
    x, y, side = boxes[0]
    assert 150 <= side <= 210 and 0 <= x and x + side <= 640 and 0 <= y and y + side <= 360
    face = cv2.resize(frames[0][y:y + side, x:x + side], (64, 64), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.abs(face.astype(float) - sample_faces[0]).mean() < 20  # the face, within the lighting change
