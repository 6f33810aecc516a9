"""ServeClient: inpaint through a running edgefill Triton server (KServe v2 over HTTP, tritonclient).

    from edgefill.runtime.frontends.serve.client import ServeClient

    client = ServeClient("http://127.0.0.1:8000")
    image, stats = client.inpaint(rgb_uint8_hw3, "center", steps=20, seed=0)

inpaint(image, mask, *, steps=None, restarts=None, seed=0, box=None, init=None)
    image: RGB uint8 (H,W,3) (gray (H,W) and RGBA are converted like the CLI does); mask: a kind
    name or a uint8 (H,W) array (255 = fill) of the image's size. -> (RGB uint8 (H,W,3) with only
    the hole filled, {"loss", "steps_run", "seconds", "server"}). The same settings give the same
    pixels as Inpainter.inpaint in-process. A server-side rejection (400, 503, ...) or an
    unreachable server raises EdgefillError with one line: "server: <status>: <message>".
inpaint(image, mask, ..., samples=K) -> [(image, stats)] * K
    K different completions of the hole (SAMPLES; 1..the server's max_samples), best search loss
    first, equal to Inpainter.inpaint(..., samples=K) in-process; stats add "sample" (the rank)
    and "samples" (K).
Needs the `serve` extra (tritonclient); imported lazily.
"""
from __future__ import annotations

import time
from urllib.parse import urlparse

import numpy as np

from ...errors import EdgefillError
from ...imaging.images import to_rgb_uint8
from .config import MODEL_NAME


def _host_port(url: str) -> str:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "") or not parsed.hostname:
        raise EdgefillError(f"--server takes an http URL such as http://127.0.0.1:8000, got {url!r}")
    return f"{parsed.hostname}:{parsed.port or 8000}"


class ServeClient:
    """A client of one server (module docstring). timeout: seconds per request."""

    def __init__(self, url: str, timeout: float = 600.0):
        try:
            import tritonclient.http as http
        except ImportError:
            raise EdgefillError("--server needs tritonclient: pip install 'edgefill[serve]'") from None
        self._http = http
        self.url = url
        self._client = http.InferenceServerClient(_host_port(url), connection_timeout=timeout,
                                                  network_timeout=timeout)

    def ready(self) -> bool:
        try:
            return bool(self._client.is_model_ready(MODEL_NAME))
        except Exception:  # noqa: BLE001 - unreachable counts as not ready
            return False

    def _input(self, name: str, array: np.ndarray, dtype: str):
        t = self._http.InferInput(name, list(array.shape), dtype)
        t.set_data_from_numpy(array)
        return t

    def inpaint(self, image: np.ndarray, mask, *, steps: int | None = None, restarts: int | None = None,
                seed: int = 0, box=None, init: str | None = None,
                samples: int | None = None) -> tuple[np.ndarray, dict] | list[tuple[np.ndarray, dict]]:
        image = to_rgb_uint8(np.asarray(image))
        inputs = [self._input("IMAGE", np.ascontiguousarray(image[None]), "UINT8")]
        if isinstance(mask, str):
            inputs.append(self._input("MASK_KIND", np.array([[mask.encode()]], dtype=object), "BYTES"))
        else:
            inputs.append(self._input("MASK", np.ascontiguousarray(np.asarray(mask, np.uint8)[None]), "UINT8"))
        if steps is not None:
            inputs.append(self._input("STEPS", np.array([[steps]], np.int32), "INT32"))
        if restarts is not None:
            inputs.append(self._input("RESTARTS", np.array([[restarts]], np.int32), "INT32"))
        inputs.append(self._input("SEED", np.array([[seed]], np.int64), "INT64"))
        if box is not None:
            if isinstance(box, str):
                from ...imaging.preprocess import parse_box

                box = parse_box(box)
            inputs.append(self._input("BOX", np.array([list(box)], np.int32), "INT32"))
        if init is not None:
            inputs.append(self._input("INIT", np.array([[init.encode()]], dtype=object), "BYTES"))
        outputs = None
        if samples is not None:
            inputs.append(self._input("SAMPLES", np.array([[samples]], np.int32), "INT32"))
            # INPAINTED is INPAINTED_SAMPLES[0]: not asked for, so it does not travel twice
            outputs = [self._http.InferRequestedOutput(name) for name in ("INPAINTED_SAMPLES", "LOSS", "STEPS_RUN")]
        t0 = time.perf_counter()
        try:
            result = self._client.infer(MODEL_NAME, inputs, outputs=outputs)
        except Exception as exc:  # noqa: BLE001 - tritonclient raises its own and socket errors
            raise EdgefillError(f"server: {_describe(exc)}") from None
        seconds = time.perf_counter() - t0
        losses = result.as_numpy("LOSS").reshape(-1)
        steps_run = int(result.as_numpy("STEPS_RUN").reshape(-1)[0])
        if samples is None:
            return result.as_numpy("INPAINTED")[0], {"loss": float(losses[0]), "steps_run": steps_run,
                                                     "seconds": seconds, "server": self.url}
        filled = result.as_numpy("INPAINTED_SAMPLES")[0]
        return [(filled[k], {"loss": float(losses[k]), "steps_run": steps_run, "seconds": seconds,
                             "server": self.url, "sample": k, "samples": len(filled)}) for k in range(len(filled))]

    def close(self) -> None:
        self._client.close()


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    status = status() if callable(status) else status
    message = getattr(exc, "message", None)
    message = message() if callable(message) else message
    text = str(message or exc).strip().splitlines()[0] if str(message or exc).strip() else type(exc).__name__
    if text.startswith("[") and "]" in text[:8]:
        text = text.split("]", 1)[1].strip()
    return f"{status}: {text}" if status else text
