"""Weight files: every weight tensor of the bundle once, shared by all graphs as ONNX external data.

Files: `weights.bin` holds the generator and critic (shared by generator.onnx,
discriminator.onnx and search_step.onnx); `refiner.bin` holds the refiner (and the samples refiner). One file per model
family keeps every shipped file small (base fp16: 12.7 MB + 11.1 MB) and lets a bundle without
a refiner be exactly the GAN file. Layout in each: tensors in a fixed order (state-dict order),
little-endian, each starting at a multiple of 64 bytes, zero padding between. The manifest's
`tensors` index gives {file, offset, nbytes, shape, dtype} per state-dict name; every graph
initializer with the same name is rewritten to point at that range, so a weight used by the
generator, the critic and the search step is stored once.

Precision: `fp32` stores float32. `fp16` stores floating tensors of rank >= 2 (conv and
linear weights: all but ~0.1% of the bytes) as float16 and keeps BN vectors and biases in
float32; in each graph a Cast-to-float32 follows every float16 initializer, so compute and
graph inputs/outputs stay float32 and the CPU provider runs it (fp16 STORAGE, fp32 compute).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgefill.runtime.core.bundle import ENCODER_WEIGHTS, REFINER_WEIGHTS, WEIGHTS

ALIGN = 64
INLINE_LIMIT = 4096  # bytes: an inline initializer above this is a duplicated weight (a bug)


def storage_dtype(array: np.ndarray, precision: str) -> np.dtype:
    """The dtype a state-dict tensor is stored with in weights.bin."""
    if precision == "fp16" and array.dtype == np.float32 and array.ndim >= 2:
        return np.dtype(np.float16)
    return array.dtype


def weight_file(name: str) -> str:
    """The file a state-dict tensor (with its model prefix) is stored in."""
    if name.startswith("encoder."):
        return ENCODER_WEIGHTS
    return REFINER_WEIGHTS if name.startswith(("refiner.", "samples_refiner.")) else WEIGHTS


@dataclass
class _Entry:
    file: str
    offset: int
    data: np.ndarray  # as stored (little-endian, storage dtype)


class WeightStore:
    """The contents of weights.bin, built from named numpy tensors (state-dict names with
    their model prefix). Insertion order is the file order, so the bytes are deterministic."""

    def __init__(self, tensors: dict[str, np.ndarray], precision: str = "fp32"):
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
        self.precision = precision
        self.entries: dict[str, _Entry] = {}
        self.sizes: dict[str, int] = {}
        for name, arr in tensors.items():
            arr = np.ascontiguousarray(arr)
            stored = arr.astype(storage_dtype(arr, precision).newbyteorder("<"), copy=False)
            file = weight_file(name)
            offset = self.sizes.get(file, 0)
            self.entries[name] = _Entry(file, offset, stored)
            self.sizes[file] = offset + -(-stored.nbytes // ALIGN) * ALIGN

    def as_float32(self, name: str) -> np.ndarray:
        """The tensor as the graphs see it (after the fp16 round trip, if any)."""
        return self.entries[name].data.astype(np.float32)

    @property
    def size(self) -> int:
        return sum(self.sizes.values())

    def to_bytes(self) -> dict[str, bytes]:
        """{file name: contents} for every weight file."""
        bufs = {file: bytearray(size) for file, size in self.sizes.items()}
        for e in self.entries.values():
            raw = e.data.tobytes()
            bufs[e.file][e.offset:e.offset + len(raw)] = raw
        return {file: bytes(buf) for file, buf in bufs.items()}

    def index(self) -> dict:
        """The manifest's `tensors` entry."""
        return {name: {"file": e.file, "offset": e.offset, "nbytes": int(e.data.nbytes), "shape": list(e.data.shape),
                       "dtype": e.data.dtype.newbyteorder("=").name}
                for name, e in self.entries.items()}

    def externalise(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """Point every initializer that names a stored tensor into its weight file (in place).

        Checks each initializer's values equal the stored tensor's (fp32: bit-exact), so a graph
        can never silently reference different weights than the index says. fp16 tensors are
        followed by a Cast node; their consumers read `<name>_f32`.
        """
        graph = model.graph
        casts = []
        for init in graph.initializer:
            entry = self.entries.get(init.name)
            if entry is None:
                nbytes = len(init.raw_data) or numpy_helper.to_array(init).nbytes
                if nbytes > INLINE_LIMIT:
                    raise RuntimeError(f"initializer {init.name} ({nbytes} bytes) is not a stored weight; "
                                       "weights would be stored twice")
                continue
            values = numpy_helper.to_array(init)
            if values.shape != entry.data.shape or not np.array_equal(values.astype(entry.data.dtype), entry.data):
                raise RuntimeError(f"initializer {init.name} differs from the stored tensor")
            if entry.data.dtype == np.float16 and init.data_type == TensorProto.FLOAT:
                init.data_type = TensorProto.FLOAT16
                casts.append(init.name)
            init.ClearField("raw_data")
            for field in ("float_data", "int32_data", "int64_data", "double_data"):
                init.ClearField(field)
            init.data_location = TensorProto.EXTERNAL
            del init.external_data[:]
            for key, value in (("location", entry.file), ("offset", str(entry.offset)),
                               ("length", str(entry.data.nbytes))):
                kv = init.external_data.add()
                kv.key, kv.value = key, value
        if casts:
            renamed = {n: f"{n}_f32" for n in casts}
            for node in graph.node:
                for i, name in enumerate(node.input):
                    if name in renamed:
                        node.input[i] = renamed[name]
            nodes = [helper.make_node("Cast", [n], [renamed[n]], to=TensorProto.FLOAT, name=f"cast_f32/{n}")
                     for n in casts]
            existing = list(graph.node)
            del graph.node[:]
            graph.node.extend(nodes + existing)
        return model
