"""Serving behind Triton Inference Server (DESIGN section 9); edgefill writes no server of its own.

    config.py        ServeConfig (frozen) and the config.pbtxt it becomes
    requests.py      one request's tensors -> a checked problem; a batch of them -> one search per
                     setting; results or a one-line error per request (numpy only, no Triton)
    triton_model.py  the Python-backend model.py: requests.py inside Triton (copied into the repo)
    repository.py    `edgefill export triton`: the model repository (config, model.py, bundle)
    launcher.py      `edgefill serve`: the tritonserver binary, its backends folder and environment,
                     readiness, SIGTERM/Ctrl-C drain, cleanup
    client.py        ServeClient (tritonclient HTTP): what `edgefill inpaint --server URL` uses
"""
