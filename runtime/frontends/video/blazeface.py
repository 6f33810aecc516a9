"""The bundle's optional face detector: BlazeFace short-range (MediaPipe, Apache-2.0), converted
to ONNX once at export time (edgefill.export.detector) and run here by the bundle's onnxruntime
engine, like every other graph. What the graph means is the manifest's "detector" entry (a
declarative spec written by the export; DETECTOR_SPEC in edgefill.export.detector):

    input        (1,3,128,128) float32 RGB, x / 127.5 - 1; the frame letterboxed into the square
                 (scaled to fit, centred, the padding black = -1)
    outputs      regressors (1,896,16): box centre x, y, width, height, then 6 keypoints (x, y),
                 all in input pixels as offsets from an anchor centre; classificators (1,896,1)
                 logits
    anchors      SSD anchors of fixed size at cell centres ((x + 0.5) / g, (y + 0.5) / g): for
                 stride 8 (16x16 grid) 2 per cell, then for stride 16 (8x8 grid) 6 per cell,
                 row by row, in that order (896 in all)
    decoding     value / 128 + anchor centre (box size: value / 128), scores sigmoid(clip(logit,
                 -100, 100)) >= min_score, then weighted non-maximum suppression (overlapping
                 boxes, IoU >= nms_iou, averaged by score, as MediaPipe does)
    keypoints    0 the person's right eye (on the image's left), 1 left eye, 2 nose tip,
                 3 mouth centre, 4 right ear tragion, 5 left ear tragion

BlazeFace(engine, spec)(rgb) -> [Face(score, box (x, y, w, h), keypoints (6,2))] in frame pixels,
best first. decode() is pure numpy (tests and the export's template measurement use it).

On the CPU provider the detector gets its own one-thread session (DETECTOR_THREADS): it runs on the
video reader thread beside the search's thread pool, and one thread ran the graph as fast as two
(1.50 against 1.56 ms p50, 640x480 frames, 2-core CPU) without a second pool waking on a busy core.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...errors import EdgefillError

DETECTOR_THREADS = 1
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass
class Face:
    score: float
    box: tuple[float, float, float, float]  # x, y, w, h (frame pixels)
    keypoints: np.ndarray  # float32 (6,2) frame pixels, KEYPOINTS order


def anchors(spec: dict) -> np.ndarray:
    """float32 (A,2) anchor centres in [0,1] (x, y), in the regressors' order (module docstring)."""
    size = int(spec["input"]["size"])
    out = []
    for stride, per_cell in spec["anchors"]["layers"]:
        g = size // int(stride)
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs.ravel() + 0.5) / g, (ys.ravel() + 0.5) / g], axis=1)
        out.append(np.repeat(centres, int(per_cell), axis=0))
    a = np.concatenate(out).astype(np.float32)
    if len(a) != int(spec["anchors"]["count"]):
        raise EdgefillError(f"detector spec: {len(a)} anchors, the graph has {spec['anchors']['count']}")
    return a


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """box (4,) and boxes (N,4) as x0, y0, x1, y1 -> IoU (N,)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def decode(regressors: np.ndarray, logits: np.ndarray, spec: dict, anchor_xy: np.ndarray | None = None,
           min_score: float | None = None) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Raw outputs (896,16), (896,1) -> [(score, box x0,y0,x1,y1 in [0,1], keypoints (6,2) in
    [0,1])] after weighted NMS, best first (coordinates of the 128x128 input, normalised)."""
    dec = spec["decoding"]
    a = anchors(spec) if anchor_xy is None else anchor_xy
    scale = float(dec["scale"])
    r = np.asarray(regressors, np.float32).reshape(len(a), -1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64).reshape(-1), -dec["clip"], dec["clip"])))
    keep = scores >= (dec["min_score"] if min_score is None else min_score)
    if not keep.any():
        return []
    r, s, a = r[keep], scores[keep], a[keep]
    cx, cy = a[:, 0] + r[:, 0] / scale, a[:, 1] + r[:, 1] / scale
    w, h = r[:, 2] / scale, r[:, 3] / scale
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = a[:, None, :] + r[:, 4:4 + 2 * len(KEYPOINTS)].reshape(-1, len(KEYPOINTS), 2) / scale
    order = np.argsort(-s)
    boxes, kps, s = boxes[order], kps[order], s[order]
    out = []
    remaining = np.ones(len(s), bool)
    for i in range(len(s)):
        if not remaining[i]:
            continue
        overlap = remaining & (_iou(boxes[i], boxes) >= dec["nms_iou"])
        wts = s[overlap][:, None]
        box = (boxes[overlap] * wts).sum(0) / wts.sum()
        kp = (kps[overlap] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((float(s[i]), box, kp))
        remaining &= ~overlap
    return out


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """RGB uint8 (H,W,3) -> (float32 (1,3,size,size) in [-1,1], scale, pad_x, pad_y): the frame
    scaled to fit a size x size square, centred, the rest black (-1). Frame pixel =
    (input pixel - pad) / scale."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[py:py + nh, px:px + nw] = small
    x = canvas.astype(np.float32) / 127.5 - 1.0
    x[:py], x[py + nh:], x[:, :px], x[:, px + nw:] = -1.0, -1.0, -1.0, -1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), scale, float(px), float(py)


class BlazeFace:
    """The bundle's detector graph + its spec (module docstring). engine: the pipeline's Engine."""

    def __init__(self, engine, spec: dict | None = None):
        self.engine = engine
        self.spec = spec or engine.bundle.manifest.get("detector")
        if not self.spec:
            raise EdgefillError(f"bundle {engine.bundle.root} has no detector spec")
        self.size = int(self.spec["input"]["size"])
        self.anchor_xy = anchors(self.spec)
        self.input_name = self.spec["input"]["name"]
        self.outputs = (self.spec["outputs"]["regressors"], self.spec["outputs"]["scores"])
        self._session = None
        if getattr(engine, "device", None) == "cpu":
            import onnxruntime as ort

            from ...core.engine import session_options

            try:
                self._session = ort.InferenceSession(str(engine.bundle.graph_path("detector")),
                                                     session_options(DETECTOR_THREADS),
                                                     providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001 - the engine's own session reports what is wrong
                self._session = None

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if self._session is None:
            return self.engine.run("detector", {self.input_name: x})
        return dict(zip(self.outputs, self._session.run(list(self.outputs), {self.input_name: x})))

    def __call__(self, rgb: np.ndarray, min_score: float | None = None) -> list[Face]:
        x, scale, px, py = letterbox(rgb, self.size)
        res = self._run(x)
        found = decode(res[self.outputs[0]][0], res[self.outputs[1]][0], self.spec, self.anchor_xy, min_score)
        faces = []
        for score, box, kp in found:
            b = (box * self.size - [px, py, px, py]) / scale
            k = (kp * self.size - [px, py]) / scale
            faces.append(Face(score, (float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])),
                              k.astype(np.float32)))
        return faces
