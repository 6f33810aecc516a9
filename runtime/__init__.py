"""edgefill runtime: numpy + onnxruntime + OpenCV, never torch or onnx.

`from edgefill.runtime import Inpainter` is resolved lazily (runtime.inpainter documents the
API), so importing the package, or running `edgefill --help`, loads neither onnxruntime nor cv2.
"""
__version__ = "0.1.0"

_LAZY = {"Inpainter": "inpainter", "InpaintResult": "inpainter", "BatchResult": "inpainter",
         "SearchConfig": "search_config", "SearchResult": "torch_search", "EdgefillError": "errors",
         "open_bundle": "bundle"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
