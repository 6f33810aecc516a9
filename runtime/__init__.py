"""edgefill runtime: numpy + onnxruntime + OpenCV, never torch or onnx.

`from edgefill.runtime import Inpainter` is resolved lazily (runtime.frontends.inpainter documents
the API), so importing the package, or running `edgefill --help`, loads neither onnxruntime nor cv2.
"""
__version__ = "0.1.0"

_LAZY = {"Inpainter": "frontends.inpainter", "InpaintResult": "frontends.inpainter",
         "BatchResult": "core.pipeline", "Pipeline": "core.pipeline", "SearchConfig": "core.search_config",
         "SearchResult": "core.best_of_k", "EdgefillError": "errors", "open_bundle": "core.bundle",
         "RandomStart": "core.starts", "GivenStart": "core.starts"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
