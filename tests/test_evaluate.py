"""`edgefill evaluate`: the JSON contract, reproducibility, one search per batch, no ground truth
in the hole, the refined OpenCV rows, K samples per hole, and one-line errors on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES, assert_one_line_error, run_cli
from edgefill.runtime.frontends import evaluate as E
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.diffusion import opencv_inpaint
from edgefill.runtime.imaging.masks import resolve_mask
from edgefill.runtime.core.refine_config import RefineConfig
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.runtime.core.best_of_k import SearchResult

RESULT_KEYS = ["mask", "method", "n", "psnr", "hole_psnr", "ssim", "ssim7", "seam", "psnr_ci", "hole_psnr_ci",
               "ssim_ci", "ssim7_ci", "seam_ci", "seam_truth", "hole_swd", "hole_swd_floor", "hole_swd_levels",
               "hole_swd_floor_levels"]
BUNDLE_KEYS = {"path", "toolkit_version", "models", "precision", "search", "training"}


SAMPLE_GROUPS = {"best_of_k": ["hole_psnr", "hole_psnr_ci", "ssim", "ssim_ci"],
                 "mean_of_k": ["hole_psnr", "hole_psnr_ci", "ssim", "ssim_ci"]}
DIVERSITY_KEYS = ["pairwise_hole_psnr", "pairwise_hole_psnr_ci", "hole_std", "hole_std_ci"]
PAIRED_KEYS = ["mask", "method", "n", "hole_psnr_diff", "hole_psnr_diff_ci", "ssim_diff", "ssim_diff_ci",
               "product_better"]


def check_report(report: dict, masks, methods, n: int, samples: int = 1) -> None:
    paired = "lsgan+refiner" in methods and len(methods) > 1
    assert list(report) == ["results"] + ["paired"] * paired + ["samples"] * (samples > 1) + ["bundle", "settings"] \
        + ["baseline_bundle"] * ("telea+baseline" in methods)
    assert [(r["mask"], r["method"]) for r in report["results"]] == [(k, m) for k in masks for m in methods]
    for r in report["results"]:
        assert list(r) == RESULT_KEYS
        assert r["n"] == n
        for name in ("psnr", "hole_psnr", "ssim", "ssim7"):
            lo, hi = r[f"{name}_ci"]
            assert lo <= r[name] <= hi, (name, r)
        assert 0.0 < r["ssim"] <= 1.0 and 0.0 < r["ssim7"] <= 1.0 and 0.0 < r["hole_psnr"] <= r["psnr"] <= 100.0
        assert 0.0 <= r["seam"] <= 255.0 and 0.0 < r["seam_truth"] <= 255.0
        assert r["hole_swd"] > 0.0 and r["hole_swd_floor"] > 0.0  # no method returns the truth itself
        for key in ("hole_swd", "hole_swd_floor"):  # the levels' mean is the one number
            levels = r[f"{key}_levels"]
            assert list(levels) == ["64", "32", "16"]
            assert np.mean(list(levels.values())) == pytest.approx(r[key], rel=1e-9)
    s = report["settings"]
    assert s["masks"] == list(masks) and s["methods"] == list(methods) and s["images"] == n
    assert len(s["data_sha256"]) == 64 and s["samples"] == samples
    if samples > 1:
        check_samples(report["samples"], masks, n, samples)
    if paired:
        check_paired(report, masks, methods, n)


def check_paired(report: dict, masks, methods, n: int) -> None:
    """The "paired" section: the product minus every other method, per mask kind, equal to the
    difference of the two rows' means (every image has a hole), each mean inside its interval."""
    others = [m for m in methods if m != "lsgan+refiner"]
    assert [(r["mask"], r["method"]) for r in report["paired"]] == [(k, m) for k in masks for m in others]
    rows = {(r["mask"], r["method"]): r for r in report["results"]}
    for r in report["paired"]:
        assert list(r) == PAIRED_KEYS and r["n"] == n
        product, other = rows[(r["mask"], "lsgan+refiner")], rows[(r["mask"], r["method"])]
        assert r["hole_psnr_diff"] == pytest.approx(product["hole_psnr"] - other["hole_psnr"], abs=1e-9)
        assert r["ssim_diff"] == pytest.approx(product["ssim"] - other["ssim"], abs=1e-9)
        for name in ("hole_psnr_diff", "ssim_diff"):
            lo, hi = r[f"{name}_ci"]
            assert lo <= r[name] <= hi, (name, r)
        assert 0.0 <= r["product_better"] <= 1.0


def check_samples(rows: list, masks, n: int, k: int) -> None:
    """The "samples" section: one entry per mask kind, means inside their intervals, the oracle
    at least the mean, and samples that differ before the refiner."""
    assert [r["mask"] for r in rows] == list(masks)
    for r in rows:
        assert list(r) == ["mask", "method", "samples", "n", "best_of_k", "mean_of_k", "diversity", "hole_swd"]
        swd = r["hole_swd"]
        assert list(swd) == ["before_refiner", "after_refiner", "before_refiner_levels", "after_refiner_levels"]
        for stage in ("before_refiner", "after_refiner"):
            assert swd[stage] > 0.0 and list(swd[f"{stage}_levels"]) == ["64", "32", "16"]
            assert np.mean(list(swd[f"{stage}_levels"].values())) == pytest.approx(swd[stage], rel=1e-9)
        assert r["method"] == "lsgan+refiner" and r["samples"] == k and r["n"] == n
        for group, keys in SAMPLE_GROUPS.items():
            assert list(r[group]) == keys
        assert list(r["diversity"]) == ["before_refiner", "after_refiner"]
        stats = [(r[g], name) for g in SAMPLE_GROUPS for name in ("hole_psnr", "ssim")]
        for stage in r["diversity"].values():
            assert list(stage) == DIVERSITY_KEYS
            stats += [(stage, "pairwise_hole_psnr"), (stage, "hole_std")]
            assert 0.0 < stage["pairwise_hole_psnr"] < 100.0 and 0.0 < stage["hole_std"] <= 255.0
        for d, name in stats:
            lo, hi = d[f"{name}_ci"]
            assert lo <= d[name] <= hi, (name, r)
        assert r["best_of_k"]["hole_psnr"] >= r["mean_of_k"]["hole_psnr"]
        assert r["best_of_k"]["ssim"] >= r["mean_of_k"]["ssim"]


class FakeInpainter:
    """Stands in for runtime.inpainter.Inpainter: counts searches, checks the hole is hidden,
    returns a flat grey G(z) and a 'refiner' that shifts the pasted image."""

    class _Bundle:
        root = Path("/fake")
        z_dim = 100
        manifest = {"toolkit_version": "0", "models": {}, "precision": "fp32", "search": {}, "training": {}}

        @staticmethod
        def has_graph(name):
            return True

    bundle = _Bundle()
    search_defaults = SearchConfig(steps=5, restarts=2)
    refine_config = RefineConfig()
    backend, provider = "fake", "none"

    def __init__(self):
        self.calls = []
        self.pipeline = self

    # the pipeline's start stages (a random start, like a bundle without an encoder)
    @staticmethod
    def make_start(init=None):
        from edgefill.runtime.core.starts import RandomStart

        return RandomStart()

    def start(self, images, masks, cfg, start, seeds):
        from edgefill.runtime.core.starts import random_rows

        return random_rows(len(images), cfg.restarts, 100, seeds)

    def config_for(self, steps=None, restarts=None, start="random", **_):
        return self.search_defaults.replace(steps=steps, restarts=restarts)

    def search(self, images, masks, config=None, seed=0, time_budget_ms=None, progress=False, *, z0=None):
        hole = masks >= 128
        assert (images[hole] == E.HOLE_GREY).all(), "ground truth leaked into the hole"
        assert z0 is not None and z0.shape == (len(images) * config.restarts, 100)
        self.calls.append((len(images), config, z0))
        x = np.full((len(images), 3, 64, 64), 0.25, np.float32)
        return SearchResult(z=np.zeros((len(images), 100), np.float32), images=x, loss=np.zeros(len(images)),
                            history=np.zeros((1, len(images))), steps_run=1, seconds=0.0, backend="fake")

    def refine(self, blended, masks):
        out = blended.copy()
        hole = masks >= 128
        out[hole] = np.clip(out[hole].astype(np.int16) + 10, 0, 255).astype(np.uint8)
        return out


def test_one_search_per_batch_and_derived_methods(sample_faces):
    fake = FakeInpainter()
    cfg = E.EvaluateConfig(masks=("center", "random-box"), limit=7, batch_size=3, steps=4, seed=5)
    ev = E.evaluate(sample_faces, cfg, fake, data_info={"data_sha256": "0" * 64}, progress=False)
    check_report(ev.report, cfg.masks, E.DEFAULT_METHODS, 7)
    # 2 mask types x 3 batches (3+3+1 images), one search each, with the overridden steps
    assert [c[0] for c in fake.calls] == [3, 3, 1, 3, 3, 1]
    assert all(c[1].steps == 4 and c[1].restarts == 2 for c in fake.calls)
    # image i starts from initial_z(1, restarts, z_dim, seed + i), whatever its batch
    from edgefill.runtime.core.starts import initial_z

    starts = np.concatenate([c[2] for c in fake.calls[:3]])
    assert np.array_equal(starts, np.concatenate([initial_z(1, 2, 100, 5 + i) for i in range(7)]))
    assert ev.report["settings"]["steps"] == 4 and ev.report["settings"]["prior"] == "lsgan"
    res = {(r["mask"], r["method"]): r for r in ev.report["results"]}
    # the refiner on Telea's fill is a row of its own
    assert res[("center", "telea")]["hole_psnr"] != res[("center", "telea+refiner")]["hole_psnr"]
    # the three lsgan methods differ only in the hole, so they share the known-pixel error; the
    # refiner's +10 shift changes the hole PSNR
    assert res[("center", "lsgan")]["hole_psnr"] != res[("center", "lsgan+refiner")]["hole_psnr"]
    # the seam: a flat grey fill steps away from the face at the border; the truth's own step is shared
    assert res[("center", "lsgan")]["seam"] > 0
    assert res[("center", "lsgan")]["seam_truth"] == res[("center", "telea")]["seam_truth"]
    assert ev.report["settings"]["init"] == "auto" and ev.report["settings"]["start"] == "random"
    grid = E.grid_image(ev)
    # one 64x64 tile per column (input, every method, truth) at scale 2, one row per grid face, not blank
    assert grid.ndim == 3 and grid.shape[1] >= (2 + len(E.DEFAULT_METHODS)) * 128
    assert grid.shape[0] >= len(ev.grid_rows) * cfg.grid_rows * 128 and grid.std() > 0
    assert set(ev.grid_rows["center"]) == {"input", "truth", *E.DEFAULT_METHODS}
    assert len(ev.grid_rows["center"]["input"]) == cfg.grid_rows


@pytest.mark.parametrize("blend", ["paste", "poisson"])
def test_refiner_method_refines_what_the_product_blends(sample_faces, blend):
    """lsgan+refiner is the product's output: the bundle's blend, then the refiner."""
    fake = FakeInpainter()
    masks = E.mask_batch("center", np.arange(4), 0)
    cfg = SearchConfig(steps=2, restarts=1, blend=blend)
    out = E.run_methods(sample_faces[:4], masks, E.DEFAULT_METHODS, fake, cfg, np.arange(4), start=fake.make_start())
    blended = out["lsgan+poisson" if blend == "poisson" else "lsgan"]
    np.testing.assert_array_equal(out["lsgan+refiner"], fake.refine(blended, masks))


def test_refined_baselines_refine_the_opencv_fill_without_a_search(sample_faces):
    """telea+refiner / ns+refiner: the bundle's refiner on the same fills the telea / ns rows score."""
    fake = FakeInpainter()
    masks = E.mask_batch("random-box", np.arange(4), 0)
    out = E.run_methods(sample_faces[:4], masks, ("telea", "telea+refiner", "ns+refiner"), fake, None, np.arange(4))
    assert list(out) == ["telea", "telea+refiner", "ns+refiner"] and fake.calls == []
    masked = E.masked_input(sample_faces[:4], masks)
    np.testing.assert_array_equal(out["telea+refiner"], fake.refine(out["telea"], masks))
    np.testing.assert_array_equal(out["ns+refiner"], fake.refine(opencv_inpaint(masked, masks, "ns"), masks))
    cfg = E.EvaluateConfig(methods=("ns+refiner",))
    assert cfg.needs_bundle and not cfg.needs_search


class ShiftRefiner(FakeInpainter):
    """A baseline bundle's stand-in whose 'refiner' shifts the hole by +20 instead of +10."""

    def refine(self, blended, masks):
        return super().refine(super().refine(blended, masks), masks)


def test_the_baseline_row_is_the_baseline_bundles_refiner_on_teleas_fill(sample_faces):
    """telea+baseline: the second bundle's refiner on the same Telea fill telea+refiner gets, no
    search; evaluate() refuses the row without that bundle."""
    fake, baseline = FakeInpainter(), ShiftRefiner()
    masks = E.mask_batch("center", np.arange(4), 0)
    out = E.run_methods(sample_faces[:4], masks, ("telea", "telea+refiner", "telea+baseline"), fake, None,
                        np.arange(4), baseline=baseline)
    np.testing.assert_array_equal(out["telea+baseline"], baseline.refine(out["telea"], masks))
    assert not np.array_equal(out["telea+baseline"], out["telea+refiner"]) and fake.calls == []
    cfg = E.EvaluateConfig(masks=("center",), methods=("telea+baseline", "lsgan+refiner"), limit=5, steps=2)
    ev = E.evaluate(sample_faces, cfg, FakeInpainter(), data_info={"data_sha256": "0" * 64}, progress=False,
                    baseline=baseline)
    check_report(ev.report, cfg.masks, cfg.methods, 5)
    # the paired difference is the per-image difference, so it needs no interval overlap to decide
    per = ev.per_image["center"]
    d = per["lsgan+refiner"]["hole_psnr"] - per["telea+baseline"]["hole_psnr"]
    (row,) = ev.report["paired"]
    assert row["product_better"] == float(np.mean(d > 0)) and row["hole_psnr_diff"] == pytest.approx(d.mean())
    assert "| center | telea+baseline | 5 |" in E.markdown_table(ev.report)
    with pytest.raises(EdgefillError, match="needs a baseline bundle"):
        E.evaluate(sample_faces, cfg, FakeInpainter(), progress=False)


def test_sample_diversity_metrics():
    from edgefill.runtime.imaging import metrics

    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 255
    same = np.full((2, 3, 16, 16, 3), 90, np.uint8)
    assert np.all(metrics.pairwise_hole_psnr(same, masks) == metrics.PSNR_CAP)  # identical pairs: the cap
    assert np.all(metrics.hole_std(same, masks) == 0.0)
    two = np.full((1, 2, 16, 16, 3), 100, np.uint8)
    two[0, 1, 4:8, 4:8] = 110  # the hole differs by 10 levels, the rest is equal
    np.testing.assert_allclose(metrics.pairwise_hole_psnr(two, masks[:1]), 10 * np.log10(255 ** 2 / 100))
    np.testing.assert_allclose(metrics.hole_std(two, masks[:1]), 5.0)
    assert np.isnan(metrics.pairwise_hole_psnr(two[:, :1], masks[:1])).all()  # one sample: no pairs
    assert np.isnan(metrics.hole_std(two, np.zeros((1, 16, 16), np.uint8))).all()  # no hole


def test_samples_keep_the_single_output_and_do_not_depend_on_batch_size(tiny_bundle, sample_faces):
    """--samples K: sample 0 is the single output (the method rows do not move), and every number
    is the same whatever the batch size."""
    from edgefill.runtime.frontends.inpainter import Inpainter

    inpainter = Inpainter(str(tiny_bundle), threads=1)

    def run(samples, batch_size):
        cfg = E.EvaluateConfig(masks=("center",), limit=5, steps=3, restarts=1, seed=2, batch_size=batch_size,
                               grid_rows=2, samples=samples)
        return E.evaluate(sample_faces, cfg, inpainter, data_info={"data_sha256": "0" * 64}, progress=False)

    single, k3, k3_small = run(1, 5), run(3, 5), run(3, 2)
    check_report(k3.report, ["center"], E.DEFAULT_METHODS, 5, samples=3)
    assert k3.report["results"] == single.report["results"]
    assert k3_small.report["results"] == k3.report["results"]
    assert k3_small.report["samples"] == k3.report["samples"]
    per = k3.per_sample["center"]
    assert np.all(per["best_of_k_hole_psnr"] >= per["mean_of_k_hole_psnr"])
    assert "samples" not in single.report and not single.sample_rows
    assert "best-of-K" in E.markdown_table(k3.report) and "best-of-K" not in E.markdown_table(single.report)
    grid = E.samples_grid_image(k3)
    # two rows (before, after the refiner) per grid face; input, truth and K samples across, at scale 2
    assert grid.shape[0] >= 2 * 2 * 128 and grid.shape[1] >= 5 * 128 and grid.std() > 0


def test_masks_depend_only_on_seed_kind_and_index():
    a = E.mask_batch("random-box", np.arange(0, 6), seed=1)
    b = E.mask_batch("random-box", np.arange(4, 6), seed=1)
    assert np.array_equal(a[4:], b)
    assert not np.array_equal(a, E.mask_batch("random-box", np.arange(0, 6), seed=2))
    assert not np.array_equal(a[0], a[1])
    assert (a == 255).any(axis=(1, 2)).all()


def test_method_selection():
    assert E.select_methods(None, True) == E.DEFAULT_METHODS
    assert E.select_methods(None, True, baseline_bundle=True) == E.METHODS
    assert E.select_methods(None, False) == E.REFINED_BASELINES + E.LSGAN_METHODS
    assert E.select_methods("lsgan+refiner,ns+refiner,ns", True) == ("ns", "ns+refiner", "lsgan+refiner")
    assert E.METHODS == ("telea", "ns", "telea+refiner", "ns+refiner", "telea+baseline", "lsgan", "lsgan+poisson",
                         "lsgan+refiner")
    assert E.DEFAULT_METHODS == tuple(m for m in E.METHODS if m != "telea+baseline")
    with pytest.raises(EdgefillError, match="needs --baseline-bundle"):
        E.select_methods("telea+baseline,lsgan+refiner", True)
    assert E.select_methods("ns, telea", True) == ("telea", "ns")
    with pytest.raises(EdgefillError):
        E.select_methods("telea,ns", False)
    with pytest.raises(EdgefillError):
        E.select_methods("lsgan,deepfill", True)
    with pytest.raises(EdgefillError):
        E.parse_masks("center,ellipse")
    assert not E.EvaluateConfig(methods=("telea", "ns")).needs_bundle


def test_baselines_need_no_bundle(tmp_path):
    out = tmp_path / "e.json"
    env = {"EDGEFILL_BUNDLE": str(tmp_path / "no_such_bundle")}
    proc = run_cli("evaluate", "--data", str(SAMPLES / "faces"), "--mask", "center,half", "--methods", "telea,ns",
                   "--limit", "4", "--json", str(out), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    check_report(report, ["center", "half"], ["telea", "ns"], 4)
    assert report["bundle"] is None
    assert "| center | telea | 4 |" in proc.stdout
    # the lsgan methods do need one: one clear line
    assert_one_line_error(run_cli("evaluate", "--data", str(SAMPLES / "faces"), "--limit", "2", env=env),
                          "bundle not found")


def test_evaluate_tiny_bundle_end_to_end_and_rerun(tiny_bundle, tmp_path):
    data = tmp_path / "faces.npz"
    from edgefill.runtime.imaging.images import read_image

    np.savez(data, images=np.stack([read_image(p) for p in sorted((SAMPLES / "faces").glob("*.png"))]))
    args = ["evaluate", "--data", str(data), "--bundle", str(tiny_bundle), "--mask", "center,half", "--limit", "4",
            "--steps", "3", "--restarts", "2", "--seed", "1", "--no-progress"]
    p1 = run_cli(*args, "--json", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "a.md"),
                 "--grid", str(tmp_path / "a.png"))
    assert p1.returncode == 0, p1.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    check_report(a, ["center", "half"], list(E.DEFAULT_METHODS), 4)
    assert set(a["bundle"]) == BUNDLE_KEYS and a["bundle"]["models"]["generator"]["width"] == 8
    assert a["settings"]["steps"] == 3 and a["settings"]["restarts"] == 2 and a["settings"]["prior"] in ("lsgan", "log")
    assert (tmp_path / "a.md").read_text() == p1.stdout
    from edgefill.runtime.imaging.images import read_image as rd

    grid = rd(tmp_path / "a.png")
    assert grid.shape[1] > 9 * 64  # input, 7 methods, truth
    p2 = run_cli(*args, "--json", str(tmp_path / "b.json"))
    assert p2.returncode == 0, p2.stderr
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["results"] == b["results"]
    # --no-flip-average: the refined rows change, the unrefined ones do not, the JSON says which ran
    p3 = run_cli(*args, "--json", str(tmp_path / "c.json"), "--no-flip-average")
    assert p3.returncode == 0, p3.stderr
    c = json.loads((tmp_path / "c.json").read_text())
    assert a["settings"]["refine"] == {"flip_average": True, "sample_scale": 1.8}
    assert c["settings"]["refine"] == {"flip_average": False, "sample_scale": 1.8}
    rows = {(r["mask"], r["method"]): r["hole_psnr"] for r in c["results"]}
    for r in a["results"]:
        same = rows[(r["mask"], r["method"])] == r["hole_psnr"]
        assert same == ("refiner" not in r["method"]), r


def test_evaluate_baseline_bundle_end_to_end(tiny_bundle, tiny_gan_checkpoint, tmp_path):
    """`--baseline-bundle B`: the row telea+baseline and the paired table. With the product's own
    bundle as B it must equal telea+refiner exactly; a missing B, a B without a refiner and the row
    without B are one line each."""
    args = ["evaluate", "--data", str(SAMPLES / "faces"), "--bundle", str(tiny_bundle), "--mask", "center",
            "--limit", "4", "--steps", "2", "--restarts", "1", "--no-progress"]
    methods = ["telea+refiner", "telea+baseline", "lsgan+refiner"]
    proc = run_cli(*args, "--baseline-bundle", str(tiny_bundle), "--methods", ",".join(methods),
                   "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    check_report(report, ["center"], methods, 4)
    rows = {r["method"]: r for r in report["results"]}
    assert {k: v for k, v in rows["telea+baseline"].items() if k != "method"} == \
        {k: v for k, v in rows["telea+refiner"].items() if k != "method"}
    paired = {r["method"]: r for r in report["paired"]}
    assert {k: v for k, v in paired["telea+baseline"].items() if k != "method"} == \
        {k: v for k, v in paired["telea+refiner"].items() if k != "method"}
    assert report["baseline_bundle"]["path"] == report["bundle"]["path"]
    assert "minus each method on the same images (paired" in proc.stdout
    # the default method set takes the row in when B is given
    assert E.select_methods(None, True, baseline_bundle=True)[4] == "telea+baseline"
    from edgefill.export.bundle_writer import export_bundle

    no_refiner = tmp_path / "no_refiner"
    export_bundle(str(tiny_gan_checkpoint), str(no_refiner), validate=False)
    assert_one_line_error(run_cli(*args, "--methods", "telea+baseline"), "needs --baseline-bundle")
    assert_one_line_error(run_cli(*args, "--baseline-bundle", str(tmp_path / "nowhere")), "not found")
    assert_one_line_error(run_cli(*args, "--baseline-bundle", str(no_refiner)), "has no refiner")


def test_evaluate_samples_end_to_end(tiny_bundle, tmp_path):
    """`evaluate --samples 3`: the refined OpenCV rows, the samples section, the second table and
    the samples grid beside --grid."""
    data = tmp_path / "faces.npz"
    from edgefill.runtime.imaging.images import read_image

    np.savez(data, images=np.stack([read_image(p) for p in sorted((SAMPLES / "faces").glob("*.png"))]))
    proc = run_cli("evaluate", "--data", str(data), "--bundle", str(tiny_bundle), "--mask", "center", "--limit", "4",
                   "--steps", "3", "--restarts", "1", "--samples", "3", "--grid-rows", "2", "--no-progress",
                   "--no-baselines", "--json", str(tmp_path / "s.json"), "--grid", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    methods = ["telea+refiner", "ns+refiner", "lsgan", "lsgan+poisson", "lsgan+refiner"]
    check_report(report, ["center"], methods, 4, samples=3)
    assert report["settings"]["refine"]["sample_scale"] == 1.8
    assert report["settings"]["metrics"]["samples"]["pairwise_hole_psnr"].endswith("(the cap)")
    assert "| center | 3 | 4 |" in proc.stdout and "telea+refiner and ns+refiner give one output" in proc.stdout
    from edgefill.runtime.imaging.images import read_image as rd

    assert rd(tmp_path / "s.png").shape[1] > 7 * 64
    samples_grid = rd(tmp_path / "s_samples.png")
    assert samples_grid.shape[1] > 5 * 64 and samples_grid.shape[0] > 4 * 64


def test_a_bundle_without_a_refiner_leaves_every_refined_row_out(tiny_gan_checkpoint, tmp_path):
    """The default method set drops telea+refiner, ns+refiner and lsgan+refiner (with a notice);
    --samples, which measures lsgan+refiner, is then one clear error."""
    from edgefill.export.bundle_writer import export_bundle

    bundle = tmp_path / "no_refiner"
    export_bundle(str(tiny_gan_checkpoint), str(bundle), validate=False)
    args = ["evaluate", "--data", str(SAMPLES / "faces"), "--bundle", str(bundle), "--limit", "2", "--steps", "2",
            "--restarts", "1", "--no-progress"]
    proc = run_cli(*args, "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "telea+refiner, ns+refiner, lsgan+refiner left out" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["methods"] == ["telea", "ns", "lsgan", "lsgan+poisson"]
    assert list(report["settings"]["methods_left_out"]) == ["telea+refiner", "ns+refiner", "lsgan+refiner"]
    assert_one_line_error(run_cli(*args, "--samples", "2"), "has no refiner")
    assert_one_line_error(run_cli(*args, "--methods", "telea,ns+refiner"), "has no refiner")


@pytest.mark.parametrize("case,fragment", [
    ("missing", "data not found"),
    ("garbage", "not a readable .npz"),
    ("no_images", "no `images` array"),
    ("bad_shape", "must be uint8"),
    ("bad_mask", "neither a mask kind"),
    ("bad_method", "unknown method"),
    ("bad_grid", "--grid must end"),
    ("zero_samples", "--samples must be 1..16"),
    ("negative_samples", "--samples must be 1..16"),
    ("too_many_samples", "--samples must be 1..16"),
    ("samples_without_product", "not among the methods"),
])
def test_bad_input_is_one_line(tmp_path, case, fragment):
    data = tmp_path / "d.npz"
    mask, methods, extra = "center", "telea", []
    if case == "garbage":
        data.write_bytes(b"this is not a zip")
    elif case == "no_images":
        np.savez(data, faces=np.zeros((2, 64, 64, 3), np.uint8))
    elif case == "bad_shape":
        np.savez(data, images=np.zeros((2, 32, 32, 3), np.uint8))
    elif case != "missing":
        np.savez(data, images=np.zeros((2, 64, 64, 3), np.uint8))
    if case == "bad_mask":
        mask = "center,blob"
    if case == "bad_method":
        methods = "telea,magic"
    if case == "bad_grid":
        extra = ["--grid", str(tmp_path / "grid.txt")]
    samples = {"zero_samples": "0", "negative_samples": "-1", "too_many_samples": "17", "samples_without_product": "3"}
    if case in samples:
        extra = ["--samples", samples[case]]
    proc = run_cli("evaluate", "--data", str(data), "--mask", mask, "--methods", methods, "--no-progress", *extra)
    assert_one_line_error(proc, fragment)


def test_runtime_face_loader(tmp_path, sample_faces):
    from edgefill.runtime.imaging.datasets import images_sha256, load_faces

    folder = tmp_path / "faces"
    folder.mkdir()
    from edgefill.runtime.imaging.images import write_image

    for i, face in enumerate(sample_faces[:3]):
        write_image(folder / f"{i}.png", np.repeat(np.repeat(face, 2, 0), 2, 1))  # 128x128 -> crop + resize
    (folder / "broken.png").write_bytes(b"not an image")
    data = load_faces(folder, progress=False)
    assert data.images.shape == (3, 64, 64, 3) and data.images.dtype == np.uint8 and data.skipped == 1
    assert load_faces(folder, limit=2, progress=False).images.shape == (2, 64, 64, 3)
    npz = tmp_path / "f.npz"
    np.savez(npz, images=sample_faces)
    loaded = load_faces(npz, limit=5)
    assert np.array_equal(loaded.images, sample_faces[:5])
    assert loaded.sha256() == images_sha256(sample_faces[:5]) != images_sha256(sample_faces[:4])
    with pytest.raises(EdgefillError):
        load_faces(tmp_path / "empty_dir_missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgefillError):
        load_faces(tmp_path / "empty")


def test_hole_realism_per_method_floor_and_samples(sample_faces):
    """The hole SWD column: 0 for the truth itself, a flat fill far above the floor (other
    people's faces in the same holes), the samples' value the mean over the K positions, None
    without a hole; the markdown shows each with its floor."""
    truth = np.concatenate([sample_faces, sample_faces[:, :, ::-1]])
    masks = np.stack([np.asarray(resolve_mask("center"))] * len(truth))
    hole = (masks >= 128)[..., None]
    grey = np.where(hole, np.uint8(128), truth)
    kept = {"truth": truth, "masks": masks, "same": truth, "grey": grey,
            "searched": np.stack([grey, truth], axis=1), "final": np.stack([truth, truth], axis=1)}
    r = E.hole_realism(kept, ("same", "grey"), seed=0)
    assert r["same"] == 0.0 and r["grey"] > 3 * r["floor"] > 0.0
    assert r["samples"]["after_refiner"] == 0.0
    assert r["samples"]["before_refiner"] == pytest.approx(r["grey"] / 2)
    # per level: the truth is 0 at every level, a flat fill is furthest at the finest (no texture at all)
    assert r["levels"]["same"] == {"64": 0.0, "32": 0.0, "16": 0.0}
    grey_levels = r["levels"]["grey"]
    assert grey_levels["64"] > grey_levels["16"] > 0.0
    assert r["samples"]["before_refiner_levels"] == pytest.approx({k: v / 2 for k, v in grey_levels.items()})
    empty = E.hole_realism({**kept, "masks": np.zeros_like(masks)}, ("same",), seed=0)
    assert empty["same"] is None and empty["floor"] is None and empty["samples"]["after_refiner"] is None
    assert empty["levels"]["same"] == empty["levels"]["floor"] == {"64": None, "32": None, "16": None}
    row = {"mask": "center", "method": "grey", "n": 16, "psnr": 20.0, "psnr_ci": [19.0, 21.0], "hole_psnr": 15.0,
           "hole_psnr_ci": [14.0, 16.0], "ssim": 0.8, "ssim_ci": [0.7, 0.9], "seam": 3.0, "seam_truth": 4.0,
           "hole_swd": r["grey"], "hole_swd_floor": r["floor"]}
    assert f"| {r['grey']:.1f} ({r['floor']:.1f}) |" in E.markdown_table({"results": [row]})


def test_hole_realism_reads_at_most_the_first_realism_images(sample_faces, monkeypatch):
    """Only the first REALISM_IMAGES images' outputs are kept for the hole SWD (a big evaluation
    must not hold every output in memory): with the cap at 3, the numbers over 7 images in batches
    of 2 equal those of an evaluation of the first 3 alone; the PSNR rows still cover all 7."""
    cfg = dict(masks=("center",), batch_size=2, steps=2, seed=1)
    monkeypatch.setattr(E.run, "REALISM_IMAGES", 3)
    capped = E.evaluate(sample_faces, E.EvaluateConfig(limit=7, **cfg), FakeInpainter(), progress=False).report
    monkeypatch.setattr(E.run, "REALISM_IMAGES", 2000)
    first3 = E.evaluate(sample_faces, E.EvaluateConfig(limit=3, **cfg), FakeInpainter(), progress=False).report
    for a, b in zip(capped["results"], first3["results"]):
        assert a["n"] == 7 and b["n"] == 3
        assert a["hole_swd"] == b["hole_swd"] and a["hole_swd_floor"] == b["hole_swd_floor"]
