"""int8 graphs (export/quantize.py, `edgefill export --int8`): what may be quantized, what the
quantized bundle holds, and that a quality drop beyond the limit writes nothing. Tiny models and
the committed sample faces (standing in for train.npz); no timing."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory, sample_faces):
    """A train.npz stand-in: 32 faces (the 8 samples, flipped and shifted)."""
    imgs = [sample_faces, sample_faces[:, :, ::-1], np.roll(sample_faces, 2, axis=1), np.roll(sample_faces, -2, axis=2)]
    path = tmp_path_factory.mktemp("faces") / "train.npz"
    np.savez(path, images=np.ascontiguousarray(np.concatenate(imgs)))
    return path


def test_only_the_refiner_may_be_quantized():
    from edgefill.export.quantize import parse_graphs
    from edgefill.runtime.errors import EdgefillError

    assert parse_graphs("refiner") == ["refiner"] and parse_graphs(None) == [] and parse_graphs("") == []
    with pytest.raises(EdgefillError, match="ConvTranspose"):
        parse_graphs("refiner,generator")
    with pytest.raises(EdgefillError, match="gradient"):
        parse_graphs(["search_step"])


def test_int8_refiner_bundle_holds_a_qdq_graph_and_the_check(tiny_bundle, faces_npz, tmp_path):
    import onnx

    from edgefill.export.quantize import quantize_bundle
    from edgefill.runtime.core.bundle import MANIFEST, open_bundle
    from edgefill.runtime.core.pipeline import Pipeline

    root = tmp_path / "b"
    shutil.copytree(tiny_bundle, root)
    manifest = json.loads((root / MANIFEST).read_text())
    report = quantize_bundle(root, manifest, ["refiner"], str(faces_npz), max_drop_db=100.0,
                             calib_rows=(0, 16), holdout_rows=(16, 32))
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert manifest["graphs"]["refiner"]["file"] == "refiner.int8.onnx" and manifest["quantization"] == report
    assert not (root / "refiner.onnx").exists() and "refiner.onnx" not in manifest["files"]
    assert "refiner.bin" in manifest["files"]  # the torch fallback's float tensors stay
    q = report["quality"]
    assert q["n"] == 16 and q["faces"] == "train.npz[16:32]" and report["calibration"]["faces"] == "train.npz[0:16]"
    assert np.isfinite(q["hole_psnr_float"]) and np.isfinite(q["hole_psnr_int8"])
    assert q["drop_db"] == pytest.approx(q["hole_psnr_float"] - q["hole_psnr_int8"])
    ops = {n.op_type for n in onnx.load(str(root / "refiner.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    bundle = open_bundle(root)  # hashes verify
    assert bundle.graph_path("refiner").name == "refiner.int8.onnx"
    p = Pipeline(bundle, provider="cpu")
    img = np.full((2, 64, 64, 3), 128, np.uint8)
    masks = np.zeros((2, 64, 64), np.uint8)
    masks[:, 16:48, 16:48] = 255
    out = p.refine(img, masks)
    assert out.shape == img.shape and np.array_equal(out[:, :16], img[:, :16])  # known pixels kept


def test_export_int8_rejected_writes_nothing_and_accepted_records_the_numbers(tiny_gan_checkpoint,
                                                                              tiny_refiner_checkpoint, faces_npz,
                                                                              tmp_path, monkeypatch):
    from edgefill.export import quantize
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.core.bundle import open_bundle

    monkeypatch.setattr(quantize, "CALIB_FACES", (0, 16))
    monkeypatch.setattr(quantize, "HOLDOUT", (16, 32))
    out = tmp_path / "b8"
    monkeypatch.setattr(quantize, "MAX_DROP_DB", -1000.0)  # any int8 graph "costs" more than this
    with pytest.raises(quantize.QuantizationRejected, match="nothing written"):
        export_bundle(str(tiny_gan_checkpoint), str(out), refiner=str(tiny_refiner_checkpoint), validate=False,
                      int8="refiner", int8_faces=str(faces_npz))
    assert not out.exists() and not list(tmp_path.glob(".b8*"))
    monkeypatch.setattr(quantize, "MAX_DROP_DB", 1000.0)
    summary = export_bundle(str(tiny_gan_checkpoint), str(out), refiner=str(tiny_refiner_checkpoint), validate=False,
                            int8="refiner", int8_faces=str(faces_npz))
    assert summary["int8"] == ["refiner"] and "refiner.int8.onnx" in summary["sizes"]
    manifest = open_bundle(out).manifest
    assert manifest["quantization"]["max_drop_db"] == 1000.0 and manifest["graphs"]["refiner"]["file"] == "refiner.int8.onnx"


def test_cli_int8_bad_requests_are_one_line(tmp_path):
    """Checked before anything is loaded (the checkpoint is never read)."""
    ck = str(tmp_path / "any")
    proc = run_cli("export", "--checkpoint", ck, "--out", str(tmp_path / "x"), "--int8", "generator",
                   "--int8-faces", "none.npz")
    assert_one_line_error(proc, "ConvTranspose")
    proc = run_cli("export", "--checkpoint", ck, "--out", str(tmp_path / "x"), "--int8", "refiner")
    assert_one_line_error(proc, "--int8-faces")
    assert not (tmp_path / "x").exists()
