"""The bundle's face detector at export time (export/detector.py): a bundle re-exported from a
bundle keeps its detector (file, hash, spec); the tflite -> ONNX conversion, its validation
against LiteRT and the template measurement run when the MediaPipe file is at hand
($EDGEFILL_BLAZEFACE_TFLITE; it comes from the mediapipe wheel, never downloaded by tests)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES

pytest.importorskip("torch")


def _default_with_detector() -> Path:
    from edgefill.runtime.core.bundle import default_bundle_path

    root = default_bundle_path()
    if "detector" not in json.loads((root / "manifest.json").read_text()).get("graphs", {}):
        pytest.skip("the default bundle has no detector")
    return root


def test_reexport_keeps_the_detector_and_its_hash(tiny_bundle, tmp_path):
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.export.detector import add_detector, kept_detector
    from edgefill.runtime.core.bundle import open_bundle

    onnx_bytes, spec = kept_detector(_default_with_detector())
    src = tmp_path / "src"
    shutil.copytree(tiny_bundle, src)
    manifest = json.loads((src / "manifest.json").read_text())
    add_detector(src, manifest, onnx_bytes, spec)
    (src / "manifest.json").write_text(json.dumps(manifest))
    assert open_bundle(src).has_graph("detector")  # hashes verified on open
    summary = export_bundle(str(src), str(tmp_path / "out"), validate=True)
    out = open_bundle(tmp_path / "out")
    assert out.has_graph("detector") and out.manifest["detector"] == spec
    assert out.manifest["files"]["detector.onnx"] == manifest["files"]["detector.onnx"]
    assert (tmp_path / "out" / "detector.onnx").read_bytes() == onnx_bytes
    assert summary["sizes"]["detector.onnx"] == len(onnx_bytes)


def test_detector_from_another_bundle_is_copied_as_it_is(tiny_bundle, tmp_path):
    """A new generator ships the same converted detector: --detector names a bundle folder."""
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.export.detector import kept_detector
    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.errors import EdgefillError

    default = _default_with_detector()
    onnx_bytes, spec = kept_detector(default)
    export_bundle(str(tiny_bundle), str(tmp_path / "out"), detector=str(default), validate=False)
    out = open_bundle(tmp_path / "out")
    assert out.has_graph("detector") and out.manifest["detector"] == spec
    assert (tmp_path / "out" / "detector.onnx").read_bytes() == onnx_bytes
    with pytest.raises(EdgefillError, match="has no detector"):
        export_bundle(str(tiny_bundle), str(tmp_path / "out2"), detector=str(tiny_bundle), validate=False)
    assert not (tmp_path / "out2").exists()


def test_detector_without_its_faces_is_a_clear_error(tiny_bundle, tmp_path):
    from edgefill.export.bundle_writer import export_bundle
    from edgefill.runtime.errors import EdgefillError

    with pytest.raises(EdgefillError, match="--detector-faces"):
        export_bundle(str(tiny_bundle), str(tmp_path / "out"), detector=str(tmp_path / "x.tflite"))
    assert not (tmp_path / "out").exists()


def test_detector_from_the_mediapipe_wheel(tmp_path, sample_faces):
    """--detector takes mediapipe's wheel (a zip): the tflite member is what gets converted; a
    zip without it, or a broken one, is one clear line, before any conversion."""
    import zipfile

    from edgefill.export.detector import ORIGIN, build_detector, tflite_in
    from edgefill.runtime.errors import EdgefillError

    payload = b"TFL3 stand-in bytes"
    wheel = tmp_path / "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mediapipe/__init__.py", "")
        z.writestr(ORIGIN["file"], payload)
    (tmp_path / "x").mkdir()
    got = tflite_in(wheel, tmp_path / "x")
    assert got.name == "face_detection_short_range.tflite" and got.read_bytes() == payload
    plain = tmp_path / "model.tflite"
    plain.write_bytes(payload)
    assert tflite_in(plain, tmp_path / "x") == plain
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "no model here")
    np.savez(tmp_path / "faces.npz", images=sample_faces)
    with pytest.raises(EdgefillError, match="a zip without mediapipe/modules/face_detection/"):
        build_detector(other, tmp_path / "faces.npz", say=lambda s: None)
    broken = tmp_path / "broken.whl"
    broken.write_bytes(wheel.read_bytes()[:-30])
    with pytest.raises(EdgefillError, match="--detector .*broken.whl"):
        tflite_in(broken, tmp_path / "x")


def test_conversion_validates_against_litert_and_measures_the_template(tmp_path):
    tflite = os.environ.get("EDGEFILL_BLAZEFACE_TFLITE")
    if not tflite or not Path(tflite).is_file():
        pytest.skip("set EDGEFILL_BLAZEFACE_TFLITE to mediapipe's face_detection_short_range.tflite "
                    "(pip download --no-deps mediapipe==0.10.14)")
    pytest.importorskip("tflite2onnx")
    pytest.importorskip("ai_edge_litert")
    from edgefill.export.detector import build_detector
    from edgefill.runtime.imaging.images import read_image

    faces = np.stack([read_image(p) for p in sorted((SAMPLES / "faces").glob("*.png"))] * 3)
    np.savez(tmp_path / "faces.npz", images=faces)
    onnx_bytes, spec = build_detector(tflite, tmp_path / "faces.npz", say=lambda s: None)
    assert all(r["ok"] for r in spec["validation"]) and len(onnx_bytes) > 100_000
    t = np.array(spec["template"]["points"])
    assert spec["template"]["found"] == 24 and t.shape == (4, 2)
    assert 15 < t[0, 0] < t[1, 0] < 50 and abs(t[0, 1] - t[1, 1]) < 2  # two level eyes, left to right
    assert spec["origin"]["licence"] == "Apache-2.0"
