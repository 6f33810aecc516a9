"""Load, soak and hostile traffic for a running `edgefill serve` (loopback only), shared by
bench_serve.py and tests/test_serve.py so the benchmark and the tests send the same things.

    good_json(img, seed, steps)          a KServe v2 JSON request body for one face
    post(url, body, headers, timeout)    -> (status, parsed outputs | error line, seconds)
    send_raw(host, port, data, ...)      -> (status, error line): raw bytes, for broken HTTP
    hostile_http(rng, n, limits)         -> [(name, raw request bytes)]: malformed requests
    hostile_grpc(rng, n)                 -> [(name, ModelInferRequest)]
    grpc_infer(target, request)          -> (grpc status name, details)
    stack_rss_mb(pid)                    -> {"server": MB, "stubs": MB}: tritonserver and its stubs
    soak(url, imgs, expected, ...)       a bounded soak: concurrency N, a share of bad requests,
                                         memory sampled over time; returns a report dict
Every loop here is bounded in count and time and talks to 127.0.0.1 only.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

KINDS = ("center", "pattern", "half", "random-box")


def _inputs(**named) -> list[dict]:
    return [{"name": k, "shape": list(np.asarray(v).shape), "datatype": dt,
             "data": np.asarray(v).reshape(-1).tolist() if dt != "BYTES" else [str(x) for x in np.asarray(v).reshape(-1)]}
            for k, (v, dt) in named.items()]


def good_json(img: np.ndarray, seed: int, steps: int | None = None, kind: str = "center") -> bytes:
    named = {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([[kind]], "BYTES"), "SEED": ([[seed]], "INT64")}
    if steps is not None:
        named["STEPS"] = ([[steps]], "INT32")
    return json.dumps({"inputs": _inputs(**named)}).encode()


def post(url: str, body: bytes, headers: dict | None = None, timeout: float = 120.0):
    """POST an infer body; (status, {name: array} or the error text, seconds). status 0: no answer."""
    req = urllib.request.Request(f"{url}/v2/models/edgefill/infer", data=body,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = json.loads(r.read())
            res = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in out["outputs"]}
            return r.status, res, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            message = json.loads(text).get("error", "")
        except ValueError:
            message = text.decode("utf-8", "replace")
        return e.code, message, time.perf_counter() - t0
    except (urllib.error.URLError, OSError) as e:
        return 0, f"no answer: {e}", time.perf_counter() - t0


def send_raw(host: str, port: int, data: bytes, shut_write: bool = False, timeout: float = 30.0) -> tuple[int, str]:
    """Send raw bytes as one HTTP request; (status, error line). shut_write: close our sending side
    after the bytes (a body shorter than its Content-Length then ends early)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
            raw = b"".join(chunks)
            head, sep, body = raw.partition(b"\r\n\r\n")
            if sep:
                lengths = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                           if ln.lower().startswith(b"content-length:")]
                if lengths and len(body) >= int(lengths[0]):
                    break
    raw = b"".join(chunks)
    if not raw:
        return 0, "no answer"
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body).get("error", "")
    except ValueError:
        return status, body.decode("utf-8", "replace")


def _http(body: bytes, headers: dict | None = None, path: str = "/v2/models/edgefill/infer",
          length: int | None = None) -> bytes:
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json", "Connection": "close", **(headers or {})}
    if length is not None or "Transfer-Encoding" not in hdrs:
        hdrs["Content-Length"] = str(len(body) if length is None else length)
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode() + body


def _req(**named) -> bytes:
    return json.dumps({"inputs": _inputs(**named)}).encode()


def hostile_http(rng: np.random.Generator, n: int, max_elements: int) -> list[tuple[str, bytes, bool]]:
    """n malformed HTTP requests drawn (seeded) from every kind below: (name, raw bytes,
    shut_write). Each must get its own 4xx with one line."""
    img = rng.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)
    kind = ([["center"]], "BYTES")

    def huge():
        side = int(rng.integers(10_000, 1_000_000))
        return _http(json.dumps({"inputs": [{"name": "IMAGE", "shape": [1, side, side, 3], "datatype": "UINT8",
                                             "data": [1, 2, 3]}] + _inputs(MASK_KIND=kind)}).encode())

    def truncated_json():
        body = _req(IMAGE=(img, "UINT8"), MASK_KIND=kind)
        return _http(body[: int(rng.integers(1, len(body) - 1))])

    def binary(declared: int, sent: int):
        header = json.dumps({"inputs": [{"name": "IMAGE", "shape": [1, declared, 1, 3], "datatype": "UINT8",
                                         "parameters": {"binary_data_size": sent}}] + _inputs(MASK_KIND=kind)}).encode()
        return _http(header + bytes(rng.integers(0, 256, sent, dtype=np.uint8)),
                     {"Inference-Header-Content-Length": str(len(header))})

    lie = json.dumps({"inputs": [{"name": "IMAGE", "shape": [1, 2, 2, 3], "datatype": "UINT8",
                                  "data": [[1, 2, 3], [[4] * 5000]]}] + _inputs(MASK_KIND=kind)}).encode()
    cases = {
        "wrong dtype": lambda: _http(_req(IMAGE=(img.astype(np.float32), "FP32"), MASK_KIND=kind)),
        "wrong rank": lambda: _http(_req(IMAGE=(img[..., 0], "UINT8"), MASK_KIND=kind)),
        "four channels": lambda: _http(_req(IMAGE=(np.zeros((1, 8, 8, 4), np.uint8), "UINT8"), MASK_KIND=kind)),
        "empty image": lambda: _http(_req(IMAGE=(np.zeros((1, 0, 8, 3), np.uint8), "UINT8"), MASK_KIND=kind)),
        "huge declared shape": huge,
        "data shorter than shape": lambda: _http(json.dumps({"inputs": [
            {"name": "IMAGE", "shape": [1, 64, 64, 3], "datatype": "UINT8", "data": [0] * 100}]
            + _inputs(MASK_KIND=kind)}).encode()),
        "truncated JSON": truncated_json,
        "random bytes": lambda: _http(bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8))),
        "NaN and inf values": lambda: _http(json.dumps({"inputs": [
            {"name": "IMAGE", "shape": [1, 1, 2, 3], "datatype": "UINT8",
             "data": [float("nan"), float("inf"), -1, 0, 1, 2]}] + _inputs(MASK_KIND=kind)}).encode()),
        "negative steps": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind,
                                            STEPS=([[int(rng.integers(-2**31, 0))]], "INT32"))),
        "absurd steps": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, STEPS=([[2**31 - 1]], "INT32"))),
        "float steps": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, STEPS=([[1.5]], "FP32"))),
        "unknown mask kind": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=([["sideways"]], "BYTES"))),
        "no mask": lambda: _http(_req(IMAGE=(img, "UINT8"))),
        "mask of another size": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK=(np.zeros((1, 9, 8), np.uint8), "UINT8"))),
        "unknown input": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, COLOUR=([[1]], "INT32"))),
        "batch of two": lambda: _http(_req(IMAGE=(np.zeros((2, 8, 8, 3), np.uint8), "UINT8"),
                                           MASK_KIND=([["center"], ["center"]], "BYTES"))),
        "negative seed": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, SEED=([[-5]], "INT64"))),
        "short box": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, BOX=([[1, 2]], "INT32"))),
        "unknown init": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind, INIT=([["psychic"]], "BYTES"))),
        "image as bytes": lambda: _http(_req(IMAGE=([["\x00\x01garbage"]], "BYTES"), MASK_KIND=kind)),
        "no inputs list": lambda: _http(b'{"outputs": []}'),
        "nested data lie": lambda: _http(lie),
        "oversized body": lambda: _http(b"", length=max_elements * 64),
        "chunked body": lambda: _http(b"5\r\nhello\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}),
        "header length beyond body": lambda: _http(b"{}", {"Inference-Header-Content-Length": "999"}),
        "binary size mismatch": lambda: binary(int(rng.integers(1000, 100000)), 3),
        "unknown model": lambda: _http(_req(IMAGE=(img, "UINT8"), MASK_KIND=kind), path="/v2/models/nope/infer"),
        "model control": lambda: _http(b"{}", path="/v2/repository/models/edgefill/unload"),
    }
    names = sorted(cases)
    out = []
    for i in range(n):
        name = names[i] if i < len(names) else names[int(rng.integers(len(names)))]
        out.append((name, cases[name](), False))
    # a body that ends before its Content-Length (the client hangs up its sending side)
    body = _req(IMAGE=(img, "UINT8"), MASK_KIND=kind)
    out.append(("body shorter than Content-Length", _http(body[:20], length=len(body)), True))
    return out


def hostile_grpc(rng: np.random.Generator, n: int) -> list[tuple[str, object]]:
    """n malformed gRPC ModelInferRequests (seeded): (name, request)."""
    from tritonclient.grpc import service_pb2

    def request(shape, dtype="UINT8", raw: bytes | None = None, kind: bytes | None = b"center", extra=()):
        r = service_pb2.ModelInferRequest(model_name="edgefill")
        t = r.inputs.add()
        t.name, t.datatype = "IMAGE", dtype
        t.shape.extend(shape)
        r.raw_input_contents.append(raw if raw is not None else bytes(int(np.prod(shape)) * (4 if dtype == "FP32" else 1)))
        if kind is not None:
            k = r.inputs.add()
            k.name, k.datatype = "MASK_KIND", "BYTES"
            k.shape.extend([1, 1])
            r.raw_input_contents.append(struct.pack("<I", len(kind)) + kind)
        for name, dtype2, value in extra:
            e = r.inputs.add()
            e.name, e.datatype = name, dtype2
            e.shape.extend([1, 1])
            r.raw_input_contents.append(np.array([value], {"INT32": np.int32, "FP32": np.float32,
                                                           "INT64": np.int64}[dtype2]).tobytes())
        return r

    side = int(rng.integers(10_000, 1_000_000))
    cases = {
        "wrong dtype": lambda: request([1, 8, 8, 3], "FP32"),
        "wrong rank": lambda: request([1, 8, 8]),
        "empty image": lambda: request([1, 0, 8, 3]),
        "huge declared shape": lambda: request([1, side, side, 3], raw=b"\0\0\0"),
        "size mismatch": lambda: request([1, 8, 8, 3], raw=bytes(int(rng.integers(1, 191)))),
        "unknown mask kind": lambda: request([1, 8, 8, 3], kind=b"sideways"),
        "no mask": lambda: request([1, 8, 8, 3], kind=None),
        "absurd steps": lambda: request([1, 8, 8, 3], extra=[("STEPS", "INT32", 2**31 - 1)]),
        "NaN steps": lambda: request([1, 8, 8, 3], extra=[("STEPS", "FP32", float("nan"))]),
        "negative seed": lambda: request([1, 8, 8, 3], extra=[("SEED", "INT64", -1)]),
        "unknown input": lambda: request([1, 8, 8, 3], extra=[("COLOUR", "INT32", 3)]),
    }
    names = sorted(cases)
    picked = [names[i] if i < len(names) else names[int(rng.integers(len(names)))] for i in range(n)]
    return [(name, cases[name]()) for name in picked]


def grpc_infer(target: str, request, timeout: float = 60.0) -> tuple[str, str]:
    """Send one ModelInferRequest; ("OK", "") or (the gRPC status name, its details)."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            stub.ModelInfer(request, timeout=timeout)
            return "OK", ""
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""


def stack_rss_mb(pid: int) -> dict:
    """Resident memory of tritonserver (pid) and of the other processes of its session (the
    Python backend stubs), in MB, from /proc."""
    server, stubs = 0.0, 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            sid = int(fields[3])
            with open(f"/proc/{entry}/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError, ValueError):
            continue
        if int(entry) == pid:
            server += rss
        elif sid == pid:
            stubs += rss
    return {"server": server, "stubs": stubs}


def soak(url: str, pid: int, imgs: list[np.ndarray], expected: dict[int, np.ndarray], *, requests: int,
         seconds: float, concurrency: int = 16, bad_every: int = 20, steps: int | None = None,
         sample_every: float = 1.0, max_elements: int = 64 * 64 * 3, seed: int = 0) -> dict:
    """Send up to `requests` requests (stopping after `seconds`) from `concurrency` clients, one in
    `bad_every` malformed, while memory is sampled every `sample_every` s. expected[i]: the serial
    result for good request i (imgs[i % len], seed i). Returns counts, 5xx, mismatches, latency
    and the memory series with its growth after warm-up (the first quarter)."""
    rng = np.random.default_rng(seed)
    bad = hostile_http(rng, 32, max_elements)
    host, port = url.split("://", 1)[1].split(":")
    samples: list[tuple[float, dict]] = []
    stop = threading.Event()

    def sampler():
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, stack_rss_mb(pid)))
            stop.wait(sample_every)

    deadline = time.monotonic() + seconds

    def one(i: int):
        if time.monotonic() > deadline:
            return None
        if i % bad_every == bad_every - 1:
            name, raw, shut = bad[i % len(bad)]
            status, message = send_raw(host, int(port), raw, shut_write=shut)
            return ("bad", name, status, message, 0.0, message[:80])
        status, out, dt = post(url, good_json(imgs[i % len(imgs)], i, steps))
        same = None if i not in expected else bool(
            status == 200 and np.array_equal(out["INPAINTED"][0].astype(np.uint8), expected[i]))
        return ("good", i, status, same, dt, "" if status == 200 else str(out)[:80])

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for r in pool.map(one, range(requests)) if r is not None]
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    good = [r for r in results if r[0] == "good"]
    badr = [r for r in results if r[0] == "bad"]
    totals = [s["server"] + s["stubs"] for _, s in samples]
    warm = totals[max(1, len(totals) // 4):] or totals
    return {
        "requests": len(results), "seconds": wall, "concurrency": concurrency,
        "good": len(good), "good_200": sum(1 for r in good if r[2] == 200),
        "checked_against_serial": sum(1 for r in good if r[3] is not None),
        "checked_equal_serial": sum(1 for r in good if r[3] is True),
        "bad": len(badr), "bad_4xx": sum(1 for r in badr if 400 <= r[2] < 500),
        "5xx": sum(1 for r in results if r[2] >= 500), "no_answer": sum(1 for r in results if r[2] == 0),
        "bad_not_4xx": sorted({(r[1], r[2]) for r in badr if not 400 <= r[2] < 500}),
        "errors": sorted({f"{r[2]}: {r[5]}" for r in results if r[2] >= 500 or r[2] == 0}),
        "latency_p50_ms": float(np.percentile([r[4] for r in good], 50) * 1000) if good else None,
        "latency_p99_ms": float(np.percentile([r[4] for r in good], 99) * 1000) if good else None,
        "memory_mb": [(round(t, 1), round(s["server"], 1), round(s["stubs"], 1)) for t, s in samples],
        "memory_after_warmup_mb": [round(warm[0], 1), round(max(warm), 1)] if warm else None,
        "memory_growth_after_warmup": (max(warm) / warm[0] - 1.0) if warm and warm[0] else None,
    }
