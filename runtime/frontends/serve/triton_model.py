"""The Triton Python-backend model (copied as model.py into the repository by `edgefill export
triton`): Triton batches requests dynamically; this answers each one on its own.

initialize: opens the bundle (config parameter "bundle", relative to the model version folder or
absolute) with a Pipeline on the ServeConfig's provider. execute(requests): every request is
checked alone (runtime.frontends.serve.requests.parse_request); a bad one gets its own
INVALID_ARG error (HTTP 400) of one line; the good ones are searched together (answer_batch) and
each gets INPAINTED, LOSS, STEPS_RUN (and INPAINTED_SAMPLES when it gave SAMPLES: config.py). A
failure of the search itself answers the requests it concerned with an INTERNAL error (500) of
one line; the traceback goes to the server log only.
The edgefill package must be importable by the Python that runs the backend stub.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

from edgefill.runtime.core.pipeline import Pipeline
from edgefill.runtime.frontends.serve.config import INPUTS, ServeConfig
from edgefill.runtime.frontends.serve.requests import RequestError, answer_batch, one_line, parse_request


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.cfg = ServeConfig(**json.loads(params["serve_config"]))
        bundle = params.get("bundle", "bundle")
        if not os.path.isabs(bundle):
            bundle = os.path.join(args["model_repository"], args["model_version"], bundle)
        provider = self.cfg.provider
        if args.get("model_instance_kind") == "GPU" and provider == "auto":
            provider = "cuda"
        threads = self.cfg.threads or None
        if threads is None:
            from edgefill.runtime.core.engine import physical_cores

            threads = max(1, physical_cores() // self.cfg.instances)
        self.pipeline = Pipeline(bundle, provider=None if provider == "auto" else provider, threads=threads)

    def execute(self, requests):
        responses: list = [None] * len(requests)
        problems, where = [], []
        for i, request in enumerate(requests):
            tensors = {}
            for name, *_ in INPUTS:
                t = pb_utils.get_input_tensor_by_name(request, name)
                if t is not None:
                    tensors[name] = t.as_numpy()
            try:
                problems.append(parse_request(tensors, self.cfg, self.pipeline))
                where.append(i)
            except RequestError as exc:
                responses[i] = _error(one_line(exc), pb_utils.TritonError.INVALID_ARG)
            except Exception as exc:  # noqa: BLE001 - a bug must not take the batch down
                traceback.print_exc(file=sys.stderr)
                responses[i] = _error(f"request could not be read: {one_line(exc)}", pb_utils.TritonError.INTERNAL)
        if problems:
            try:
                answers = answer_batch(problems, self.pipeline)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc(file=sys.stderr)
                message = f"inference failed: {one_line(exc)}"
                for i in where:
                    responses[i] = _error(message, pb_utils.TritonError.INTERNAL)
            else:
                for i, ans in zip(where, answers):
                    outputs = [pb_utils.Tensor("INPAINTED", np.ascontiguousarray(ans.image[None])),
                               pb_utils.Tensor("LOSS", np.asarray(ans.losses, np.float32)[None]),
                               pb_utils.Tensor("STEPS_RUN", np.array([[ans.steps_run]], np.int32))]
                    if ans.samples is not None:
                        outputs.append(pb_utils.Tensor("INPAINTED_SAMPLES", ans.images[None]))
                    responses[i] = pb_utils.InferenceResponse(output_tensors=outputs)
        return responses

    def finalize(self):
        self.pipeline = None


def _error(message: str, code):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))
