"""The runtime's layering (DESIGN section 2; docs/layout.md):

    imaging     imports neither the core nor a front end
    core        imports imaging, never a front end
    frontends   import the core (the pipeline) and imaging
and no runtime module imports torch or onnx at module level (the torch fallback imports torch
inside its functions). Checked on the source (every import statement, wherever it stands) and,
for torch/onnx, at run time in a fresh interpreter.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

RUNTIME = REPO / "runtime"


def runtime_imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module under edgefill.runtime, at_module_level) for every import in a runtime file."""
    rel = path.relative_to(RUNTIME).with_suffix("")
    package = ["edgefill", "runtime", *rel.parts[:-1]]
    if rel.name == "__init__":
        package = ["edgefill", "runtime", *rel.parts[:-1]]
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            found += [(n, id(node) in top) for n in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["edgefill", "runtime"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in ("core", "imaging", "frontends") else None


FORBIDDEN = {"imaging": {"core", "frontends"}, "core": {"frontends"}, "frontends": set()}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    offenders = []
    for path in sorted((RUNTIME / layer).rglob("*.py")):
        for module, _ in runtime_imports(path):
            if layer_of(module) in FORBIDDEN[layer]:
                offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, offenders


def test_front_ends_go_through_the_pipeline():
    """Every front end that searches reaches the search through runtime.core.pipeline (directly
    or via the Inpainter), never by driving a search backend itself."""
    backends = ("edgefill.runtime.core.ort_search", "edgefill.runtime.core.torch_fallback")
    offenders = []
    for path in sorted((RUNTIME / "frontends").rglob("*.py")):
        for module, _ in runtime_imports(path):
            if any(module == b or module.startswith(b + ".") for b in backends):
                # the profiler may name the torch fallback only to set its threads
                if not (path.name == "backends.py" and module.endswith("import_torch")) and \
                        module not in backends:
                    offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, offenders
    uses_pipeline = [p.name for p in (RUNTIME / "frontends").rglob("*.py")
                     if any(m.startswith("edgefill.runtime.core.pipeline") for m, _ in runtime_imports(p))]
    assert {"inpainter.py", "backends.py"} <= set(uses_pipeline), uses_pipeline  # the others use the Inpainter


def test_no_module_level_torch_or_onnx_anywhere_in_the_runtime():
    offenders = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for module, top in runtime_imports(path):
            root = module.split(".")[0]
            if top and root in ("torch", "onnx", "onnxscript"):
                offenders.append(f"{path.relative_to(REPO)} imports {module} at module level")
            if top and module.startswith(("edgefill.train", "edgefill.export")):
                offenders.append(f"{path.relative_to(REPO)} imports {module} at module level")
    assert not offenders, offenders


# model.py inside Triton: imports triton_python_backend_utils, which only Triton's stub provides
INSIDE_TRITON = {"edgefill.runtime.frontends.serve.triton_model"}


def test_importing_every_runtime_module_loads_no_torch_or_onnx():
    modules = sorted(m for m in ("edgefill.runtime." + ".".join(p.relative_to(RUNTIME).with_suffix("").parts)
                                 for p in RUNTIME.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
                     if m not in INSIDE_TRITON)
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]\n"
            "print(len(bad)); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
