"""`edgefill profile`: every field present, percentiles ordered, stable JSON keys, unloadable
providers skipped (not fatal), FLOP counts equal to torch's own counter. No timing assertions:
numbers are measured, never asserted (benchmarks/ reports ratios)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgefill.runtime.frontends.profile import flops as F
from edgefill.runtime.frontends.profile import config as PC
from edgefill.runtime.frontends.profile.inputs import make_inputs
from edgefill.runtime.frontends.profile.stats import latency_stats

TOP_KEYS = {"backend", "batch_size", "stages", "throughput_images_per_s", "speedup_vs_torch_eager",
            "speedup_vs_torch_eager_by_stage", "runs", "samples", "skipped", "flops", "environment", "settings"}
ORDER = ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


def check_stats(st: dict, where: str) -> None:
    assert list(st) == list(PC.STAT_KEYS), where
    assert st["count"] >= 1, where
    vals = [st[k] for k in ORDER]
    assert all(a <= b for a, b in zip(vals, vals[1:])), (where, st)
    assert st["min_ms"] <= st["mean_ms"] <= st["max_ms"] and st["std_ms"] >= 0, (where, st)


def test_latency_stats():
    st = latency_stats([0.001 * i for i in range(1, 101)])
    check_stats(st, "synthetic")
    assert st["count"] == 100 and st["min_ms"] == pytest.approx(1.0) and st["max_ms"] == pytest.approx(100.0)
    assert st["p50_ms"] == pytest.approx(50.5) and st["p99_ms"] == pytest.approx(99.01)
    assert latency_stats([])["count"] == 0


@pytest.mark.parametrize("preset_name", ["tiny", "base", "paper"])
def test_flops_match_torch_flop_counter(preset_name):
    """Forward G, D, R (the preset's U-Net with the hole channel, and the first autoencoder) and
    one search step (forward + input-gradient backward) against torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgefill.train.config import RefinerConfig, preset, to_dict
    from edgefill.train.discriminator import Discriminator
    from edgefill.train.generator import Generator
    from edgefill.train.refiner import build_refiner

    g, d, r = preset(preset_name)
    old = RefinerConfig(width=r.width)
    ours = F.model_flops({"generator": to_dict(g), "discriminator": to_dict(d), "refiner": to_dict(r)})
    ours_old = F.model_flops({"generator": to_dict(g), "discriminator": to_dict(d), "refiner": to_dict(old)})
    G, D, R, R_old = (Generator(g).eval(), Discriminator(d).eval(), build_refiner(r).eval(),
                      build_refiner(old).eval())
    for p in [*G.parameters(), *D.parameters()]:
        p.requires_grad_(False)
    x = torch.zeros(1, 3, 64, 64)
    for counts, name, fn in ((ours, "generator", lambda: G(torch.zeros(1, g.z_dim))),
                             (ours, "discriminator", lambda: D(x)),
                             (ours, "refiner", lambda: R(torch.zeros(1, 4, 64, 64))),
                             (ours_old, "refiner", lambda: R_old(x))):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fn()
        assert counts[name] == fc.get_total_flops(), name
    z = torch.zeros(1, g.z_dim, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        out = G(z)
        loss = ((D(out) - 1) ** 2).sum() + out.abs().sum()
        loss.backward()
    assert ours["search_step"] == fc.get_total_flops()


def test_profile_cli_every_field(tiny_bundle, tmp_path):
    out = {k: tmp_path / f"p.{k}" for k in ("json", "csv", "png")}
    trace = tmp_path / "trace.json"
    proc = run_cli("profile", "--bundle", str(tiny_bundle), "--batch-sizes", "1,2", "--steps", "3", "--iterations",
                   "2", "--warmup", "1", "--provider", "cuda,cpu", "--compare-torch", "--json", str(out["json"]),
                   "--csv", str(out["csv"]), "--plot", str(out["png"]), "--ort-trace", str(trace), "--no-progress",
                   env={"OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out["json"].read_text())
    assert set(rep) == TOP_KEYS | {"ort_trace"}
    assert rep["backend"] == "onnx-cpu" or rep["backend"] == "onnx-cuda"
    assert set(rep["stages"]) == set(PC.STAGES) | set(PC.EXTRA_STAGES)
    names = [r["backend"] for r in rep["runs"]]
    assert "torch-eager" in names and "onnx-cpu" in names
    # cuda either ran (a GPU machine) or is reported as skipped with a reason
    assert "onnx-cuda" in names or any(s["name"] == "onnx-cuda" and s["reason"] for s in rep["skipped"])
    for r in rep["runs"]:
        assert r["batch_size"] in (1, 2) and r["rows"] == r["batch_size"] * rep["settings"]["restarts"]
        for stage, st in r["stages"].items():
            check_stats(st, f"{r['backend']} b{r['batch_size']} {stage}")
        assert r["stages"]["search_step"]["count"] == 2 * 2  # iterations x (steps - 1)
        assert r["throughput_images_per_s"] > 0 and r["achieved_gflops"] > 0 and r["threads"] >= 1
    assert set(rep["throughput_images_per_s"]) == {"1", "2"}
    assert set(rep["speedup_vs_torch_eager"]) == {"1", "2"}
    assert all(v > 0 for v in rep["speedup_vs_torch_eager"].values())
    assert set(rep["speedup_vs_torch_eager_by_stage"]["1"]) == {"search_step", "search", "total"}
    fl = rep["flops"]
    assert fl["search_step_flops_per_row"] == fl["per_image"]["search_step"] > 0
    assert fl["peak_gflops"] > 0 and "matmul" in fl["peak_method"]
    assert fl["peak_gflops"] == max(fl["peak_measurements_gflops"]) and len(fl["peak_measurements_gflops"]) == 2
    assert fl["nominal_peak_gflops"] is None or fl["nominal_peak_gflops"] > 0
    env = rep["environment"]
    for key in ("onnxruntime", "numpy", "opencv", "torch", "python", "cpu", "memory", "gpu", "backends"):
        assert key in env, key
    assert env["memory"]["peak_rss_mb"] > 0 and env["cpu"]["physical_cores"] >= 1
    assert rep["settings"]["steps"] == 3 and rep["settings"]["batch_sizes"] == [1, 2]
    assert rep["samples"] is None and rep["settings"]["samples"] == 1  # --samples K > 1 only
    rows = list(csv.DictReader(out["csv"].open()))
    assert len(rows) == len(rep["runs"]) * len(rep["stages"])
    from edgefill.runtime.imaging.images import read_image

    assert read_image(out["png"]).shape[0] > 300
    events = json.loads(trace.read_text())
    assert any(e.get("cat") == "Node" for e in events)
    assert rep["ort_trace"]["top_ops"] and rep["ort_trace"]["top_ops"][0]["total_ms"] > 0
    assert "search_step" in proc.stdout and "speedup vs torch eager" in proc.stdout


def test_profile_only_unloadable_provider_is_one_line(tiny_bundle):
    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.core.engine import Engine
    from edgefill.runtime.errors import EdgefillError

    try:
        Engine(open_bundle(tiny_bundle), provider="cuda")
        pytest.skip("CUDA loads here")
    except EdgefillError:
        pass
    proc = run_cli("profile", "--bundle", str(tiny_bundle), "--provider", "cuda", "--batch-sizes", "1", "--steps",
                   "2", "--iterations", "1", "--no-progress")
    assert_one_line_error(proc, "no onnxruntime provider could be loaded")


@pytest.mark.parametrize("args,fragment", [
    (["--batch-sizes", "1,x"], "batch-sizes"),
    (["--batch-sizes", "0"], "batch-sizes"),
    (["--steps", "1"], "steps"),
    (["--init", "nope"], "--init"),
    (["--provider", "npu"], "unknown provider"),
    (["--plot", "plot.txt"], "--plot must end"),
    (["--samples", "0"], "--samples"),
    (["--samples", "17"], "--samples must be 1..16"),
])
def test_profile_bad_input(tiny_bundle, args, fragment):
    proc = run_cli("profile", "--bundle", str(tiny_bundle), "--iterations", "1", "--no-progress", *args)
    assert_one_line_error(proc, fragment)


def test_profile_samples_times_k_samples_against_one(tiny_bundle, tmp_path):
    """--samples 3: the whole inpaint of one 64x64 problem with 3 samples and with 1, both timed
    in the same run, their p50 ratio in the JSON report and the text table."""
    path = tmp_path / "p.json"
    proc = run_cli("profile", "--bundle", str(tiny_bundle), "--batch-sizes", "1", "--steps", "2", "--restarts", "2",
                   "--iterations", "3", "--warmup", "1", "--provider", "cpu", "--no-peak", "--samples", "3",
                   "--json", str(path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(path.read_text())
    sam = rep["samples"]
    assert (sam["backend"], sam["samples"], sam["rows"]) == ("onnx-cpu", 3, 6) and rep["settings"]["samples"] == 3
    for key in ("single", "k_samples"):
        check_stats(sam[key], key)
        assert sam[key]["count"] == 3
    assert sam["ratio_p50"] == pytest.approx(sam["k_samples"]["p50_ms"] / sam["single"]["p50_ms"])
    assert sam["ratio_p50_per_sample"] == pytest.approx(sam["ratio_p50"] / 3)
    assert f"3 samples / 1 (p50): {sam['ratio_p50']:.2f}x" in proc.stdout


@pytest.mark.parametrize("init", ["auto", "random"])
def test_profile_times_what_inpaint_runs_by_default(tmp_path, init):
    """Without --steps/--restarts the profile runs the shipped bundle as `edgefill inpaint` does:
    from its encoder ("auto"), with the bundle's steps, restarts and blend for that start, and the
    start (the encoder's forward pass) timed as a stage of its own; --init random takes the
    random start's settings instead."""
    from edgefill.runtime.core.bundle import open_bundle

    bundle = open_bundle()
    start = "encoder" if init == "auto" else "random"
    want = bundle.search_defaults_for(start)
    path = tmp_path / "p.json"
    proc = run_cli("profile", "--init", init, "--batch-sizes", "1", "--iterations", "1", "--warmup", "0",
                   "--provider", "cpu", "--no-peak", "--json", str(path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(path.read_text())
    ran = rep["settings"]
    assert (ran["start"], ran["init"]) == (start, init)
    assert (ran["steps"], ran["restarts"], ran["blend"]) == (want.steps, want.restarts, want.blend)
    assert ran["search"] == want.replace(patience=0).to_dict()
    assert ran["refine"] == bundle.refine_defaults.to_dict()
    assert proc.stdout.startswith(f"timed: {start} start, {want.steps} steps, {want.restarts} restart")
    st = rep["stages"]
    check_stats(st["start"], "start")
    assert st["search_step"]["count"] == want.steps - 1
    assert st["total"]["p50_ms"] >= st["start"]["p50_ms"] + st["search"]["p50_ms"] + st["refiner"]["p50_ms"]


def test_profile_missing_bundle(tmp_path):
    assert_one_line_error(run_cli("profile", "--bundle", str(tmp_path / "nope")), "bundle not found")


def test_make_inputs_deterministic():
    a, ma = make_inputs(3, "random-box", 0)
    b, mb = make_inputs(3, "random-box", 0)
    assert a.dtype == np.uint8 and a.shape == (3, 64, 64, 3) and ma.shape == (3, 64, 64)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)


def test_plots_label_ticks_with_the_measured_values(tmp_path):
    """matplotlib plots: the throughput panel ticks read the batch sizes (one tick "1" for one
    batch size, not every tick "1"); files are written atomically and readable."""
    import cv2

    from edgefill.runtime.imaging import plots

    plt = plots.pyplot()
    fig, ax = plt.subplots()
    plots.line_axes(ax, {"onnx-cpu": [10.0]}, [1], xticks=[1], log_x=False, marker="o")
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1"]
    plots.line_axes(ax, {"a": [1.0, 2.0, 4.0]}, [1, 8, 32], xticks=[1, 8, 32], log_x=True)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "32"]
    plt.close(fig)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots()
    plots.box_axes(ax, {"a": rng.lognormal(0, 1, 50), "b": rng.lognormal(3, 0.2, 50), "empty": []})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # top to bottom in dict order
    assert plots.figure_rgb(fig).dtype == np.uint8
    out = tmp_path / "curve.png"
    plots.save_line_plot(out, {"loss": [3.0, 2.0, 1.0]}, title="t", xlabel="step")
    img = cv2.imread(str(out))
    assert img is not None and (img < 250).any(axis=2).mean() > 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png"]  # no temp file left


def test_plots_refuse_bad_suffix_and_name_the_extra_when_matplotlib_is_missing(tmp_path, monkeypatch):
    import sys

    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.imaging import plots

    with pytest.raises(EdgefillError, match="must end in one of"):
        plots.check_plot_path(tmp_path / "x.bmp")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EdgefillError, match=r"edgefill\[plot\]"):
        plots.pyplot()
