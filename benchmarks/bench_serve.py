"""Load, admission, soak and fault benchmark of `edgefill serve`: real tritonservers behind the guard
and supervisor (ServingStack, what `edgefill serve` runs), on loopback, bounded requests and time.

    python benchmarks/bench_serve.py [--bundle B] [--parts overhead,scaling,stalls,isolation,overload,admission,soak,faults]
                                     [--soak-seconds 600] [--json out.json] [--plot out.png]

Parts (the in-process Inpainter is the reference):
  overhead     concurrency 1: server p50 latency vs the in-process Inpainter.inpaint p50
  scaling      throughput and p50/p90/p99 latency at concurrency 1, 4, 16 (--requests each)
  stalls       --stall-requests sequential requests over HTTP (guard) and over gRPC (straight to
               Triton): how many took over 5x the median, and Triton's queue and compute time
  isolation    --isolation requests from 16 concurrent clients, 5% of them bad: every good response
               must equal its serial in-process result bit for bit, every bad one get its own 4xx,
               no 5xx, and the server process must be the same one at the end
  overload     a burst of --burst requests at once (the plain settings): every request answered
               (200 or 503), and the p99 of the accepted ones against the unloaded p99
  admission    OPEN-LOOP 4x overload (requests sent at 4x the rate the server sustains, measured
               first) against the plain settings and against latency-bounded admission
               (--admission-batch 1, --admission-queue 2, --max-queue-delay-ms, default: half the
               unloaded p99, so an accepted request waits at most that plus one request's work):
               and against the guard's in-flight bound (--admission-inflight 2, Triton's queue unbounded):
               accepted p99 vs 2x the unloaded p99, how fast the 503s come back, what is served
  soak         --soak-seconds at concurrency 16 with 5% bad requests (serve_load.hostile_http):
               0 5xx, every checked good answer equal to its serial run, memory of tritonserver and
               its stub sampled every 2 s; growth after warm-up (the first quarter) at most 10%
  faults       SIGKILL of the Python stub under load (4 clients): what the clients saw, seconds until
               answers are 200 again; SIGKILL of tritonserver: seconds to serve again; 20 clients
               that hang up mid-request: the server still serves
Requests: 96x96 faces (test.npz upscaled, else the samples), center mask kind, seeds distinct,
the bundle's default search settings, sent with tritonclient (binary tensors) like a real client;
the bad ones as raw HTTP. Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load  # noqa: E402


def faces(n: int) -> list[np.ndarray]:
    import cv2

    path = REPO.parent / "shared" / "data" / "faces" / "test.npz"
    if path.is_file():
        imgs = np.load(path)["images"]
    else:
        from edgefill.runtime.imaging.images import read_image

        imgs = np.stack([read_image(p) for p in sorted((REPO / "samples" / "faces").glob("*.png"))])
    return [cv2.resize(imgs[i % len(imgs)], (96, 96), interpolation=cv2.INTER_CUBIC) for i in range(n)]


_local = threading.local()
STEPS: list[int | None] = [None]  # --steps: sent with every good request (None: the bundle's default)


def infer(url: str, img: np.ndarray, seed: int, timeout: float = 120) -> tuple[int, dict | str, float]:
    """A good request through tritonclient (binary tensors, one client per thread), as a real
    client sends it: (HTTP status, {"INPAINTED": ...} or the error, seconds)."""
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    key = (url, timeout)
    if getattr(_local, "key", None) != key:
        _local.client = http.InferenceServerClient(url.split("://", 1)[1], network_timeout=timeout,
                                                   connection_timeout=timeout)
        _local.key = key
    inputs = [http.InferInput("IMAGE", [1, *img.shape], "UINT8"), http.InferInput("MASK_KIND", [1, 1], "BYTES"),
              http.InferInput("SEED", [1, 1], "INT64")]
    inputs[0].set_data_from_numpy(img[None])
    inputs[1].set_data_from_numpy(np.array([[b"center"]], dtype=object))
    inputs[2].set_data_from_numpy(np.array([[seed]], np.int64))
    if STEPS[0] is not None:
        inputs.append(http.InferInput("STEPS", [1, 1], "INT32"))
        inputs[-1].set_data_from_numpy(np.array([[STEPS[0]]], np.int32))
    t0 = time.perf_counter()
    try:
        res = _local.client.infer("edgefill", inputs)
        return 200, {"INPAINTED": res.as_numpy("INPAINTED")}, time.perf_counter() - t0
    except InferenceServerException as exc:
        return int(exc.status() or 0), str(exc.message()), time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - a dropped connection: no HTTP status
        _local.key = None
        return 0, str(exc), time.perf_counter() - t0


def pct(xs: list[float]) -> dict:
    a = np.asarray(xs) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "n": int(a.size)} if a.size else {"n": 0}


def start(bundle, tmp: Path, name: str, **cfg):
    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.guard import GuardLimits
    from edgefill.runtime.frontends.serve.repository import build_repository
    from edgefill.runtime.frontends.serve.supervisor import ServingStack, free_port

    sc = ServeConfig(**cfg)
    repo = build_repository(bundle, tmp / name, sc)
    return ServingStack(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                        limits=GuardLimits.for_pixels(sc.max_image_pixels, sc.max_inflight),
                        log=lambda line: print("  ", line)).start()


def part_overhead(url, inp, imgs) -> dict:
    local, remote = [], []
    for i in range(30):
        t0 = time.perf_counter()
        inp.inpaint(imgs[i], "center", seed=i, steps=STEPS[0])
        local.append(time.perf_counter() - t0)
        remote.append(infer(url, imgs[i], i)[2])
    return {"in_process": pct(local[5:]), "server_c1": pct(remote[5:]),
            "p50_difference_ms": float(np.median(remote[5:]) - np.median(local[5:])) * 1000}


def triton_metrics(port: int) -> dict:
    """Triton's cumulative counters for the model: successes and microseconds of queue/compute."""
    import re
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for name in ("request_success", "queue_duration_us", "compute_infer_duration_us", "request_duration_us"):
        m = re.search(rf'^nv_inference_{name}{{model="edgefill".*?}} (\S+)', text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def grpc_infer(target: str, img: np.ndarray, seed: int) -> float:
    """One good request straight to Triton over gRPC (no guard); its seconds."""
    import tritonclient.grpc as g

    if getattr(_local, "grpc_key", None) != target:
        _local.grpc, _local.grpc_key = g.InferenceServerClient(target), target
    inputs = [g.InferInput("IMAGE", [1, *img.shape], "UINT8"), g.InferInput("MASK_KIND", [1, 1], "BYTES"),
              g.InferInput("SEED", [1, 1], "INT64")]
    inputs[0].set_data_from_numpy(img[None])
    inputs[1].set_data_from_numpy(np.array([[b"center"]], dtype=object))
    inputs[2].set_data_from_numpy(np.array([[seed]], np.int64))
    t0 = time.perf_counter()
    _local.grpc.infer("edgefill", inputs)
    return time.perf_counter() - t0


def part_stalls(stack, imgs, n: int) -> dict:
    """n sequential requests at one client over HTTP (through the guard) and over gRPC (straight
    to Triton): how many took over 5x the median (session 28-29: 1-3% sat ~0.5 s in Triton 2.51's
    batcher with one instance), and where Triton says the time went (queue vs compute, per request)."""
    out = {}
    for proto in ("http", "grpc"):
        for i in range(3):  # warm both paths
            infer(stack.url, imgs[i], i) if proto == "http" else grpc_infer(f"127.0.0.1:{stack.triton.grpc_port}", imgs[i], i)
        before, t0, lat, when = triton_metrics(stack.triton.metrics_port), time.perf_counter(), [], []
        for i in range(n):
            when.append(time.perf_counter() - t0)
            lat.append(infer(stack.url, imgs[i % len(imgs)], i)[2] if proto == "http"
                       else grpc_infer(f"127.0.0.1:{stack.triton.grpc_port}", imgs[i % len(imgs)], i))
        after = triton_metrics(stack.triton.metrics_port)
        done = max(after["request_success"] - before["request_success"], 1.0)
        a = np.asarray(lat) * 1000
        slow = np.flatnonzero(a > 5 * np.median(a))
        out[proto] = {**pct(lat), "max_ms": float(a.max()), "stalls": int(len(slow)),
                      "stalled": [[int(i), round(float(when[i]), 2), round(float(a[i]), 1)] for i in slow],
                      "triton_ms_per_request": {k[:-3]: (after[k] - before[k]) / done / 1000
                                                for k in after if k.endswith("_us")}}
        print(f"stalls over {proto}: {out[proto]['stalls']} of {n} (p50 {out[proto]['p50_ms']:.1f} ms, "
              f"max {out[proto]['max_ms']:.0f} ms)", flush=True)
    return out


def closed_loop(url, imgs, c: int, n: int) -> dict:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        res = list(pool.map(lambda i: infer(url, imgs[i % len(imgs)], i), range(n)))
    wall = time.perf_counter() - t0
    lat = [dt for s, _, dt in res if s == 200]
    return {"concurrency": c, "requests": n, "ok": len(lat), "throughput_rps": len(lat) / wall, **pct(lat)}


def open_loop(url, imgs, rate: float, n: int) -> dict:
    """n requests sent at `rate` per second whatever the answers (a real overload, unlike a closed
    loop that slows down with the server): accepted latency, and how fast the refusals come."""
    results: list = [None] * n
    t0 = time.perf_counter()
    with ThreadPoolExecutor(min(256, n)) as pool:
        futures = []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(lambda i=i: results.__setitem__(i, infer(url, imgs[i % len(imgs)], i))))
        for f in futures:
            f.result()
    wall = time.perf_counter() - t0
    ok = [dt for s, _, dt in results if s == 200]
    refused = [dt for s, _, dt in results if s == 503]
    reasons = sorted({str(m)[:60] for s, m, _ in results if s != 200})
    return {"offered_rps": rate, "requests": n, "accepted": len(ok), "refused_503": len(refused),
            "other": n - len(ok) - len(refused), "served_rps": len(ok) / wall, "accepted_latency": pct(ok),
            "refusal_latency": pct(refused), "reasons": reasons}


def part_admission(args, imgs, tmp: Path) -> dict:
    """Open-loop 4x overload: the plain settings against latency-bounded admission."""
    n_unloaded = max(8, min(60, args.requests))
    found: dict = {}

    def measure(name: str, **cfg) -> dict:
        """One server with `cfg`: its unloaded latency, then the open-loop overload (the plain one
        first also measures the capacity that sets the rate)."""
        stack = start(args.bundle, tmp, f"adm_{name}", **cfg)
        try:
            for i in range(5):
                infer(stack.url, imgs[i], i)
            unloaded = closed_loop(stack.url, imgs, 1, n_unloaded)
            if "rate" not in found:
                found["capacity"] = closed_loop(stack.url, imgs, 16, max(16, min(160, args.requests)))["throughput_rps"]
                found["rate"], found["unloaded"] = 4 * found["capacity"], unloaded
                print(f"admission: unloaded p99 {unloaded['p99_ms']:.0f} ms, capacity {found['capacity']:.1f} req/s, "
                      f"offering {found['rate']:.0f} req/s", flush=True)
            return {"settings": cfg, "unloaded": unloaded, **open_loop(stack.url, imgs, found["rate"],
                                                                          args.overload_requests)}
        finally:
            stack.stop()

    report = {"plain": measure("plain", max_batch=args.max_batch, max_queue=args.max_queue)}
    delay = max(0, args.max_queue_delay_ms) if args.max_queue_delay_ms else \
        max(1, int(round(0.5 * found["unloaded"]["p99_ms"])))
    report["bounded"] = measure("bounded", max_batch=args.admission_batch, max_queue=args.admission_queue,
                                max_queue_delay_ms=delay)
    report["guard"] = measure("guard", max_batch=args.admission_batch, max_queue=0,
                              max_inflight=args.admission_inflight)
    report.update(unloaded=found["unloaded"], capacity_rps=found["capacity"], offered_rps=found["rate"])
    for name in ("plain", "bounded", "guard"):
        r = report[name]
        print(f"  {name} {r['settings']}: accepted {r['accepted']}/{r['requests']} p99 "
              f"{r['accepted_latency'].get('p99_ms', float('nan')):.0f} ms (unloaded p99 "
              f"{found['unloaded']['p99_ms']:.0f}), 503 p99 {r['refusal_latency'].get('p99_ms', float('nan')):.0f} ms, "
              f"other {r['other']}", flush=True)
    return report


def part_soak(args, imgs, inp, tmp: Path) -> dict:
    stack = start(args.bundle, tmp, "soak", max_batch=args.max_batch, max_queue=64)
    try:
        n_max = int(args.soak_seconds * 200)
        expected = {i: inp.inpaint(imgs[i % len(imgs)], "center", seed=i, steps=args.steps).image
                    for i in range(0, min(n_max, args.soak_checked * 37), 37)}
        print(f"soak: {len(expected)} serial references ready; {args.soak_seconds:.0f} s at concurrency 16", flush=True)
        report = serve_load.soak(stack.url, stack.triton.process.pid, imgs, expected, requests=n_max,
                                 seconds=args.soak_seconds, concurrency=16, bad_every=20, sample_every=2.0,
                                 steps=args.steps,
                                 max_elements=stack.limits.max_elements)
        report["restarts"] = stack.state.restarts
    finally:
        stack.stop()
    print("soak:", {k: v for k, v in report.items() if k != "memory_mb"}, flush=True)
    return report


def part_faults(args, imgs, tmp: Path) -> dict:
    import signal
    import socket
    import subprocess

    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.guard import GuardLimits
    from edgefill.runtime.frontends.serve.repository import build_repository
    from edgefill.runtime.frontends.serve.supervisor import ServingStack, free_port

    repo = build_repository(args.bundle, tmp / "faults", ServeConfig(max_batch=args.max_batch, max_queue=64))
    stack = ServingStack(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                         limits=GuardLimits.for_pixels(4096 * 4096), probe_every=0.5,
                         log=lambda line: print("  ", line)).start()
    report = {}
    try:
        url = stack.url
        stop = threading.Event()
        seen: list = []

        def client(k):
            i = k
            while not stop.is_set():
                t0 = time.perf_counter()
                s, m, dt = infer(url, imgs[i % len(imgs)], i, timeout=60)
                seen.append((t0, time.perf_counter(), s, str(m)[:80] if s != 200 else ""))
                i += 4

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(3)
        ps = subprocess.run(["ps", "-ww", "-eo", "pid,sid,args"], capture_output=True, text=True).stdout.splitlines()
        stub = next(int(ln.split()[0]) for ln in ps[1:] if ln.split()[1] == str(stack.triton.process.pid)
                    and "triton_python_backend_stub" in ln)
        t_kill = time.perf_counter()
        os.kill(stub, signal.SIGKILL)

        def recovered():  # a request SENT after the kill came back 200
            return any(t0 > t_kill and s == 200 for t0, _, s, _ in list(seen))

        while time.perf_counter() - t_kill < 120 and not recovered():
            time.sleep(0.05)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        after = [(t1 - t_kill, s, m) for t0, t1, s, m in seen if t1 > t_kill]
        report["stub_kill"] = {
            "requests_answered_after_kill": len(after),
            "statuses": {str(k): sum(1 for _, s, _ in after if s == k) for k in {s for _, s, _ in after}},
            "messages": sorted({m for _, s, m in after if s != 200}),
            "seconds_to_first_200_of_a_request_sent_after_the_kill":
                min((t1 - t_kill for t0, t1, s, _ in seen if t0 > t_kill and s == 200), default=None),
            "restart_seconds": [round(e[2], 2) for e in stack.events], "restarts": stack.state.restarts}
        print("faults: stub kill:", report["stub_kill"], flush=True)
        # tritonserver itself killed
        deadline = time.perf_counter() + 120
        while not stack.state.serving and time.perf_counter() < deadline:
            time.sleep(0.05)
        t_kill = time.perf_counter()
        os.killpg(stack.triton.process.pid, signal.SIGKILL)
        while time.perf_counter() - t_kill < 120:
            if infer(url, imgs[0], 0, timeout=10)[0] == 200:
                break
            time.sleep(0.1)
        report["server_kill"] = {"seconds_to_first_200": time.perf_counter() - t_kill,
                                 "restarts": stack.state.restarts}
        print("faults: server kill:", report["server_kill"], flush=True)
        # clients that hang up mid-request
        host, port = url.split("://", 1)[1].split(":")
        body = serve_load.good_json(imgs[0], 0)
        for _ in range(20):
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(serve_load._http(body))
        s, _, _ = infer(url, imgs[1], 1)
        report["client_hangups"] = {"hung_up": 20, "next_request_status": s, "restarts": stack.state.restarts}
        print("faults: client hang-ups:", report["client_hangups"], flush=True)
    finally:
        stack.stop()
    return report


PARTS = ("overhead", "scaling", "stalls", "isolation", "overload", "admission", "soak", "faults")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--requests", type=int, default=160, help="requests per concurrency level")
    ap.add_argument("--isolation", type=int, default=2000)
    ap.add_argument("--stall-requests", type=int, default=400, help="stalls part: sequential requests per protocol")
    ap.add_argument("--max-queue", type=int, default=64, help="the serve default (measured: 16 clients against a queue of 16 met 503s, 179 of 400 sent straight to Triton)")
    ap.add_argument("--burst", type=int, default=320, help="overload part: requests sent at once")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--instances", type=int, default=None, help="model instances (default: the serve default)")
    ap.add_argument("--queue-delay-us", type=int, default=None, help="the batcher's wait for more requests (default: the serve default)")
    ap.add_argument("--overload-requests", type=int, default=400)
    ap.add_argument("--admission-batch", type=int, default=1)
    ap.add_argument("--admission-queue", type=int, default=2)
    ap.add_argument("--admission-inflight", type=int, default=2, help="the guard's in-flight bound (--max-inflight)")
    ap.add_argument("--max-queue-delay-ms", type=int, default=0, help="0: half the unloaded p99; -1: no queue timeout")
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--soak-checked", type=int, default=400, help="good soak requests compared with a serial run")
    ap.add_argument("--steps", type=int, default=None, help="search steps per request (default: the bundle's)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    STEPS[0] = args.steps
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")

    from edgefill.runtime.frontends.inpainter import Inpainter

    imgs = faces(max(args.requests, args.isolation, 64))
    inp = Inpainter(args.bundle, provider="cpu")
    report: dict = {"load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if {"overhead", "scaling", "stalls", "isolation", "overload"} & set(parts):
            more = {k: v for k, v in (("instances", args.instances), ("queue_delay_us", args.queue_delay_us)) if v is not None}
            stack = start(args.bundle, tmp, "plain", max_batch=args.max_batch, max_queue=args.max_queue, **more)
            try:
                url, pid = stack.url, stack.triton.process.pid
                if "overhead" in parts:
                    report["overhead"] = part_overhead(url, inp, imgs)
                    print("overhead:", report["overhead"], flush=True)
                if "scaling" in parts or "overload" in parts:
                    report["scaling"] = [closed_loop(url, imgs, c, args.requests) for c in (1, 4, 16)]
                    for row in report["scaling"]:
                        print(f"c={row['concurrency']:>2}: {row['throughput_rps']:.1f} req/s, p50 {row['p50_ms']:.0f} "
                              f"p99 {row['p99_ms']:.0f} ms ({row['ok']}/{row['requests']} ok)", flush=True)
                if "stalls" in parts:
                    report["stalls"] = part_stalls(stack, imgs, args.stall_requests)
                if "isolation" in parts:
                    plan = [("bad", i % 4) if i % 20 == 7 else ("good", i) for i in range(args.isolation)]
                    expected = {i: inp.inpaint(imgs[i], "center", seed=i, steps=args.steps).image for k, i in plan if k == "good"}
                    bad = serve_load.hostile_http(np.random.default_rng(0), 4, stack.limits.max_elements)
                    host, port = url.split("://", 1)[1].split(":")
                    with ThreadPoolExecutor(16) as pool:
                        res = list(pool.map(lambda p: infer(url, imgs[p[1]], p[1]) if p[0] == "good"
                                            else serve_load.send_raw(host, int(port), bad[p[1]][1]) + (0.0,), plan))
                    mismatched = sum(1 for (k, i), (s, out, _) in zip(plan, res)
                                     if k == "good" and (s != 200 or not np.array_equal(
                                         np.asarray(out["INPAINTED"][0], np.uint8), expected[i])))
                    report["isolation"] = {
                        "requests": len(plan), "good": len(expected), "bad": len(plan) - len(expected),
                        "good_equal_serial": len(expected) - mismatched,
                        "bad_4xx": sum(1 for (k, _), r in zip(plan, res) if k == "bad" and 400 <= r[0] < 500),
                        "5xx": sum(1 for r in res if r[0] >= 500),
                        "same_server_process": stack.triton.process.pid == pid and stack.state.restarts == 0,
                        "errors": sorted({f"{r[0]}: {str(r[1])[:80]}" for r in res if r[0] >= 500 or r[0] == 0})}
                    print("isolation:", report["isolation"], flush=True)
                if "overload" in parts:
                    burst = args.burst
                    with ThreadPoolExecutor(burst) as pool:
                        res = list(pool.map(lambda i: infer(url, imgs[i % len(imgs)], i), range(burst)))
                    accepted = [dt for s, _, dt in res if s == 200]
                    rejected = [dt for s, _, dt in res if s == 503]
                    report["overload"] = {"burst": burst, "accepted_count": len(accepted),
                                          "rejected_503": len(rejected), "other": burst - len(accepted) - len(rejected),
                                          "max_reject_s": max(rejected) if rejected else None,
                                          "accepted": pct(accepted), "unloaded_p99_ms": report["scaling"][0]["p99_ms"]}
                    print("overload:", report["overload"], flush=True)
            finally:
                stack.stop()
        if "admission" in parts:
            report["admission"] = part_admission(args, imgs, tmp)
        if "faults" in parts:
            report["faults"] = part_faults(args, imgs, tmp)
        if "soak" in parts:
            report["soak"] = part_soak(args, imgs, inp, tmp)
    goals = {}
    if "isolation" in report:
        iso = report["isolation"]
        goals["isolation"] = iso["good_equal_serial"] == iso["good"] and iso["bad_4xx"] == iso["bad"] \
            and iso["5xx"] == 0 and iso["same_server_process"]
    if "scaling" in report:
        goals["batching_2x"] = report["scaling"][-1]["throughput_rps"] >= 2 * report["scaling"][0]["throughput_rps"]
    if "stalls" in report:
        goals["no_stalls"] = all(v["stalls"] == 0 for v in report["stalls"].values())
    if "overhead" in report:
        goals["overhead_10ms"] = report["overhead"]["p50_difference_ms"] <= 10
    if "admission" in report:
        adm = report["admission"]
        b = adm["guard"]
        goals["admission_p99_2x"] = b["accepted_latency"].get("p99_ms", 1e9) <= 2 * adm["unloaded"]["p99_ms"]
        goals["admission_fast_503"] = b["refusal_latency"].get("p99_ms", 0) <= 2 * adm["unloaded"]["p99_ms"]
    if "soak" in report:
        sk = report["soak"]
        goals["soak"] = sk["5xx"] == 0 and sk["no_answer"] == 0 and sk["checked_equal_serial"] == sk["checked_against_serial"] \
            and sk["good_200"] == sk["good"] and sk["bad_4xx"] == sk["bad"] and \
            (sk["memory_growth_after_warmup"] or 0) <= 0.10
    if "faults" in report:
        f = report["faults"]
        goals["faults_recover"] = f["stub_kill"]["seconds_to_first_200_of_a_request_sent_after_the_kill"] is not None \
            and f["server_kill"]["seconds_to_first_200"] < 60 and \
            set(f["stub_kill"]["statuses"]) <= {"200", "503"} and f["client_hangups"]["next_request_status"] == 200
    report["goals"] = {k: bool(v) for k, v in goals.items()}
    report["load_average_end"] = os.getloadavg()
    print("goals:", json.dumps(report["goals"]))
    if args.json:
        from edgefill.runtime.atomic import write_json

        write_json(args.json, report)
    if args.plot and "soak" in report:
        from edgefill.runtime.imaging import plots

        plt = plots.pyplot()
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
        if "scaling" in report:
            cs = [r["concurrency"] for r in report["scaling"]]
            plots.line_axes(a, {q: [r[f"{q}_ms"] for r in report["scaling"]] for q in ("p50", "p99")}, cs,
                            xticks=cs, log_x=True, marker="o", title="latency", xlabel="concurrent clients",
                            ylabel="ms")
        mem = report["soak"]["memory_mb"]
        plots.line_axes(b, {"tritonserver": [m[1] for m in mem], "stub": [m[2] for m in mem]}, [m[0] for m in mem],
                        title="soak: resident memory", xlabel="seconds", ylabel="MB")
        fig.tight_layout()
        plots.save_figure(fig, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
