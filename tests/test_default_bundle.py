"""The shipped default bundle: found without flags, within budget, and the README's main job works."""
import json

import numpy as np

from conftest import REPO, SAMPLES, run_cli
from edgefill.runtime.core.bundle import PACKAGED_DEFAULT, open_bundle
from edgefill.runtime.imaging.images import read_image
from edgefill.runtime.imaging.masks import make_mask

MB = 1024 * 1024


def test_default_bundle_is_found_verified_and_within_budget():
    bundle = open_bundle()  # no path: the packaged default, hashes checked
    assert bundle.root.resolve() == PACKAGED_DEFAULT.resolve()
    m = bundle.manifest
    assert {"generator", "discriminator", "refiner", "search_step"} <= set(m["graphs"])
    sizes = {name: (bundle.root / name).stat().st_size for name in m["files"]}
    assert sum(sizes.values()) <= 40 * MB, sizes
    assert max(sizes.values()) < 20 * MB, sizes
    assert m["models"]["generator"]["width"] == 64  # `base`
    assert m["training"]["gan"]["steps"] > 0 and m["training"].get("refiner")
    assert m["validation"]["passed"] and all(row["ok"] for row in m["validation"]["rows"])
    assert m["search"]["prior"] in ("lsgan", "log") and m["search"]["steps"] >= 1
    # the amortised search: the encoder ships, with its own (tuned) search defaults
    assert "encoder" in m["graphs"] and m["training"].get("encoder")
    assert bundle.search_defaults_for("encoder").steps < bundle.search_defaults.steps
    # the refiner that sees the hole (issue 13) and Telea's fill beside the search's (issue 20):
    # a U-Net on blended RGB + mask + diffusion-filled RGB
    r = m["models"]["refiner"]
    assert r["arch"] == "unet" and r["mask_channel"] is True and r["telea_channels"] is True
    assert m["graphs"]["refiner"]["inputs"]["image_hole_telea"][1] == 7
    # the generator of the long run (issue 20): EMA weights chosen by SWD, >= 1M images trained
    gan = m["training"]["gan"]
    assert gan["weights"]["generator"].startswith("ema") and gan["images_seen"] >= 1_000_000
    # the refiner: the weight average of five points of one fine-tuning chain (sessions 38-40)
    assert len(m["training"]["refiner"]["averaged_with"]) == 4
    # K samples per hole (issue 22): their own refiner, trained winner-takes-all over a mask's
    # samples from different starts, so they are different guesses (session 38)
    assert m["graphs"]["samples_refiner"]["inputs"]["image_hole_telea"][1] == 7
    sr = m["training"]["samples_refiner"]
    assert sr["best_of"] > 0 and sr["samples_per_mask"] > 1 and m["search"]["sample_spread"] > 0
    # the refiner averaged over the face and its mirror image (session 35), a setting of the bundle
    # and K samples placed at a distance set by the refiner's uncertainty about the face (session 37)
    assert m["refine"] == {"flip_average": True, "sample_scale": 1.8}
    assert bundle.refine_defaults.flip_average and bundle.refine_defaults.sample_scale == 1.8


def test_readme_main_job_inpaints_a_sample_with_the_default_bundle(tmp_path):
    face = sorted((SAMPLES / "faces").glob("*.png"))[0]
    out = tmp_path / "face0.png"
    proc = run_cli("inpaint", str(face), "--mask", "center", "--out", str(out), "--steps", "10", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary and out.is_file()
    assert summary["settings"]["init"] == "encoder"  # used without flags
    before, after = read_image(face), read_image(out)
    hole = make_mask("center") == 255
    assert np.array_equal(before[~hole], after[~hole])  # only the hole changes
    assert not np.array_equal(before[hole], after[hole])
    assert (REPO / "README.md").read_text().count(face.name) >= 1
