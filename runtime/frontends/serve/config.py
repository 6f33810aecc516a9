"""The serving settings (one frozen dataclass) and the Triton model configuration they become.

Tensors of the `edgefill` model (KServe v2 names; every input but IMAGE is optional; each request
carries its own batch dimension of 1):
    IMAGE      UINT8 [H, W, 3]  RGB, any size up to max_image_pixels (ragged: sizes may differ
                                within a dynamic batch)
    MASK       UINT8 [H, W]     255 = fill, same H x W as IMAGE (or use MASK_KIND)
    MASK_KIND  BYTES [1]        center, random-box, pattern, random, half, half-left, half-right,
                                free-form (drawn from SEED, relative to BOX or the whole image)
    STEPS      INT32 [1]        search steps (default: the bundle's for the start), 1..max_steps
    RESTARTS   INT32 [1]        restarts per image, 1..max_restarts
    SEED       INT64 [1]        random starts and mask kinds (default 0)
    BOX        INT32 [4]        x, y, w, h face region (default: the whole image)
    INIT       BYTES [1]        auto | random | encoder
    SAMPLES    INT32 [1]        K different completions of the hole, 1..max_samples (absent: one,
                                answered exactly as before SAMPLES existed)
Outputs: INPAINTED UINT8 [H, W, 3] (the best completion); LOSS FP32 [K] (each completion's search
loss, ascending: LOSS[0] is INPAINTED's; K = 1 without SAMPLES); STEPS_RUN INT32 [1];
INPAINTED_SAMPLES UINT8 [K, H, W, 3] (only for a request that gave SAMPLES: the K completions,
best first, INPAINTED_SAMPLES[0] == INPAINTED; ask for just it, LOSS and STEPS_RUN to skip the copy).
The K completions are the in-process Inpainter.inpaint(..., samples=K, seed=SEED)'s, pixel for pixel.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ...errors import EdgefillError
from ..inpainter import MAX_SAMPLES

MODEL_NAME = "edgefill"
KINDS = ("cpu", "gpu")
# Measured on the 2-core CPU (docs/serving.md, session 29): two instances with one thread each
# against one with two, queue delay 0 against 5 ms: more throughput at 4 and 16 clients, less
# overhead at one, and no 0.5 s stalls of Triton 2.51's batcher at one client.
DEFAULT_INSTANCES = {"cpu": 2, "gpu": 1}


@dataclass(frozen=True)
class ServeConfig:
    """max_batch: requests searched together at most; max_queue: requests waiting beyond which
    Triton answers 503 at once (0: unbounded); queue_delay_us: how long the batcher waits to
    fill a batch (0: none; requests that arrive while every instance is busy still batch);
    instances: model instances (each its own process and pipeline; 0: DEFAULT_INSTANCES of the
    kind: two on a CPU, where one instance's Python work overlaps the other's search, one per
    GPU); kind: cpu |
    gpu instance group; provider: onnxruntime provider inside the model (auto, cpu, cuda,
    tensorrt); threads: onnxruntime intra-op threads per instance (0: physical cores / instances);
    max_image_pixels, max_steps, max_restarts: the largest request accepted (400 beyond);
    max_samples: the most completions one request may ask for (SAMPLES, 1..MAX_SAMPLES of the
    Python API; each is one more search row and one more full-size image in the answer);
    max_queue_delay_ms: the latency bound of admission (0: none): a request that has waited this
    long in Triton's queue without being scheduled is rejected (Triton's queue policy,
    timeout_action REJECT) instead of adding to every later request's wait; with max_queue it
    bounds what an accepted request can wait under overload; max_inflight: edgefill serve's guard
    answers 503 at once, before Triton sees the request, while this many are already in flight
    (0: no bound): the cheapest refusal, so a flood cannot eat the cores the model needs."""

    max_batch: int = 16
    max_queue: int = 64
    queue_delay_us: int = 0
    instances: int = 0
    kind: str = "cpu"
    provider: str = "auto"
    threads: int = 0
    max_image_pixels: int = 4096 * 4096
    max_steps: int = 2000
    max_restarts: int = 16
    max_samples: int = 8
    max_queue_delay_ms: int = 0
    max_inflight: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EdgefillError(f"instance kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.instances == 0:
            object.__setattr__(self, "instances", DEFAULT_INSTANCES[self.kind])
        if self.provider not in ("auto", "cpu", "cuda", "tensorrt"):
            raise EdgefillError(f"--provider must be auto, cpu, cuda or tensorrt, got {self.provider!r}")
        for name in ("max_batch", "instances", "max_image_pixels", "max_steps", "max_restarts"):
            if getattr(self, name) < 1:
                raise EdgefillError(f"{name.replace('_', '-')} must be at least 1")
        if not 1 <= self.max_samples <= MAX_SAMPLES:
            raise EdgefillError(f"max-samples must be 1..{MAX_SAMPLES}, got {self.max_samples}")
        if self.max_queue < 0 or self.queue_delay_us < 0 or self.threads < 0 or self.max_queue_delay_ms < 0 \
                or self.max_inflight < 0:
            raise EdgefillError("max-queue, queue delays and threads must not be negative")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


INPUTS = (  # name, Triton data type, dims (without the batch dim), optional, ragged
    ("IMAGE", "TYPE_UINT8", "[ -1, -1, 3 ]", False, True),
    ("MASK", "TYPE_UINT8", "[ -1, -1 ]", True, True),
    ("MASK_KIND", "TYPE_STRING", "[ 1 ]", True, False),
    ("STEPS", "TYPE_INT32", "[ 1 ]", True, False),
    ("RESTARTS", "TYPE_INT32", "[ 1 ]", True, False),
    ("SEED", "TYPE_INT64", "[ 1 ]", True, False),
    ("BOX", "TYPE_INT32", "[ 4 ]", True, False),
    ("INIT", "TYPE_STRING", "[ 1 ]", True, False),
    ("SAMPLES", "TYPE_INT32", "[ 1 ]", True, False),
)
OUTPUTS = (("INPAINTED", "TYPE_UINT8", "[ -1, -1, 3 ]"), ("LOSS", "TYPE_FP32", "[ -1 ]"),
           ("STEPS_RUN", "TYPE_INT32", "[ 1 ]"), ("INPAINTED_SAMPLES", "TYPE_UINT8", "[ -1, -1, -1, 3 ]"))


def config_pbtxt(cfg: ServeConfig, bundle_dir: str = "bundle") -> str:
    """The model's config.pbtxt: Python backend, dynamic batching with a bounded queue, the
    instance group, typed inputs/outputs, and the ServeConfig as parameters (read by model.py)."""
    lines = [f'name: "{MODEL_NAME}"', 'backend: "python"', f"max_batch_size: {cfg.max_batch}", ""]
    for name, dtype, dims, optional, ragged in INPUTS:
        lines += ["input [", "  {", f'    name: "{name}"', f"    data_type: {dtype}", f"    dims: {dims}"]
        if optional:
            lines.append("    optional: true")
        if ragged:
            lines.append("    allow_ragged_batch: true")
        lines += ["  }", "]"]
    for name, dtype, dims in OUTPUTS:
        lines += ["output [", "  {", f'    name: "{name}"', f"    data_type: {dtype}", f"    dims: {dims}", "  }", "]"]
    lines += ["", "dynamic_batching {", f"  max_queue_delay_microseconds: {cfg.queue_delay_us}"]
    if cfg.max_queue or cfg.max_queue_delay_ms:
        lines.append("  default_queue_policy {")
        if cfg.max_queue:
            lines.append(f"    max_queue_size: {cfg.max_queue}")
        if cfg.max_queue_delay_ms:
            lines += ["    timeout_action: REJECT",
                      f"    default_timeout_microseconds: {cfg.max_queue_delay_ms * 1000}"]
        lines.append("  }")
    lines += ["}", "", "instance_group [", "  {", f"    count: {cfg.instances}",
              f"    kind: {'KIND_GPU' if cfg.kind == 'gpu' else 'KIND_CPU'}", "  }", "]", ""]
    params = {"bundle": bundle_dir, "serve_config": json.dumps(cfg.to_dict(), sort_keys=True)}
    for key, value in params.items():
        lines += ["parameters {", f'  key: "{key}"', f"  value: {{ string_value: {json.dumps(value)} }}", "}"]
    return "\n".join(lines) + "\n"
