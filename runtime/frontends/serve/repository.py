"""`edgefill export triton`: a Triton model repository that any Triton server can serve.

    REPO/
      edgefill/
        config.pbtxt     Python backend, dynamic batching, bounded queue, instance group, typed
                         inputs/outputs, the ServeConfig as parameters (runtime.frontends.serve.config)
        1/model.py       runtime/frontends/serve/triton_model.py
        1/bundle/        a copy of the bundle (hashes checked on load), so REPO is self-contained
The repository is written beside REPO and renamed into place (a failure leaves nothing, an
existing repository of ours is replaced; any other non-empty folder is refused). The server's
Python needs the edgefill package (pip install edgefill) to run model.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ...atomic import swap_dir
from ...core.bundle import open_bundle
from ...errors import EdgefillError
from .config import MODEL_NAME, ServeConfig, config_pbtxt

MODEL_SOURCE = Path(__file__).with_name("triton_model.py")


def is_repository(path: Path) -> bool:
    return (path / MODEL_NAME / "config.pbtxt").is_file()


def read_serve_config(path: Path) -> ServeConfig:
    """The ServeConfig a repository was made with (its config.pbtxt's `serve_config` parameter;
    the defaults for a hand-written config without it)."""
    text = (Path(path) / MODEL_NAME / "config.pbtxt").read_text()
    match = re.search(r'key: "serve_config"\s*value: \{ string_value: ("(?:[^"\\]|\\.)*") \}', text)
    if match is None:
        return ServeConfig()
    try:
        return ServeConfig(**json.loads(json.loads(match.group(1))))
    except (ValueError, TypeError) as exc:
        raise EdgefillError(f"{path}: the serve_config parameter of config.pbtxt is unreadable: {exc}") from None


def build_repository(bundle: str | None, out: str | os.PathLike, cfg: ServeConfig) -> Path:
    """Write the repository for `bundle` (None: the default bundle) at `out`; returns its path."""
    b = open_bundle(bundle)  # checks format and hashes before anything is written
    out = Path(out)
    if out.is_file():
        raise EdgefillError(f"--out {out} is a file; a model repository is a folder")
    if out.is_dir() and any(out.iterdir()) and not is_repository(out):
        raise EdgefillError(f"--out {out} exists and is not an edgefill model repository; refusing to overwrite it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        version = tmp / MODEL_NAME / "1"
        version.mkdir(parents=True)
        shutil.copytree(b.root, version / "bundle")
        shutil.copyfile(MODEL_SOURCE, version / "model.py")
        (tmp / MODEL_NAME / "config.pbtxt").write_text(config_pbtxt(cfg))
        swap_dir(tmp, out)
    except OSError as exc:
        shutil.rmtree(out.with_name(f".{out.name}.tmp-{os.getpid()}"), ignore_errors=True)
        raise EdgefillError(f"cannot write the model repository at {out}: {exc.strerror or exc}") from None
    return out
