"""The bundle's optional face detector graph: BlazeFace short-range, a model we did not train.

MediaPipe ships it as mediapipe/modules/face_detection/face_detection_short_range.tflite
(Apache-2.0) inside the mediapipe wheel (`pip download --no-deps mediapipe==0.10.14`; mediapipe
itself is never a dependency). `--detector` takes the .tflite or the wheel itself (tflite_in).
Here, once, at export time:

    convert()          the .tflite -> ONNX with tflite2onnx (the `train` extra; float16 weights
                       become float32 constants, NHWC input -> NCHW)
    validate()         the ONNX graph under onnxruntime against the original runtime (LiteRT,
                       ai-edge-litert, also in the `train` extra) on the sample faces and on
                       frames built from them: max |diff| of both outputs within TOLERANCE, and
                       the decoded faces (runtime.frontends.video.blazeface) the same
    measure_template() where the detector puts the keypoints in OUR training crops: the mean
                       position of each over the train.npz faces it finds (each 64x64 face
                       upscaled 2x and padded by half its size with its own edges, as a face in
                       a frame); the similarity transform of video.align maps video faces onto it
    add_detector()     detector.onnx into a bundle folder being written, its sha256 in "files",
                       the graph in "graphs" and the declarative spec (detector_spec(): input
                       size and normalisation, outputs, anchors, decoding, keypoints, template,
                       licence, origin, validation) as manifest["detector"]

A bundle re-exported from a bundle keeps its detector (file and spec) unless another is given.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from edgefill.runtime.errors import EdgefillError

DETECTOR_FILE = "detector.onnx"
# max |onnxruntime - LiteRT| / (1 + |LiteRT|) of both outputs (measured ~1e-4: raw values reach
# thousands, e.g. a logit of -7337, where the absolute difference is 0.3); decoded keypoints in
# input pixels (of 128)
TOLERANCE = {"regressors": 5e-3, "classificators": 1e-3, "keypoints_px": 0.05}
TEMPLATE_FACES = 2000  # train.npz faces the template is measured on (the first ones)
ORIGIN = {"model": "BlazeFace short-range (MediaPipe face detection)",
          "file": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
          "package": "mediapipe==0.10.14 (PyPI wheel, pip download --no-deps)",
          "licence": "Apache-2.0", "licence_url": "https://github.com/google-ai-edge/mediapipe/blob/master/LICENSE",
          "model_card": "https://storage.googleapis.com/mediapipe-assets/MediaPipe%20BlazeFace%20Model%20Card%20"
                        "(Short%20Range).pdf"}


def detector_spec(tflite_sha256: str, converter: str) -> dict:
    """The declarative spec (runtime.frontends.video.blazeface reads it)."""
    return {
        "name": "blazeface_short_range", "graph": "detector", "file": DETECTOR_FILE,
        "input": {"name": "input", "size": 128, "shape": [1, 3, 128, 128], "layout": "NCHW", "color_order": "RGB",
                  "dtype": "float32", "range": [-1, 1], "normalisation": "x / 127.5 - 1",
                  "resize": "letterbox: the frame scaled to fit, centred, padding black (-1)"},
        "outputs": {"regressors": "regressors", "scores": "classificators",
                    "regressors_shape": [1, 896, 16], "scores_shape": [1, 896, 1]},
        "anchors": {"layers": [[8, 2], [16, 6]], "count": 896, "offset": 0.5, "fixed_size": True,
                    "order": "stride 8 (16x16 grid, 2 per cell) then stride 16 (8x8 grid, 6 per cell), row-major",
                    "mediapipe_options": {"num_layers": 4, "strides": [8, 16, 16, 16], "input_size": 128,
                                          "anchor_offset": 0.5, "fixed_anchor_size": True}},
        "decoding": {"scale": 128.0, "clip": 100.0, "min_score": 0.5, "nms_iou": 0.3, "nms": "weighted",
                     "box": "centre x, y, width, height: value / scale (+ anchor centre for the centre)",
                     "keypoints": "6 x (x, y): value / scale + anchor centre", "score": "sigmoid(clip(logit))"},
        "keypoints": ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"],
        "origin": {**ORIGIN, "sha256": tflite_sha256, "converter": converter},
    }


def convert(tflite: str | Path, out: str | Path) -> None:
    try:
        import tflite2onnx
    except ImportError as exc:
        raise EdgefillError(f"converting the detector needs tflite2onnx (the train extra): {exc}") from None
    import contextlib
    import io
    import logging

    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tflite2onnx.convert(str(tflite), str(out))


class _Runner:
    """An onnxruntime session behind the Engine.run interface BlazeFace uses."""

    def __init__(self, onnx_path: Path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def run(self, name: str, inputs: dict) -> dict:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, inputs)))


def _padded(face64: np.ndarray) -> np.ndarray:
    """A 64x64 crop as a face in a frame: upscaled 2x, padded by 64 px of its own edges (256x256)."""
    import cv2

    big = cv2.resize(face64, (128, 128), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, 64, 64, 64, 64, cv2.BORDER_REPLICATE)


def _probe_images(faces64: np.ndarray) -> list[np.ndarray]:
    import cv2

    imgs = [_padded(f) for f in faces64]
    rng = np.random.default_rng(0)
    frame = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (640, 360), interpolation=cv2.INTER_CUBIC)
    frame[60:300, 200:440] = cv2.resize(faces64[0], (240, 240), interpolation=cv2.INTER_CUBIC)
    return imgs + [frame, rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)]


def validate(onnx_path: Path, tflite: Path, spec: dict, faces64: np.ndarray) -> list[dict]:
    """onnxruntime vs LiteRT on the probe images (module docstring) -> rows; EdgefillError if off."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise EdgefillError("validating the detector needs LiteRT, the original runtime "
                            f"(pip install ai-edge-litert; in the train extra): {exc}") from None
    from edgefill.runtime.frontends.video.blazeface import anchors, decode, letterbox

    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = {o["name"]: o["index"] for o in interp.get_output_details()}
    runner = _Runner(onnx_path)
    a = anchors(spec)
    worst = {"regressors": 0.0, "classificators": 0.0}
    faces_ref = faces_onnx = kp_diff = 0
    kp_worst = 0.0
    for img in _probe_images(faces64):
        x, *_ = letterbox(img, spec["input"]["size"])
        interp.set_tensor(inp, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        interp.invoke()
        ref = {k: interp.get_tensor(v) for k, v in outs.items()}
        got = runner.run("detector", {spec["input"]["name"]: x})
        for k in worst:
            worst[k] = max(worst[k], float((np.abs(got[k] - ref[k]) / (1.0 + np.abs(ref[k]))).max()))
        d_ref = decode(ref["regressors"][0], ref["classificators"][0], spec, a)
        d_got = decode(got["regressors"][0], got["classificators"][0], spec, a)
        faces_ref += len(d_ref)
        faces_onnx += len(d_got)
        if len(d_ref) == len(d_got):
            for (_, _, k1), (_, _, k2) in zip(d_ref, d_got):
                kp_worst = max(kp_worst, float(np.abs(k1 - k2).max()) * spec["input"]["size"])
        else:
            kp_diff += 1
    rows = [{"check": "detector vs LiteRT", "output": k, "max_rel_diff": v, "tolerance": TOLERANCE[k],
             "ok": v <= TOLERANCE[k]} for k, v in worst.items()]
    rows.append({"check": "detector vs LiteRT", "output": "decoded faces", "faces_litert": faces_ref,
                 "faces_onnx": faces_onnx, "images_differing": kp_diff, "keypoint_max_diff_px": kp_worst,
                 "tolerance": TOLERANCE["keypoints_px"], "ok": kp_diff == 0 and kp_worst <= TOLERANCE["keypoints_px"]})
    bad = [r for r in rows if not r["ok"]]
    if bad:
        raise EdgefillError(f"detector validation failed: {bad[0]}")
    return rows


def measure_template(onnx_path: Path, spec: dict, faces64: np.ndarray) -> dict:
    """Mean keypoint positions (64x64 crop pixels) over the faces the detector finds (module
    docstring), with their spread."""
    from edgefill.runtime.frontends.video.blazeface import BlazeFace

    det = BlazeFace(_Runner(onnx_path), spec)
    pts = []
    for f in faces64:
        found = det(_padded(f))
        if found:
            pts.append((found[0].keypoints - 64.0) / 2.0)  # 256x256 padded frame -> 64x64 crop
    if len(pts) < max(10, len(faces64) // 2):
        raise EdgefillError(f"the detector found only {len(pts)} of {len(faces64)} training faces; no template")
    pts = np.stack(pts)
    mean = pts.mean(0)
    return {"points": [[round(float(v), 3) for v in p] for p in mean[:4]],
            "points_all": [[round(float(v), 3) for v in p] for p in mean],
            "std": [[round(float(v), 3) for v in p] for p in pts.std(0)],
            "keypoints": spec["keypoints"][:4], "aligned_on": "right_eye, left_eye, nose_tip, mouth",
            "found": int(len(pts)), "faces": int(len(faces64)),
            "how": "mean over the first faces of train.npz the detector finds; each 64x64 face upscaled 2x and "
                   "padded by 64 px of its own edges; similarity transform (cv2.estimateAffinePartial2D)"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tflite_in(source: str | Path, tmp: str | Path) -> Path:
    """The .tflite to convert: `source` itself, or, when it is a zip (the mediapipe wheel that
    `pip download --no-deps mediapipe==0.10.14` fetches), its ORIGIN["file"] member extracted
    into the folder `tmp`."""
    import zipfile

    source = Path(source)
    if not source.is_file():
        raise EdgefillError(f"--detector {source}: no such file")
    if not zipfile.is_zipfile(source):
        if source.suffix.lower() in (".whl", ".zip"):
            raise EdgefillError(f"--detector {source}: not a readable zip (a broken or partial download?)")
        return source
    member = ORIGIN["file"]
    try:
        with zipfile.ZipFile(source) as wheel:
            if member not in wheel.namelist():
                raise EdgefillError(f"--detector {source}: a zip without {member} (mediapipe's wheel has it)")
            out = Path(tmp) / Path(member).name
            out.write_bytes(wheel.read(member))
    except (zipfile.BadZipFile, OSError) as exc:
        raise EdgefillError(f"--detector {source}: unreadable zip ({exc})") from None
    return out


def build_detector(tflite: str | Path, faces_npz: str | Path, say=print) -> tuple[bytes, dict]:
    """tflite (or mediapipe's wheel: tflite_in) -> (ONNX bytes, spec with template and validation)."""
    from edgefill.runtime.imaging.images import read_image

    if not Path(tflite).is_file():
        raise EdgefillError(f"--detector {tflite}: no such file")
    faces_npz = Path(faces_npz)
    if not faces_npz.is_file():
        raise EdgefillError(f"--detector-faces {faces_npz}: no such file (the template is measured on train.npz)")
    samples = np.stack([read_image(p) for p in sorted((Path(__file__).resolve().parents[1] / "samples" /
                                                       "faces").glob("*.png"))])
    with tempfile.TemporaryDirectory() as tmp:
        tflite = tflite_in(tflite, tmp)
        import tflite2onnx  # noqa: F401 - the `train` extra
        onnx_path = Path(tmp) / DETECTOR_FILE
        say(f"converting {tflite.name} with tflite2onnx {tflite2onnx.__version__}")
        convert(tflite, onnx_path)
        spec = detector_spec(_sha256(tflite), f"tflite2onnx {tflite2onnx.__version__}")
        rows = validate(onnx_path, tflite, spec, samples)
        say("detector vs LiteRT: " + ", ".join(f"{r['output']} {r.get('max_rel_diff', r.get('keypoint_max_diff_px')):.2e}"
                                                for r in rows))
        with np.load(faces_npz) as data:
            faces = data["images"][:TEMPLATE_FACES]
        spec["template"] = measure_template(onnx_path, spec, faces)
        spec["template"]["data"] = faces_npz.name
        say(f"template from {spec['template']['found']} of {len(faces)} faces of {faces_npz.name}: "
            f"{spec['template']['points']}")
        spec["validation"] = rows
        return onnx_path.read_bytes(), spec


def kept_detector(source: str | Path) -> tuple[bytes, dict] | None:
    """A bundle source's detector (file bytes, spec), or None."""
    import json

    manifest = Path(source) / "manifest.json"
    if not manifest.is_file():
        return None
    m = json.loads(manifest.read_text())
    if "detector" not in m.get("graphs", {}) or not m.get("detector"):
        return None
    return (Path(source) / m["graphs"]["detector"]["file"]).read_bytes(), m["detector"]


def add_detector(root: Path, manifest: dict, onnx_bytes: bytes, spec: dict) -> None:
    """Write detector.onnx into the bundle folder `root` and describe it in `manifest` (in place)."""
    (root / DETECTOR_FILE).write_bytes(onnx_bytes)
    manifest["files"][DETECTOR_FILE] = _sha256(root / DETECTOR_FILE)
    manifest["graphs"]["detector"] = {
        "file": DETECTOR_FILE, "inputs": {"input": [1, 3, 128, 128]},
        "outputs": {"regressors": [1, 896, 16], "classificators": [1, 896, 1]},
        "doc": "BlazeFace short-range face detector (not trained here; see manifest['detector'])"}
    manifest["detector"] = spec

