"""The model bundle: a self-describing folder (or a .zip of one). Format version 1.

Layout:
    manifest.json        what the bundle is (below); not itself hashed
    weights.bin          the generator's and critic's tensors once, little-endian, 64-byte
                         aligned: the ONNX external data of generator, discriminator and
                         search_step (graphs point into it, so shared weights are stored once),
                         and the source of the torch fallback's weights (via manifest["tensors"])
    refiner.bin          the refiners' tensors, the same way (present when there is a refiner)
    generator.onnx       z (N,z_dim) f32 in [-1,1]            -> image (N,3,64,64) f32 in [-1,1]
    discriminator.onnx   image (N,3,64,64) f32                -> score (N,1) f32 (raw)
    refiner.onnx         image (N,C,64,64) f32                -> image (N,3,64,64) f32 (optional; C = 3,
                         4 or 7: runtime.imaging.images.refiner_input)
    samples_refiner.onnx the same for K > 1 samples per hole: a refiner trained to keep the
                         samples' differences (optional; the pipeline's run_samples uses it)
    search_step.onnx     one Adam step of the latent search (STEP_INPUTS -> STEP_OUTPUTS)

manifest.json keys:
    format "edgefill-bundle", format_version 1, toolkit_version,
    models: {"generator": GeneratorConfig dict, "discriminator": ..., "refiner": ... or null,
             "encoder": ... or null, "samples_refiner": ... (when shipped)},
    image: {"size": 64, "color_order": "RGB", "layout": "NCHW", "dtype": "float32",
            "range": [-1, 1], "normalisation": "x / 127.5 - 1", "mask": "uint8 HW, 255 = fill"},
    search: SearchConfig dict (the defaults), plus "importance_weights": {"computed_by":
            "runtime", "window": 7},
    refine: RefineConfig dict (how the refiner is applied; absent: RefineConfig's defaults),
    precision: "fp32" | "fp16" (fp16: weights stored in half precision; graph inputs and
               outputs stay float32),
    opset: int,
    graphs: {name: {"file": ..., "inputs": {name: [dims]}, "outputs": {name: [dims]}}},
    tensors: {"generator.<state_dict key>": {"file", "offset", "nbytes", "shape", "dtype"}, ...}
             (generator./discriminator./refiner. state dicts incl. BatchNorm buffers),
    files: {file name: sha256 hex} for every file but manifest.json,
    validation: the export's validation table, metrics: evaluation results (optional),
    training: what the weights were trained on and for how long.

Search-step graph (all float32 unless noted; B = batch = images x restarts; [] = scalar):
    inputs  z (B,Z), m (B,Z), v (B,Z), t (B,), y (B,3,64,64), W (B,1,64,64),
            lam [], lr [], beta1 [], beta2 [], eps [], prior [] (0.0 = lsgan, 1.0 = log)
    outputs z_next, m_next, v_next, t_next (same shapes as inputs), loss (B,) and image
            (B,3,64,64): the loss and G(z) at the INPUT z (before the update).
    Exactly the formulas of runtime.core.torch_search.search_loss and adam_step.

This module reads bundles (numpy + json only). Writing them is edgefill.export's job.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgefillError
from .refine_config import RefineConfig
from .search_config import SearchConfig

FORMAT = "edgefill-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.bin"
REFINER_WEIGHTS = "refiner.bin"
ENCODER_WEIGHTS = "encoder.bin"
GRAPHS = ("generator", "discriminator", "refiner", "search_step", "encoder", "samples_refiner")  # last 3 optional
STEP_INPUTS = ("z", "m", "v", "t", "y", "W", "lam", "lr", "beta1", "beta2", "eps", "prior")
STEP_OUTPUTS = ("z_next", "m_next", "v_next", "t_next", "loss", "image")
PRIOR_CODE = {"lsgan": 0.0, "log": 1.0}
DEFAULT_BUNDLE_ENV = "EDGEFILL_BUNDLE"
PACKAGED_DEFAULT = Path(__file__).resolve().parent.parent / "bundles" / "default"  # runtime/bundles/default


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Bundle:
    """An opened, verified bundle. `root` is a folder (a .zip is extracted to a cache first)."""

    root: Path
    manifest: dict

    @property
    def search_defaults(self) -> SearchConfig:
        """The search settings for a random start (manifest "search")."""
        return SearchConfig.from_dict(self.manifest.get("search", {}))

    def search_defaults_for(self, start: str) -> SearchConfig:
        """The search settings for a start ("random", "encoder", "given"): the random-start defaults
        with the manifest's "search"."encoder_start" overrides (steps, restarts, lr, ...) for a
        start near the answer (encoder, or a video's previous frame), when the bundle has them."""
        base = self.search_defaults
        overrides = self.manifest.get("search", {}).get("encoder_start") or {}
        if start == "random" or not overrides:
            return base
        return base.replace(**{k: v for k, v in overrides.items() if k in base.to_dict()})

    @property
    def refine_defaults(self) -> RefineConfig:
        """How the refiner is applied (manifest "refine"; RefineConfig's defaults when absent)."""
        return RefineConfig.from_dict(self.manifest.get("refine"))

    @property
    def z_dim(self) -> int:
        return int(self.manifest["models"]["generator"]["z_dim"])

    @property
    def precision(self) -> str:
        return self.manifest.get("precision", "fp32")

    def has_graph(self, name: str) -> bool:
        return name in self.manifest.get("graphs", {})

    def graph_path(self, name: str) -> Path:
        if not self.has_graph(name):
            raise EdgefillError(f"bundle {self.root} has no {name} graph")
        return self.root / self.manifest["graphs"][name]["file"]

    def tensor(self, name: str) -> np.ndarray:
        """A weight tensor by state-dict name (e.g. 'generator.convs.0.weight'), as float32."""
        meta = self.manifest.get("tensors", {}).get(name)
        if meta is None:
            raise EdgefillError(f"bundle {self.root} has no tensor {name!r}")
        with open(self.root / meta.get("file", WEIGHTS), "rb") as f:
            f.seek(int(meta["offset"]))
            raw = f.read(int(meta["nbytes"]))
        return np.frombuffer(raw, dtype=np.dtype(meta["dtype"]).newbyteorder("<")).reshape(meta["shape"]).astype(
            np.float32)

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        """All tensors of one model ('generator', 'discriminator', 'refiner'), prefix stripped."""
        p = prefix + "."
        return {k[len(p):]: self.tensor(k) for k in self.manifest.get("tensors", {}) if k.startswith(p)}


def default_bundle_path() -> Path:
    """$EDGEFILL_BUNDLE if set, else the bundle shipped inside the package."""
    env = os.environ.get(DEFAULT_BUNDLE_ENV)
    return Path(env) if env else PACKAGED_DEFAULT


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgefill" / "bundles"


def _extract_zip(path: Path) -> Path:
    digest = sha256_file(path)[:16]
    target = _cache_dir() / digest
    if (target / MANIFEST).is_file():
        return target
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            manifests = [n for n in names if n.endswith(MANIFEST)]
            if not manifests:
                raise EdgefillError(f"{path}: zip holds no {MANIFEST}; not an edgefill bundle")
            prefix = min(manifests, key=len)[: -len(MANIFEST)]
            tmp = target.with_name(target.name + f".tmp{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            for n in names:
                if not n.startswith(prefix) or n.endswith("/"):
                    continue
                rel = n[len(prefix):]
                if rel.startswith("/") or ".." in Path(rel).parts:
                    raise EdgefillError(f"{path}: unsafe path in zip: {n}")
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(n))
            os.replace(tmp, target) if not target.exists() else None
    except zipfile.BadZipFile:
        raise EdgefillError(f"{path}: damaged zip; not a loadable bundle") from None
    return target


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        raise EdgefillError(f"{root}: no {MANIFEST}; not an edgefill bundle")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgefillError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EdgefillError(f"{root}: not an edgefill bundle (format is {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise EdgefillError(f"{root}: bundle format version {manifest.get('format_version')} is not supported "
                            f"(this edgefill reads version {FORMAT_VERSION})")
    return manifest


def verify_files(root: Path, manifest: dict) -> None:
    """Every file listed in the manifest exists and matches its sha256; every graph is listed."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise EdgefillError(f"{root}: manifest lists no file hashes")
    for name, expected in files.items():
        p = root / name
        if not p.is_file():
            raise EdgefillError(f"{root}: bundle file {name} is missing")
        if sha256_file(p) != expected:
            raise EdgefillError(f"{root}: bundle file {name} is damaged (sha256 mismatch)")
    for gname, g in manifest.get("graphs", {}).items():
        if g.get("file") not in files:
            raise EdgefillError(f"{root}: graph {gname} ({g.get('file')}) is not covered by the manifest's hashes")


def open_bundle(path: str | os.PathLike | None = None, verify: bool = True) -> Bundle:
    """Open a bundle folder or .zip (None: the default bundle), checking format and hashes."""
    p = Path(path) if path is not None else default_bundle_path()
    if not p.exists():
        hint = "" if path is not None else " (no default bundle installed; pass --bundle or set EDGEFILL_BUNDLE)"
        raise EdgefillError(f"bundle not found: {p}{hint}")
    root = _extract_zip(p) if p.is_file() else p
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    return Bundle(root=root, manifest=manifest)
