"""Load benchmark of `edgefill serve`: a real tritonserver on loopback, bounded requests and time.

    python benchmarks/bench_serve.py [--bundle B] [--json out.json] [--plot out.png]

Parts (all against one server started here; the in-process Inpainter is the reference):
  overhead     concurrency 1: server p50 latency vs the in-process Inpainter.inpaint p50
  scaling      throughput and p50/p90/p99 latency at concurrency 1, 4, 16 (--requests each)
  isolation    --isolation requests from 16 concurrent clients, 5% of them bad (wrong dtype,
               empty image, bad mask kind, negative steps): every good response must equal its
               serial in-process result bit for bit, every bad one get its own 4xx, no 5xx, and
               the server process must be the same one at the end
  overload     a burst of 10x the queue bound at once: every request answered (200 or 503)
               within 1 s, and the p99 of the accepted ones against the unloaded p99
Requests: 96x96 faces (test.npz upscaled, else the samples), center mask kind, seeds distinct,
the bundle's default search settings, sent with tritonclient (binary tensors) like a real client;
the bad ones as raw KServe JSON. Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]


def faces(n: int) -> list[np.ndarray]:
    import cv2

    path = REPO.parent / "shared" / "data" / "faces" / "test.npz"
    if path.is_file():
        imgs = np.load(path)["images"]
    else:
        from edgefill.runtime.imaging.images import read_image

        imgs = np.stack([read_image(p) for p in sorted((REPO / "samples" / "faces").glob("*.png"))])
    return [cv2.resize(imgs[i % len(imgs)], (96, 96), interpolation=cv2.INTER_CUBIC) for i in range(n)]


def post(url: str, inputs: dict, timeout: float = 120) -> tuple[int, dict | str, float]:
    body = {"inputs": [{"name": k, "shape": list(np.asarray(v).shape), "datatype": dt,
                        "data": np.asarray(v).reshape(-1).tolist()} for k, (v, dt) in inputs.items()]}
    req = urllib.request.Request(f"{url}/v2/models/edgefill/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = json.loads(r.read())
            res = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in out["outputs"]}
            return r.status, res, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}").get("error", ""), time.perf_counter() - t0


_local = threading.local()


def infer(url: str, img: np.ndarray, seed: int) -> tuple[int, dict | str, float]:
    """A good request through tritonclient (binary tensors, one client per thread), as a real
    client sends it: (HTTP status, {"INPAINTED": ...} or the error, seconds)."""
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    if getattr(_local, "client", None) is None:
        _local.client = http.InferenceServerClient(url.split("://", 1)[1], network_timeout=120)
    inputs = [http.InferInput("IMAGE", [1, *img.shape], "UINT8"), http.InferInput("MASK_KIND", [1, 1], "BYTES"),
              http.InferInput("SEED", [1, 1], "INT64")]
    inputs[0].set_data_from_numpy(img[None])
    inputs[1].set_data_from_numpy(np.array([[b"center"]], dtype=object))
    inputs[2].set_data_from_numpy(np.array([[seed]], np.int64))
    t0 = time.perf_counter()
    try:
        res = _local.client.infer("edgefill", inputs)
        return 200, {"INPAINTED": res.as_numpy("INPAINTED")}, time.perf_counter() - t0
    except InferenceServerException as exc:
        return int(exc.status() or 0), str(exc.message()), time.perf_counter() - t0


def good(img: np.ndarray, seed: int) -> dict:
    return {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"), "SEED": ([[seed]], "INT64")}


BAD = [{"IMAGE": (np.zeros((1, 8, 8, 3), np.float32), "FP32"), "MASK_KIND": ([["center"]], "BYTES")},
       {"IMAGE": (np.zeros((1, 0, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["center"]], "BYTES")},
       {"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["sideways"]], "BYTES")},
       {"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["center"]], "BYTES"),
        "STEPS": ([[-1]], "INT32")}]


def pct(xs: list[float]) -> dict:
    a = np.asarray(xs) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "n": int(a.size)} if a.size else {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--requests", type=int, default=160, help="requests per concurrency level")
    ap.add_argument("--isolation", type=int, default=2000)
    ap.add_argument("--max-queue", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)

    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.launcher import TritonServer
    from edgefill.runtime.frontends.serve.repository import build_repository

    imgs = faces(max(args.requests, args.isolation))
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = build_repository(args.bundle, Path(tmp) / "repo", ServeConfig(max_batch=args.max_batch, max_queue=args.max_queue))
        with TritonServer(repo, http_port=18500, grpc_port=18501, metrics_port=18502) as srv:
            url, pid = srv.url, srv.process.pid
            inp = Inpainter(args.bundle, provider="cpu")
            # overhead: in-process vs server, serial, alternating
            local, remote = [], []
            for i in range(30):
                t0 = time.perf_counter()
                inp.inpaint(imgs[i], "center", seed=i)
                local.append(time.perf_counter() - t0)
                status, _, dt = infer(url, imgs[i], i)
                remote.append(dt)
            report["overhead"] = {"in_process": pct(local[5:]), "server_c1": pct(remote[5:]),
                                  "p50_difference_ms": float(np.median(remote[5:]) - np.median(local[5:])) * 1000}
            print(f"overhead: in-process p50 {report['overhead']['in_process']['p50_ms']:.1f} ms, server "
                  f"{report['overhead']['server_c1']['p50_ms']:.1f} ms", flush=True)
            # scaling
            report["scaling"] = []
            for c in (1, 4, 16):
                n = args.requests
                t0 = time.perf_counter()
                with ThreadPoolExecutor(c) as pool:
                    res = list(pool.map(lambda i: infer(url, imgs[i], i), range(n)))
                wall = time.perf_counter() - t0
                lat = [dt for s, _, dt in res if s == 200]
                row = {"concurrency": c, "requests": n, "ok": len(lat), "throughput_rps": len(lat) / wall, **pct(lat)}
                report["scaling"].append(row)
                print(f"c={c:>2}: {row['throughput_rps']:.1f} req/s, p50 {row['p50_ms']:.0f} p90 {row['p90_ms']:.0f} "
                      f"p99 {row['p99_ms']:.0f} ms ({row['ok']}/{n} ok)", flush=True)
            unloaded_p99 = report["scaling"][0]["p99_ms"]
            # isolation: 5% bad requests mixed in, 16 clients
            plan = [("bad", i % len(BAD)) if i % 20 == 7 else ("good", i) for i in range(args.isolation)]
            expected = {i: inp.inpaint(imgs[i], "center", seed=i).image for k, i in plan if k == "good"}
            with ThreadPoolExecutor(16) as pool:
                res = list(pool.map(lambda p: infer(url, imgs[p[1]], p[1]) if p[0] == "good" else post(url, BAD[p[1]]),
                                    plan))
            mismatched = sum(1 for (k, i), (s, out, _) in zip(plan, res)
                             if k == "good" and (s != 200 or not np.array_equal(
                                 np.asarray(out["INPAINTED"][0], np.uint8), expected[i])))
            bad_4xx = sum(1 for (k, _), (s, _, _) in zip(plan, res) if k == "bad" and 400 <= s < 500)
            five = sum(1 for _, (s, _, _) in zip(plan, res) if s >= 500)
            report["isolation"] = {"requests": len(plan), "good": len(expected), "bad": len(plan) - len(expected),
                                   "good_equal_serial": len(expected) - mismatched, "bad_4xx": bad_4xx,
                                   "5xx": five, "same_server_process": srv.process.pid == pid
                                   and srv.process.poll() is None}
            print("isolation:", report["isolation"], flush=True)
            # overload: 10x the queue bound at once
            burst = 10 * args.max_queue
            with ThreadPoolExecutor(burst) as pool:
                res = list(pool.map(lambda i: infer(url, imgs[i], i), range(burst)))
            accepted = [dt for s, _, dt in res if s == 200]
            rejected = [dt for s, _, dt in res if s == 503]
            report["overload"] = {"burst": burst, "accepted_count": len(accepted), "rejected_503": len(rejected),
                                  "other": burst - len(accepted) - len(rejected),
                                  "max_reject_s": max(rejected) if rejected else None,
                                  "accepted": pct(accepted), "unloaded_p99_ms": unloaded_p99}
            print("overload:", {k: v for k, v in report["overload"].items() if k != "accepted"},
                  "accepted p99", report["overload"]["accepted"].get("p99_ms"), flush=True)
    s1, s16 = report["scaling"][0], report["scaling"][-1]
    report["goals"] = {k: bool(v) for k, v in {
        "isolation": report["isolation"]["good_equal_serial"] == report["isolation"]["good"]
        and report["isolation"]["bad_4xx"] == report["isolation"]["bad"] and report["isolation"]["5xx"] == 0
        and report["isolation"]["same_server_process"],
        "batching_2x": s16["throughput_rps"] >= 2 * s1["throughput_rps"],
        "overhead_10ms": report["overhead"]["p50_difference_ms"] <= 10,
        "overload_1s": (report["overload"]["max_reject_s"] or 0) <= 1.0,
        "overload_p99_2x": report["overload"]["accepted"].get("p99_ms", 0) <= 2 * s1["p99_ms"],
    }.items()}
    print("goals:", json.dumps(report["goals"]))
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, report)
    if args.plot:
        from edgefill.runtime.imaging import plots

        plt = plots.pyplot()
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
        cs = [r["concurrency"] for r in report["scaling"]]
        plots.line_axes(a, {"throughput": [r["throughput_rps"] for r in report["scaling"]]}, cs, xticks=cs,
                        log_x=True, marker="o", title="throughput", xlabel="concurrent clients", ylabel="requests/s")
        plots.line_axes(b, {q: [r[f"{q}_ms"] for r in report["scaling"]] for q in ("p50", "p90", "p99")}, cs,
                        xticks=cs, log_x=True, marker="o", title="latency", xlabel="concurrent clients", ylabel="ms")
        fig.tight_layout()
        plots.save_figure(fig, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
