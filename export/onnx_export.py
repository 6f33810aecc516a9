"""torch module + GraphSpec -> onnx.ModelProto (weights still inline; weights.py moves them out).

Exporter: the legacy TorchScript exporter (`dynamo=False`), chosen because
- it keeps parameter names as initializer names (`generator.convs.0.weight`), which the
  shared weights.bin relies on;
- its output is deterministic (same module -> same bytes);
- with do_constant_folding=False it folds nothing, so no constant is rewritten (the dynamo
  optimiser's trap of folding Adam's `+ 1e-8` away does not arise; eps is a graph input anyway)
  and no weight is duplicated into a folded copy (e.g. BN fused into a conv).
The legacy exporter's other trap (eval-mode BN turned back to training) is avoided by calling
.eval() on the wrapper itself and exporting with TrainingMode.EVAL.
"""
from __future__ import annotations

import io
import json
import warnings

import onnx
import torch

from edgefill.runtime import __version__

from .specs import GraphSpec

METADATA_KEY = "edgefill"


def export_graph(wrapper: torch.nn.Module, example_inputs: tuple, spec: GraphSpec, extra_meta: dict | None = None
                 ) -> onnx.ModelProto:
    """Export `wrapper` (eval mode is forced) with the spec's names, dynamic axes and opset.

    example_inputs: float32 tensors matching spec.inputs (any batch size). The model carries
    the spec and `extra_meta` as JSON under metadata key 'edgefill'.
    """
    wrapper = wrapper.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter's deprecation notice is expected here; nothing else is silenced
        warnings.filterwarnings("ignore", message=".*dynamo=False.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(wrapper, example_inputs, buf, dynamo=False, opset_version=spec.opset,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=spec.dynamic_axes(), do_constant_folding=False,
                          training=torch.onnx.TrainingMode.EVAL, export_params=True,
                          keep_initializers_as_inputs=False)
    model = onnx.load_model_from_string(buf.getvalue())
    model.doc_string = spec.doc
    model.graph.doc_string = spec.doc
    meta = {"graph": spec.name, "toolkit_version": __version__, "opset": spec.opset,
            "inputs": {n: list(d) for n, d in spec.inputs}, "outputs": {n: list(d) for n, d in spec.outputs},
            **(extra_meta or {})}
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    _check_io(model, spec)
    return model


def _check_io(model: onnx.ModelProto, spec: GraphSpec) -> None:
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != spec.input_names or got_out != spec.output_names:
        raise RuntimeError(f"{spec.name}: exported names {got_in} -> {got_out} differ from the spec "
                           f"{spec.input_names} -> {spec.output_names}")
