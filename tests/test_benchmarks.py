"""The on-demand benchmarks still run (tiny settings, tiny bundles): a refactor must not rot them.
Their numbers are not asserted; only that they run and write their JSON."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


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
                     "--images", "4", "--seeds", "1,2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
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
