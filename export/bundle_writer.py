"""Checkpoint(s) -> a validated bundle folder (format: runtime/bundle.py's docstring).

export_bundle builds the bundle in a temporary folder beside `out`, validates it there
(validate.py), and only then renames it onto `out`: a failed export leaves nothing at `out`
(an existing bundle there is kept). Same checkpoint + same options -> byte-identical files
(the manifest's `files` hashes repeat; the manifest itself also holds validation numbers and
timings, and is not hashed).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import torch

from edgefill.runtime import __version__
from edgefill.runtime.atomic import swap_dir
from edgefill.runtime.core.bundle import FORMAT, FORMAT_VERSION, MANIFEST, open_bundle, sha256_file
from edgefill.runtime.errors import EdgefillError
from edgefill.runtime.imaging.masks import IMPORTANCE_WINDOW
from edgefill.runtime.core.refine_config import RefineConfig
from edgefill.runtime.core.search_config import SearchConfig
from edgefill.train.checkpoint import load_checkpoint
from edgefill.train.config import EncoderTrainConfig, RefinerTrainConfig, nested_from_dict, to_dict
from edgefill.train.encoder import Encoder
from edgefill.train.gan_source import is_bundle, load_gan_source
from edgefill.train.refiner import build_refiner

from .onnx_export import export_graph
from .specs import OPSET, GraphSpec, all_specs
from .validate import TorchModels, format_table, rows_as_dicts, validate_bundle
from .weights import WeightStore
from .wrappers import DiscriminatorExport, EncoderExport, GeneratorExport, RefinerExport, SearchStep

EXAMPLE_BATCH = 2
MODEL_PREFIXES = ("generator", "discriminator", "refiner", "encoder", "samples_refiner")  # TorchModels fields = prefixes


class ValidationFailed(EdgefillError):
    """The exported graphs do not match torch; `table` holds the printed validation table."""

    def __init__(self, message: str, table: str):
        super().__init__(message)
        self.table = table


def _load_state(module: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise EdgefillError(f"{what} weights do not fit its config: {first}") from None
    return module.eval()


def _load_refiner(path: str, flag: str, role: str = "refiner") -> tuple[torch.nn.Module, dict]:
    """A refiner run's eval-mode refiner and its training record for the manifest; or, from a
    bundle, that bundle's `role` ("refiner" or "samples_refiner") with its manifest record, so a
    stack retrained on a new generator can keep a refiner that is not retrained."""
    if is_bundle(path):
        source = load_gan_source(path, flag)
        module = source.refiner if role == "refiner" else source.samples_refiner
        if module is None:
            raise EdgefillError(f"{flag}: the bundle {path} has no {role.replace('_', ' ')}")
        return module, _bundle_record(path, role)
    rk = load_checkpoint(path)
    if rk.kind != "refiner":
        raise EdgefillError(f"{path} is a {rk.kind} checkpoint; {flag} takes a refiner checkpoint")
    R = _load_state(build_refiner(nested_from_dict(RefinerTrainConfig, rk.config).refiner),
                    rk.module_state("refiner"), "refiner")
    return R, refiner_record(path, rk)


def refiner_record(path: str, rk=None, depth: int = 0) -> dict:
    """How the refiner at `path` (a refiner run or its checkpoint/) was trained, for the manifest:
    its epochs and recipe, and under "init" the record of the weights it started from
    (`--init-refiner`), so a chain of fine-tunes stays readable from the shipped bundle."""
    rk = rk if rk is not None else load_checkpoint(path, kind="refiner")
    cfg = nested_from_dict(RefinerTrainConfig, rk.config)
    record = {"checkpoint": str(Path(path)), "epochs_planned": cfg.epochs, "epoch": rk.state.get("epoch"),
              "steps": rk.state.get("step"), "lr": cfg.lr, "fill": cfg.fill, "gan": rk.state.get("gan"),
              "data": rk.state.get("data"), "keep_weight": cfg.keep_weight, "best_of": cfg.best_of,
              "samples_per_mask": cfg.samples,
              "seed": cfg.seed, "photometric": cfg.photometric}
    return _with_init(record, rk.state.get("init"), "refiner", refiner_record, depth)


def _bundle_record(path: str, role: str) -> dict:
    """A bundle's manifest record of how its `role` (refiner, samples_refiner, encoder) was trained."""
    return {"bundle": str(path), **open_bundle(path).manifest.get("training", {}).get(role, {})}


def _with_init(record: dict, init: str | None, role: str, record_of: Callable, depth: int) -> dict:
    """record plus, under "init", the record of the run or bundle (its manifest's training[role])
    that training started from; a chain too long or a run no longer on this machine gives its path."""
    if init is None:
        return record
    if depth >= 8 or not Path(init).exists():
        record["init"] = {"path": init}
    elif is_bundle(init):
        record["init"] = _bundle_record(init, role)
    else:
        record["init"] = record_of(init, depth=depth + 1)
    return record


def average_refiners(base: torch.nn.Module, others: Sequence[tuple[str, torch.nn.Module]]) -> torch.nn.Module:
    """`base` holding the mean of its own and the `others`' ((path, module) pairs) floating-point
    weights and batch-norm statistics (a weight average, like SWA: points of one fine-tuning
    chain sit in one basin, and their mean refines better than either at no run-time cost);
    integer buffers stay base's. A refiner of another architecture is one clear error."""
    state = base.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    states = []
    for path, module in others:
        other = module.state_dict()
        if {k: tuple(v.shape) for k, v in other.items()} != shapes:
            raise EdgefillError(f"--average-refiner: {path} is not the same refiner architecture as the refiner")
        states.append(other)
    averaged = {k: (torch.stack([v.double()] + [o[k].double() for o in states]).mean(0).to(v.dtype)
                    if v.is_floating_point() else v) for k, v in state.items()}
    base.load_state_dict(averaged)
    return base


def load_models(checkpoint: str, refiner: str | None, encoder: str | None = None,
                samples_refiner: str | None = None, average_refiner: Sequence[str] = ()
                ) -> tuple[TorchModels, dict, dict, SearchConfig | None]:
    """Eval-mode torch models from a GAN checkpoint or an existing bundle (train/gan_source.py),
    optionally refiner, encoder and samples-refiner checkpoints (a bundle source keeps its own
    unless one is given), the refiner's weights averaged with `average_refiner`'s refiner runs
    or bundles (average_refiners), plus the training info recorded in the manifest and the
    source bundle's encoder-start search settings ({} for a GAN run; kept with a new encoder) and its
    random-start search defaults (None for a GAN run)."""
    source = load_gan_source(checkpoint)
    G, D, R, training = source.generator, source.discriminator, source.refiner, dict(source.training)
    S = source.samples_refiner
    # a new encoder keeps the source's encoder-start search settings (--encoder-steps/-restarts
    # replace them): dropping them fell back to the random start's search (200 steps x 2)
    E, encoder_start = (source.encoder if encoder is None else None), dict(source.encoder_start or {})
    if E is None:
        training.pop("encoder", None)
    if refiner is not None:
        R, training["refiner"] = _load_refiner(refiner, "--refiner")
    if average_refiner:
        if R is None:
            raise EdgefillError("--average-refiner needs a refiner (--refiner, or a bundle source with one)")
        loaded = [(path, *_load_refiner(path, "--average-refiner")) for path in average_refiner]
        R = average_refiners(R, [(path, module) for path, module, _ in loaded])
        training["refiner"] = {**training.get("refiner", {}), "averaged_with": [record for _, _, record in loaded]}
    if samples_refiner is not None:
        S, training["samples_refiner"] = _load_refiner(samples_refiner, "--samples-refiner", "samples_refiner")
    if S is not None and R is None:
        raise EdgefillError("--samples-refiner needs a refiner too (--refiner, or a bundle source with one): "
                            "one sample is refined by the bundle's refiner")
    if encoder is not None:
        ek = load_checkpoint(encoder)
        if ek.kind != "encoder":
            raise EdgefillError(f"{encoder} is a {ek.kind} checkpoint; --encoder takes an encoder checkpoint")
        ecfg = nested_from_dict(EncoderTrainConfig, ek.config)
        if ecfg.encoder.z_dim != G.cfg.z_dim:
            raise EdgefillError(f"the encoder gives z_dim {ecfg.encoder.z_dim}, the generator takes {G.cfg.z_dim}")
        E = _load_state(Encoder(ecfg.encoder), ek.module_state("encoder"), "encoder")
        training["encoder"] = encoder_record(encoder, ek)
    return TorchModels(G, D, R, E, S), training, encoder_start, source.search


def encoder_record(path: str, ek=None, depth: int = 0) -> dict:
    """How the encoder at `path` (an encoder run or its checkpoint/) was trained, for the manifest:
    its steps and recipe, and under "init" the record of the weights it started from
    (`--init-encoder`): another encoder run's record, recursively, or a bundle's own manifest
    record, so a chain of fine-tunes stays readable from the shipped bundle."""
    ek = ek if ek is not None else load_checkpoint(path, kind="encoder")
    cfg = nested_from_dict(EncoderTrainConfig, ek.config)
    record = {"checkpoint": str(Path(path)), "steps": ek.state.get("step"),
              "synthetic_steps": cfg.synthetic_steps, "real_steps": cfg.real_steps, "batch_size": cfg.batch_size,
              "lr": cfg.lr, "seed": cfg.seed, "hole_weight": cfg.hole_weight, "gan": ek.state.get("gan"),
              "data": ek.state.get("data")}
    return _with_init(record, ek.state.get("init"), "encoder", encoder_record, depth)


def _named_tensors(models: TorchModels) -> dict[str, np.ndarray]:
    out = {}
    for prefix in MODEL_PREFIXES:
        module = getattr(models, prefix)
        if module is not None:
            out.update({f"{prefix}.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()})
    return out


def _rounded_models(models: TorchModels, store: WeightStore) -> TorchModels:
    """Copies of the models holding exactly the weights the graphs compute with."""
    out = []
    for prefix in MODEL_PREFIXES:
        module = getattr(models, prefix)
        if module is None:
            out.append(None)
            continue
        clone = copy.deepcopy(module)
        state = {k: torch.from_numpy(store.as_float32(f"{prefix}.{k}")).to(v.dtype)
                 for k, v in module.state_dict().items()}
        out.append(_load_state(clone, state, prefix))
    return TorchModels(*out)


def _example_inputs(spec: GraphSpec) -> tuple:
    gen = torch.Generator().manual_seed(0)
    args = []
    for name, dims in spec.inputs:
        shape = spec.concrete(dims, EXAMPLE_BATCH)
        args.append(torch.rand(shape, generator=gen) if shape else torch.tensor(0.5))
    return tuple(args)


def build_graphs(models: TorchModels, specs: dict[str, GraphSpec], precision: str) -> dict[str, onnx.ModelProto]:
    wrappers = {"generator": GeneratorExport(models.generator),
                "discriminator": DiscriminatorExport(models.discriminator),
                "refiner": RefinerExport(models.refiner) if models.refiner is not None else None,
                "encoder": EncoderExport(models.encoder) if models.encoder is not None else None,
                "samples_refiner": (RefinerExport(models.samples_refiner, "samples_refiner")
                                    if models.samples_refiner is not None else None),
                "search_step": SearchStep(models.generator, models.discriminator)}
    return {name: export_graph(wrappers[name], _example_inputs(spec), spec, {"precision": precision})
            for name, spec in specs.items()}


def _prepare_out(out: Path) -> None:
    if out.is_file():
        raise EdgefillError(f"--out {out} is a file; a bundle is a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise EdgefillError(f"--out {out} exists and is not an edgefill bundle; refusing to overwrite it")


def export_bundle(checkpoint: str, out: str, refiner: str | None = None, validate: bool = True,
                  progress: bool = False, *, fp16: bool = False, search: SearchConfig | None = None,
                  say: Callable[[str], None] | None = None, encoder: str | None = None,
                  encoder_search: dict | None = None, detector: str | None = None,
                  detector_faces: str | None = None, int8=None, int8_faces: str | None = None,
                  search_overrides: dict | None = None, samples_refiner: str | None = None,
                  average_refiner: Sequence[str] = ()) -> dict:
    """Export a GAN checkpoint or a bundle (+ optional refiner and encoder checkpoints) to a
    bundle folder at `out`. encoder_search: the search settings for a start near the answer
    (encoder or previous frame), e.g. {"steps": 20, "restarts": 1}, stored as the manifest's
    search.encoder_start (runtime Bundle.search_defaults_for); a bundle source keeps its encoder
    unless --encoder replaces it, and these settings unless the given values replace them.
    detector: MediaPipe's face_detection_short_range.tflite, converted, validated against LiteRT
    and described in the manifest (export/detector.py; its alignment template measured on
    `detector_faces`, train.npz), or a bundle folder whose converted detector and spec are copied
    as they are (how a new GAN run ships the same detector); a bundle source keeps its detector
    unless one is given.

    int8: graphs to quantize to int8 after validation ("refiner"; export/quantize.py: static, QDQ,
    calibrated on `int8_faces` = train.npz, checked on its hold-out rows: a hole PSNR drop above
    0.2 dB fails the export, nothing written; the numbers go in manifest["quantization"]).
    samples_refiner: a refiner run trained on K samples per mask (`train refiner
    --samples-per-mask K --best-of B`, or `--keep-weight W`), shipped as samples_refiner.onnx: the
    runtime refines K > 1 samples with it and one sample with the refiner (runtime.core.pipeline).
    average_refiner: refiner runs or bundles of the refiner's architecture whose weights are
    averaged with the refiner's (average_refiners; recorded under training.refiner.averaged_with).
    search: the random-start search defaults written to the manifest (default: a bundle source's
    own, so a re-export keeps its blend, lam, lr, steps; SearchConfig()'s for a GAN run);
    search_overrides: {field: value} applied on top (the export command's --steps, --blend, ...;
    None values ignored).
    fp16: weights stored in float16 (compute and graph I/O stay float32). validate: run
    validate.py's checks and fail (ValidationFailed, nothing written at `out`) unless all pass.
    progress: print what is happening (through `say`, default print).
    Returns a summary: bundle path, precision, file sizes, validation rows and table, timing,
    and the manifest.
    """
    say_fn = say or print
    log = say_fn if progress else (lambda s: None)
    out_path = Path(out)
    _prepare_out(out_path)
    precision = "fp16" if fp16 else "fp32"
    models, training, kept_start, kept_search = load_models(checkpoint, refiner, encoder, samples_refiner, average_refiner)
    search = (search or kept_search or SearchConfig()).replace(**(search_overrides or {}))
    encoder_search = {**kept_start, **{k: v for k, v in (encoder_search or {}).items() if v is not None}}
    specs = all_specs(models.generator.cfg.z_dim, models.refiner is not None, models.encoder is not None,
                      models.refiner.cfg.in_channels if models.refiner is not None else 3,
                      models.samples_refiner.cfg.in_channels if models.samples_refiner is not None else None)

    from .detector import add_detector, build_detector, kept_detector

    detector_bundle = detector is not None and (Path(detector) / "manifest.json").is_file()
    if detector is not None and not detector_bundle and detector_faces is None:
        raise EdgefillError("--detector needs --detector-faces (train.npz: the alignment template is measured on it)")
    from .quantize import parse_graphs, quantize_bundle

    int8 = parse_graphs(int8)
    if int8 and int8_faces is None:
        raise EdgefillError("--int8 needs --int8-faces (train.npz: calibration and the quality check use it)")
    if int8 and models.refiner is None:
        raise EdgefillError("--int8 refiner: the bundle has no refiner")
    if detector_bundle:
        det = kept_detector(detector)
        if det is None:
            raise EdgefillError(f"--detector {detector}: that bundle has no detector")
    else:
        det = build_detector(detector, detector_faces, log) if detector is not None else kept_detector(checkpoint)
    log(f"exporting {', '.join(specs)} ({precision}, opset {OPSET})")
    store = WeightStore(_named_tensors(models), precision)
    graphs = {name: store.externalise(model) for name, model in build_graphs(models, specs, precision).items()}

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for weight_name, contents in store.to_bytes().items():
            (tmp / weight_name).write_bytes(contents)
        for name, model in graphs.items():
            (tmp / specs[name].file).write_bytes(model.SerializeToString())
        files = {n: sha256_file(tmp / n) for n in [*store.sizes, *(s.file for s in specs.values())]}
        manifest = _manifest(models, specs, store, precision, search, training, files, encoder_search)
        if det is not None:
            add_detector(tmp, manifest, *det)  # adds detector.onnx to `files` too
        _write_manifest(tmp, manifest)
        rows, timing, table = [], {}, ""
        if validate:
            ref = _rounded_models(models, store) if fp16 else models
            rows, timing = validate_bundle(tmp, specs, ref, models if fp16 else None, precision, search, log)
            table = format_table(rows)
            failed = [r for r in rows if not r.ok]
            manifest["validation"] = {"passed": not failed, "precision": precision, "rows": rows_as_dicts(rows),
                                      "timing": timing}
            if failed:
                raise ValidationFailed(f"export validation failed: {len(failed)} of {len(rows)} checks out of "
                                       f"tolerance (first: {failed[0].check} / {failed[0].output}); "
                                       f"nothing written to {out_path}", table)
            _write_manifest(tmp, manifest)
        if int8:
            quantize_bundle(tmp, manifest, int8, int8_faces, say=log)  # QuantizationRejected: nothing written
            files = manifest["files"]
            _write_manifest(tmp, manifest)
        swap_dir(tmp, out_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = {n: (out_path / n).stat().st_size for n in [*files, MANIFEST]}
    log(f"wrote {out_path} ({sum(sizes.values()) / 1e6:.2f} MB)")
    return {"bundle": str(out_path), "precision": precision, "sizes": sizes, "int8": int8,
            "quantization": manifest.get("quantization"), "total_bytes": sum(sizes.values()),
            "validated": validate, "validation": rows_as_dicts(rows), "table": table, "timing": timing,
            "manifest": manifest}


def _manifest(models: TorchModels, specs: dict[str, GraphSpec], store: WeightStore, precision: str,
              search: SearchConfig, training: dict, files: dict, encoder_search: dict | None = None) -> dict:
    start_overrides = None
    if models.encoder is not None:
        start_overrides = {k: v for k, v in (encoder_search or {}).items() if v is not None}
        search.replace(**start_overrides)  # validates the values (EdgefillError on a bad one)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "toolkit_version": __version__,
        "models": {"generator": to_dict(models.generator.cfg), "discriminator": to_dict(models.discriminator.cfg),
                   "refiner": to_dict(models.refiner.cfg) if models.refiner is not None else None,
                   "encoder": to_dict(models.encoder.cfg) if models.encoder is not None else None,
                   **({"samples_refiner": to_dict(models.samples_refiner.cfg)}
                      if models.samples_refiner is not None else {})},
        "image": {"size": 64, "color_order": "RGB", "layout": "NCHW", "dtype": "float32", "range": [-1, 1],
                  "normalisation": "x / 127.5 - 1", "mask": "uint8 HW, 255 = fill"},
        "search": {**search.to_dict(),
                   "loss": {"form": "sum|W * (G(z) - y)| + lam * prior(D(G(z)))",
                            "prior_forms": {"lsgan": "(s - 1)^2", "log": "log(1 - sigmoid(s)) = -softplus(s)"},
                            "prior_code": {"lsgan": 0.0, "log": 1.0}},
                   "importance_weights": {"computed_by": "runtime", "window": IMPORTANCE_WINDOW},
                   "step_batch": "dynamic",
                   "encoder_start": start_overrides},
        "refine": RefineConfig().to_dict(),
        "precision": precision,
        "opset": OPSET,
        "graphs": {name: spec.manifest_entry() for name, spec in specs.items()},
        "tensors": store.index(),
        "files": files,
        "validation": None,
        "metrics": {},
        "training": training,
        "export": {"exporter": "torch.onnx.export(dynamo=False, do_constant_folding=False)",
                   "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                   "weights": "weights.bin (G, D), refiner.bin (refiners), encoder.bin: shared external data"
                              + ("; float16 storage, Cast to float32 in-graph" if precision == "fp16" else "")},
    }


def _write_manifest(root: Path, manifest: dict) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
