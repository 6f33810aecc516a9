"""onnxruntime's own per-operator profile of the search step (chrome trace JSON)."""
from __future__ import annotations

import os

import numpy as np

from .inputs import make_inputs


def ort_trace(engine, search_cfg, batch: int, steps: int, path, mask: str = "center", seed: int = 0) -> dict:
    """onnxruntime's own per-operator profile of `steps` search steps at `batch` images (chrome
    trace JSON from SessionOptions.enable_profiling / end_profiling), written to `path`.
    Returns {"path", "steps", "top_ops": [{"op", "calls", "total_ms", "share"}]} (top 10 by time)."""
    import json
    import tempfile

    import onnxruntime as ort

    from ...atomic import write_bytes
    from ...core.bundle import PRIOR_CODE
    from ...core.engine import session_options
    from ...core.starts import initial_z
    from ...imaging.images import to_model
    from ...imaging.masks import importance_weights

    base = engine.session("search_step")
    providers = base.get_providers()
    opts = base.get_provider_options()
    k = search_cfg.restarts
    images, masks = make_inputs(batch, mask, seed)
    feeds = {"z": initial_z(batch, k, engine.bundle.z_dim, seed), "y": np.repeat(to_model(images), k, axis=0),
             "W": np.repeat(importance_weights(masks), k, axis=0)}
    b = len(feeds["z"])
    feeds.update({"m": np.zeros_like(feeds["z"]), "v": np.zeros_like(feeds["z"]), "t": np.zeros(b, np.float32)})
    scal = {"lam": search_cfg.lam, "lr": search_cfg.lr, "beta1": search_cfg.beta1, "beta2": search_cfg.beta2,
            "eps": search_cfg.eps, "prior": PRIOR_CODE[search_cfg.prior]}
    feeds.update({n: np.array(v, np.float32) for n, v in scal.items()})
    with tempfile.TemporaryDirectory(prefix="edgefill-trace-") as tmp:
        so = session_options(engine.threads)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "search_step")
        sess = ort.InferenceSession(str(engine.bundle.graph_path("search_step")), so, providers=providers,
                                    provider_options=[opts.get(p, {}) for p in providers])
        names = [o.name for o in sess.get_outputs()]
        for _ in range(steps):
            out = dict(zip(names, sess.run(names, feeds)))
            feeds.update(z=out["z_next"], m=out["m_next"], v=out["v_next"], t=out["t_next"])
        trace_file = sess.end_profiling()
        raw = open(trace_file, "rb").read()
    write_bytes(path, raw)
    events = json.loads(raw)
    per_op: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            per_op.setdefault(op, []).append(float(e.get("dur", 0)) / 1000.0)
    total = sum(sum(v) for v in per_op.values()) or 1.0
    top = sorted(({"op": op, "calls": len(v), "total_ms": sum(v), "share": sum(v) / total}
                  for op, v in per_op.items()), key=lambda d: -d["total_ms"])[:10]
    return {"path": str(path), "steps": steps, "batch_size": batch, "provider": engine.provider, "top_ops": top}
