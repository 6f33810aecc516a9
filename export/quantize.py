"""int8 graphs in a bundle: static quantization (onnxruntime.quantization), calibrated on train
faces, kept only where the product's quality stays within MAX_DROP_DB hole PSNR.

What is quantized: the refiner's Conv layers (the refiner runs once per frame / image). Measured on
the 2-core AVX2 CPU (no VNNI), batch 1, onnxruntime 1.31 (benchmarks/bench_video.py --graphs):
- the refiner's ConvTranspose layers and the whole generator stay float: onnxruntime's CPU
  provider has no int8 ConvTranspose kernel, so a quantized one runs DequantizeLinear + the float
  ConvTranspose (generator.onnx: 5.3 ms int8 against 3.2 ms float, both with another job on the
  machine);
- weights are 7-bit (reduce_range): with 8-bit weights the AVX2 u8s8 kernel (VPMADDUBSW)
  saturates and the refiner's output lost 18 dB against the float graph (4.2 dB hole PSNR);
  7-bit, per output channel: 36 dB against the float graph;
- NEVER the search step: its gradient (the hand-written VJP through G and D) is what the search
  follows and its loss picks the best z.
- the int8 refiner alone: 1.99 ms against 2.16 (fp16-stored) and 2.33 (fp32) ms; in the video loop
  2.8 against 3.0 ms a frame (samples/results/video_precision_bench.json): small on this CPU, where
  AVX2 has no int8 dot product; CPUs with VNNI (or a GPU's TensorRT) are where int8 pays.
fp16 compute (onnxruntime.transformers.float16, float I/O) gained nothing on this CPU (refiner
2.47 ms against 2.33 float; generator 1.57 against 1.59): not offered.

    quantize_bundle(root, manifest, ["refiner"], faces="train.npz", say=print)

The graph's float form (weights inline as float32, ORT's basic optimisations applied: the fp16
storage's Casts folded, BatchNorm fused) -> quantize_static (QDQ, int8 weights per output channel,
uint8 activations per tensor, MinMax calibration) on CALIB_FACES of train.npz: the inputs the
refiner sees in the product (the pipeline: encoder start + 2 search steps + Poisson blend, on those
faces under the training mask kinds) -> `refiner.int8.onnx`, self-contained; the manifest's graph
entry points at it and the float `refiner.onnx` is removed (the torch fallback keeps reading the
float tensors from refiner.bin).
Then the check: the whole pipeline on HOLDOUT faces of train.npz (never test.npz; disjoint from
the calibration faces), each under a training mask kind, the float bundle against the quantized
one from the same z0: mean hole PSNR of the final images against the truth. A drop above
MAX_DROP_DB fails the export (QuantizationRejected: nothing written). The numbers go in
manifest["quantization"].
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgefill.runtime.errors import EdgefillError

QUANTIZABLE = ("refiner",)
NOT_QUANTIZABLE = {
    "generator": "its ConvTranspose layers have no int8 kernel in onnxruntime's CPU provider (int8 ran slower: "
                 "5.3 against 3.2 ms)",
    "search_step": "its gradient is the search (and its loss picks the best z)",
}
OP_TYPES = ("Conv",)            # the layers with an int8 kernel (ConvTranspose has none on the CPU)
CALIB_FACES = (0, 256)          # train.npz rows used to calibrate
HOLDOUT = (19612, 19812)        # train.npz rows used to check quality (disjoint from the calibration)
MAX_DROP_DB = 0.2
MASK_KINDS = ("center", "random-box", "pattern", "random", "half", "free-form")  # TRAINING_MASK_KINDS
CALIB_STEPS = 2                 # the video default: encoder / previous-z start + 2 steps


class QuantizationRejected(EdgefillError):
    """The int8 graphs cost more than MAX_DROP_DB hole PSNR; `report` holds the numbers."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def parse_graphs(spec: str | Sequence[str] | None) -> list[str]:
    """'refiner,generator' (or a list) -> the graph names, checked; None/'' -> []."""
    if not spec:
        return []
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    for n in names:
        if n not in QUANTIZABLE:
            why = NOT_QUANTIZABLE.get(n, "no such quantizable graph")
            raise EdgefillError(f"--int8 takes {', '.join(QUANTIZABLE)}; not {n}: {why}")
    return list(dict.fromkeys(names))


def float_graph(path: Path, out: Path) -> Path:
    """The graph at `path` (external data resolved) with ORT's basic optimisations applied and its
    weights inline as float32: the quantizer's input. Writes `out`, returns it."""
    import onnx
    import onnxruntime as ort

    inline = out.with_name(out.stem + ".inline.onnx")
    onnx.save(onnx.load(str(path)), str(inline))  # external data read in, written inline
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 4
    ort.InferenceSession(str(inline), so, providers=["CPUExecutionProvider"])
    return out


def _faces(path: str, rows: tuple[int, int]) -> np.ndarray:
    with np.load(path) as data:
        images = data["images"]
        if images.shape[0] < rows[1] or images.shape[1:] != (64, 64, 3):
            raise EdgefillError(f"{path}: expected >= {rows[1]} 64x64 RGB faces (train.npz), got {images.shape}")
        return np.ascontiguousarray(images[rows[0]:rows[1]])


def _masks(n: int, seed: int) -> np.ndarray:
    from edgefill.runtime.imaging.masks import make_mask

    rng = np.random.default_rng(seed)
    return np.stack([make_mask(MASK_KINDS[i % len(MASK_KINDS)], rng, 64) for i in range(n)])


def _run(pipeline, images, masks, steps: int, z0: np.ndarray | None = None, batch: int = 32):
    """The product's path on 64x64 problems: encoder (or random) start, `steps` steps, Poisson
    blend, the refiner -> (z0, best z, searched (blended) uint8, final uint8)."""
    cfg = pipeline.config(steps=steps, restarts=1, start="encoder").replace(blend="poisson")
    start = pipeline.make_start(None)
    outs = {"z0": [], "z": [], "searched": [], "final": []}
    for i in range(0, len(images), batch):
        im, mk = images[i:i + batch], masks[i:i + batch]
        z = pipeline.start(im, mk, cfg, start, list(range(i, i + len(im)))) if z0 is None else z0[i:i + len(im)]
        res = pipeline.run(im, mk, cfg, z0=z, refine=pipeline.has_refiner)
        outs["z0"].append(z)
        outs["z"].append(res.search.z)
        outs["searched"].append(res.searched)
        outs["final"].append(res.final)
    return {k: np.concatenate(v) for k, v in outs.items()}


def calibration_inputs(pipeline, faces: str, name: str, rows: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The named graph's input as the product feeds it, on train faces `rows` (CALIB_FACES)."""
    from edgefill.runtime.imaging.images import refiner_input

    images = _faces(faces, rows or CALIB_FACES)
    masks = _masks(len(images), seed=1)
    got = _run(pipeline, images, masks, CALIB_STEPS)
    if name == "refiner":
        x = refiner_input(got["searched"], masks, pipeline.refiner_channels)
    else:
        raise EdgefillError(f"no calibration for {name}")
    input_name = pipeline.engine.session(name).get_inputs()[0].name
    return {input_name: x}


def quantize_graph(float_path: Path, out: Path, calib: dict[str, np.ndarray], batch: int = 16,
                   per_channel: bool = True) -> Path:
    """Static QDQ quantization of one float graph, MinMax-calibrated on `calib` (input name -> array)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    (name, data), = calib.items()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(data):
                return None
            self.i += batch
            return {name: data[self.i - batch:self.i]}

    quantize_static(str(float_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(OP_TYPES), calibrate_method=CalibrationMethod.MinMax)
    return out


def holdout_quality(float_root: Path, quant_root: Path, faces: str, steps: int = CALIB_STEPS,
                    rows: tuple[int, int] | None = None) -> dict:
    """Mean hole PSNR (dB) of the final images on train faces `rows` (HOLDOUT; every training mask
    kind in turn), float bundle against quantized bundle, the same z0 for both."""
    rows = rows or HOLDOUT
    from edgefill.runtime.core.bundle import open_bundle
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.imaging import metrics

    images = _faces(faces, rows)
    masks = _masks(len(images), seed=2)
    ref = Pipeline(open_bundle(float_root, verify=False), provider="cpu")
    got_f = _run(ref, images, masks, steps)
    got_q = _run(Pipeline(open_bundle(quant_root, verify=False), provider="cpu"), images, masks, steps, z0=got_f["z0"])
    pf = np.asarray(metrics.hole_psnr(got_f["final"], images, masks), np.float64)
    pq = np.asarray(metrics.hole_psnr(got_q["final"], images, masks), np.float64)
    by_kind = {k: round(float(pq[i::len(MASK_KINDS)].mean() - pf[i::len(MASK_KINDS)].mean()), 4)
               for i, k in enumerate(MASK_KINDS)}
    return {"faces": f"train.npz[{rows[0]}:{rows[1]}]", "n": len(images), "mask_kinds": list(MASK_KINDS), "steps": steps,
            "hole_psnr_float": float(pf.mean()), "hole_psnr_int8": float(pq.mean()),
            "drop_db": float(pf.mean() - pq.mean()), "delta_by_kind_db": by_kind,
            "max_abs_diff_uint8": int(np.abs(got_f["final"].astype(np.int16) - got_q["final"]).max())}


def quantize_bundle(root: str | Path, manifest: dict, graphs: Sequence[str], faces: str,
                    say: Callable[[str], None] | None = None, max_drop_db: float | None = None,
                    calib_rows: tuple[int, int] | None = None, holdout_rows: tuple[int, int] | None = None) -> dict:
    """Quantize `graphs` of the bundle folder `root` in place (module docstring); `manifest` is
    updated (graph files, `files` hashes, "quantization"), not written. Raises
    QuantizationRejected when the hole PSNR drop exceeds max_drop_db. calib_rows, holdout_rows:
    train.npz rows (default CALIB_FACES, HOLDOUT; they must not overlap). Returns the report."""
    import json

    from edgefill.runtime.core.bundle import MANIFEST, open_bundle, sha256_file
    from edgefill.runtime.core.pipeline import Pipeline

    log = say or (lambda s: None)
    root = Path(root)
    max_drop_db = MAX_DROP_DB if max_drop_db is None else max_drop_db
    calib_rows, holdout_rows = calib_rows or CALIB_FACES, holdout_rows or HOLDOUT
    if calib_rows[0] < holdout_rows[1] and holdout_rows[0] < calib_rows[1]:
        raise EdgefillError(f"calibration rows {calib_rows} overlap the hold-out rows {holdout_rows}")
    graphs = parse_graphs(graphs)
    if not graphs:
        return {}
    if not Path(faces).is_file():
        raise EdgefillError(f"--int8-faces {faces}: not found (train.npz: the calibration and the check use it)")
    missing = [g for g in graphs if g not in manifest["graphs"]]
    if missing:
        raise EdgefillError(f"--int8 {','.join(missing)}: the bundle has no such graph")
    with tempfile.TemporaryDirectory(prefix="edgefill-int8-") as tmp_name:
        tmp = Path(tmp_name)
        float_root = tmp / "float"
        shutil.copytree(root, float_root)  # the float bundle as written, the reference of the check
        (float_root / MANIFEST).write_text(json.dumps(manifest))
        ref = Pipeline(open_bundle(float_root, verify=False), provider="cpu")
        report = {"format": "QDQ", "op_types": list(OP_TYPES), "weights": "int8 (7-bit range), per output channel",
                  "activations": "uint8, per tensor",
                  "calibration": {"method": "MinMax", "faces": f"train.npz[{calib_rows[0]}:{calib_rows[1]}]",
                                  "mask_kinds": list(MASK_KINDS), "steps": CALIB_STEPS},
                  "graphs": {}, "max_drop_db": max_drop_db}
        for name in graphs:
            log(f"int8: calibrating {name} on {report['calibration']['faces']}")
            calib = calibration_inputs(ref, faces, name, calib_rows)
            src = float_graph(root / manifest["graphs"][name]["file"], tmp / f"{name}.float.onnx")
            out_file = f"{name}.int8.onnx"
            quantize_graph(src, root / out_file, calib)
            old = manifest["graphs"][name]["file"]
            manifest["graphs"][name]["file"] = out_file
            manifest["files"].pop(old, None)
            (root / old).unlink(missing_ok=True)
            manifest["files"][out_file] = sha256_file(root / out_file)
            report["graphs"][name] = {"file": out_file, "bytes": (root / out_file).stat().st_size}
        quant_root = tmp / "quant"
        shutil.copytree(root, quant_root)
        (quant_root / MANIFEST).write_text(json.dumps(manifest))
        log(f"int8: checking {', '.join(graphs)} on train.npz[{holdout_rows[0]}:{holdout_rows[1]}]")
        report["quality"] = holdout_quality(float_root, quant_root, faces, rows=holdout_rows)
    q = report["quality"]
    log(f"int8 {', '.join(graphs)}: hole PSNR {q['hole_psnr_float']:.3f} -> {q['hole_psnr_int8']:.3f} dB "
        f"(drop {q['drop_db']:+.3f}, limit {max_drop_db})")
    if q["drop_db"] > max_drop_db:
        raise QuantizationRejected(f"int8 {', '.join(graphs)} costs {q['drop_db']:.2f} dB hole PSNR on the train "
                                   f"hold-out (limit {max_drop_db}); nothing written", report)
    manifest["quantization"] = report
    return report
