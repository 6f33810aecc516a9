"""Serving with a REAL tritonserver behind edgefill's guard and supervisor (ServingStack, the path
`edgefill serve` takes), started by the tests (the `serve` extra's binary, or one on PATH; skipped
with the reason only where none can run). Tiny bundle, loopback ports picked free.

Tests that only send requests and wait for every answer share one module server. Every test that
floods, stops, kills or soaks owns its server, ports and cleanup, so one failure never cascades.
Work is sized by design (step counts, queue bounds), never by this machine's speed.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli

sys.path.insert(0, str(REPO / "benchmarks"))
import serve_load  # noqa: E402  (shared with bench_serve.py: the same hostile and soak traffic)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def triton_available():
    pytest.importorskip("tritonclient.http", reason="the serve extra (tritonclient) is not installed")
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.serve.launcher import find_binary

    try:
        find_binary()
    except EdgefillError as exc:
        pytest.skip(f"no tritonserver can run here: {exc}")


def start_stack(bundle, tmp: Path, probe_every: float = 0.5, exit_timeout: int = 30, **cfg):
    """A ServingStack (guard + supervisor + tritonserver) on free loopback ports."""
    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.guard import GuardLimits
    from edgefill.runtime.frontends.serve.repository import build_repository
    from edgefill.runtime.frontends.serve.supervisor import ServingStack

    sc = ServeConfig(**{"threads": 1, **cfg})
    repo = build_repository(str(bundle), tmp / "repo", sc)
    http, grpc, metrics = free_ports(3)
    stack = ServingStack(repo, http_port=http, grpc_port=grpc, metrics_port=metrics, exit_timeout=exit_timeout,
                         limits=GuardLimits.for_pixels(sc.max_image_pixels, sc.max_inflight), probe_every=probe_every)
    stack.grpc_target = f"127.0.0.1:{grpc}"
    stack.metrics_port = metrics
    return stack.start()


SERVER_MAX_SAMPLES = 4  # the shared server's SAMPLES bound (below the default, so the bound is its own)


@pytest.fixture(scope="module")
def server(triton_available, tiny_bundle, tmp_path_factory):
    stack = start_stack(tiny_bundle, tmp_path_factory.mktemp("serve"), max_batch=8, max_queue=32,
                        max_image_pixels=200 * 200, max_steps=1000, max_samples=SERVER_MAX_SAMPLES)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def client(server):
    from edgefill.runtime.frontends.serve.client import ServeClient

    c = ServeClient(server.url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def reference(tiny_bundle):
    from edgefill.runtime import Inpainter

    return Inpainter(tiny_bundle, provider="cpu", threads=1)


def faces(n: int, seed: int = 0, size=(48, 40)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def raw_infer(server, inputs: dict, timeout: float = 120) -> tuple[int, dict | str]:
    """POST a KServe v2 JSON request; (HTTP status, outputs by name or the error text)."""
    body = json.dumps({"inputs": serve_load._inputs(**inputs)}).encode()
    status, payload, _ = serve_load.post(server.url, body, timeout=timeout)
    return status, payload


def status_of(stack) -> dict:
    with urllib.request.urlopen(stack.url + "/v2/edgefill/status", timeout=10) as r:
        return json.loads(r.read())


def assert_clean_error(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message
    for leak in ("/work", "/tmp", "site-packages", "/usr", "/root", ".py"):
        assert leak not in message, message


def session_processes(sid: int) -> list[str]:
    """Processes still alive in the session tritonserver led (its stubs included)."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid,sid,stat,args"], capture_output=True, text=True).stdout.splitlines()
    return [ln for ln in out[1:] if ln.split()[1] == str(sid) and not ln.split()[2].startswith("Z")]


def wait_until(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


# ---------------------------------------------------------------- shared server: answers only


def test_round_trip_equals_the_in_process_inpainter(client, reference):
    for i, img in enumerate(faces(2, seed=1)):
        got, stats = client.inpaint(img, "center", steps=12, seed=i)
        want = reference.inpaint(img, "center", steps=12, seed=i)
        assert np.array_equal(got, want.image), i
        assert stats["steps_run"] == 12 and stats["loss"] == pytest.approx(want.stats["loss"], rel=1e-6)
    mask = np.zeros((48, 40), np.uint8)
    mask[10:30, 5:25] = 255
    got, _ = client.inpaint(faces(1, 3)[0], mask, steps=5, seed=7, box=(2, 2, 36, 40))
    want = reference.inpaint(faces(1, 3)[0], mask, steps=5, seed=7, box=(2, 2, 36, 40))
    assert np.array_equal(got, want.image)


def test_concurrent_clients_each_get_their_own_result(server, reference):
    from edgefill.runtime.frontends.serve.client import ServeClient

    imgs = faces(12, seed=5)
    want = [reference.inpaint(img, "pattern", steps=20, seed=100 + i).image for i, img in enumerate(imgs)]

    def one(i):
        c = ServeClient(server.url)
        try:
            return c.inpaint(imgs[i], "pattern", steps=20, seed=100 + i)[0]
        finally:
            c.close()

    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(one, range(12)))
    for i in range(12):
        assert np.array_equal(got[i], want[i]), i


BAD = {
    "wrong dtype": ({"IMAGE": (np.zeros((1, 8, 8, 3), np.float32), "FP32"), "MASK_KIND": ([["center"]], "BYTES")},
                    "IMAGE"),
    "wrong shape": ({"IMAGE": (np.zeros((1, 8, 8, 4), np.uint8), "UINT8"), "MASK_KIND": ([["center"]], "BYTES")},
                    "IMAGE"),
    "empty image": ({"IMAGE": (np.zeros((1, 0, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["center"]], "BYTES")},
                    "empty"),
    "bad mask kind": ({"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["sideways"]], "BYTES")},
                      "MASK_KIND"),
    "negative steps": ({"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8"), "MASK_KIND": ([["center"]], "BYTES"),
                        "STEPS": ([[-3]], "INT32")}, "STEPS"),
    "oversized image": ({"IMAGE": (np.zeros((1, 300, 300, 3), np.uint8), "UINT8"),
                         "MASK_KIND": ([["center"]], "BYTES")}, "limit"),
    "no mask": ({"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8")}, "MASK"),
    "mask of another size": ({"IMAGE": (np.zeros((1, 8, 8, 3), np.uint8), "UINT8"),
                              "MASK": (np.zeros((1, 9, 8), np.uint8), "UINT8")}, "match"),
}


def test_bad_requests_fail_alone_with_one_line_4xx(server, reference):
    imgs = faces(6, seed=9)
    want = [reference.inpaint(img, "center", steps=50, seed=i).image for i, img in enumerate(imgs)]
    jobs = [("good", i) for i in range(len(imgs))] + [("bad", k) for k in BAD]
    order = [j for pair in zip(jobs[:6], list(jobs[6:]) + [None] * 6) for j in pair if j is not None]

    def run(job):
        kind, key = job
        if kind == "good":
            img = imgs[key]
            return job, raw_infer(server, {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"),
                                           "STEPS": ([[50]], "INT32"), "SEED": ([[key]], "INT64")})
        return job, raw_infer(server, BAD[key][0])

    with ThreadPoolExecutor(len(order)) as pool:
        results = list(pool.map(run, order))
    for (kind, key), (status, payload) in results:
        if kind == "good":
            assert status == 200, (key, payload)
            assert np.array_equal(payload["INPAINTED"][0].astype(np.uint8), want[key]), key
        else:
            assert 400 <= status < 500, (key, status, payload)
            assert BAD[key][1].lower() in payload.lower(), (key, payload)
            assert_clean_error(payload)


def test_hostile_http_and_grpc_requests_get_their_own_4xx_and_the_server_keeps_serving(server, reference):
    """A seeded fuzz over every kind of malformed request (serve_load.hostile_http/_grpc): huge
    declared shapes, data that lies about its shape, truncated and random bodies, NaN and inf,
    absurd steps, oversized and chunked bodies, model control... Each gets a 4xx (gRPC: a
    client-error status) with one clean line; the server stays ready and the next good request is
    answered exactly."""
    rng = np.random.default_rng(2024)
    host, port = server.url.split("://")[1].split(":")
    img = faces(1, seed=4)[0]
    want = reference.inpaint(img, "center", steps=3, seed=1).image
    cases = serve_load.hostile_http(rng, 45, server.limits.max_elements)
    seen = set()
    for i, (name, raw, shut) in enumerate(cases):
        status, message = serve_load.send_raw(host, int(port), raw, shut_write=shut)
        assert 400 <= status < 500, (name, status, message)
        assert_clean_error(message)
        seen.add(name)
        if i % 9 == 8:
            got, _ = serve_load.post(server.url, serve_load.good_json(img, 1, 3))[:2]
            assert got == 200
    assert len(seen) >= 28
    client_errors = {"INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"}
    for name, request in serve_load.hostile_grpc(rng, 16):
        code, details = serve_load.grpc_infer(server.grpc_target, request)
        assert code in client_errors, (name, code, details)
        assert_clean_error(details)
    assert status_of(server)["serving"] and server.triton.process.poll() is None
    assert status_of(server)["restarts"] == 0
    status, out, _ = serve_load.post(server.url, serve_load.good_json(img, 1, 3))
    assert status == 200 and np.array_equal(out["INPAINTED"][0].astype(np.uint8), want)


def test_samples_equal_the_in_process_inpainter_and_leave_plain_requests_as_they_were(server, client, reference):
    """SAMPLES=3: three different completions, best loss first, pixel for pixel the local
    Inpainter.inpaint(samples=3)'s for the same seed; INPAINTED is the best of them. Without
    SAMPLES the answer has exactly the outputs and shapes it had before SAMPLES existed."""
    img = faces(1, seed=41)[0]
    got = client.inpaint(img, "center", steps=6, seed=4, samples=3)
    want = reference.inpaint(img, "center", steps=6, seed=4, samples=3)
    assert len(got) == len(want) == 3
    for k, ((image, stats), res) in enumerate(zip(got, want)):
        assert np.array_equal(image, res.image), k
        assert stats["loss"] == pytest.approx(res.stats["loss"], rel=1e-6) and stats["sample"] == k
        assert stats["steps_run"] == 6 and stats["samples"] == 3
    assert [s["loss"] for _, s in got] == sorted(s["loss"] for _, s in got)
    hole = np.zeros(img.shape[:2], bool)
    hole[img.shape[0] // 4: 3 * img.shape[0] // 4, img.shape[1] // 4: 3 * img.shape[1] // 4] = True
    assert len({image[hole].tobytes() for image, _ in got}) == 3, "three different completions"
    base = {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"), "STEPS": ([[6]], "INT32"),
            "SEED": ([[4]], "INT64")}
    status, out = raw_infer(server, {**base, "SAMPLES": ([[3]], "INT32")})
    assert status == 200, out
    assert out["INPAINTED_SAMPLES"].shape == (1, 3, *img.shape) and out["LOSS"].shape == (1, 3)
    assert np.array_equal(out["INPAINTED"][0], out["INPAINTED_SAMPLES"][0, 0])
    status, plain = raw_infer(server, base)
    assert status == 200, plain
    assert set(plain) == {"INPAINTED", "LOSS", "STEPS_RUN"}
    assert plain["INPAINTED"].shape == (1, *img.shape) and plain["LOSS"].shape == (1, 1)
    assert np.array_equal(plain["INPAINTED"][0].astype(np.uint8), reference.inpaint(img, "center", steps=6,
                                                                                     seed=4).image)
    status, one = raw_infer(server, {**base, "SAMPLES": ([[1]], "INT32")})
    assert status == 200 and np.array_equal(one["INPAINTED"], plain["INPAINTED"]) and one["LOSS"].shape == (1, 1)
    assert np.array_equal(one["INPAINTED_SAMPLES"][0], plain["INPAINTED"])


def test_samples_out_of_range_get_one_line_400(server, client):
    from edgefill.runtime.errors import EdgefillError

    limit = SERVER_MAX_SAMPLES
    img = faces(1, seed=42)[0]
    for k in (0, -1, limit + 1, 1000):
        status, message = raw_infer(server, {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"),
                                             "SAMPLES": ([[k]], "INT32")})
        assert status == 400, (k, status, message)
        assert f"SAMPLES must be in 1..{limit}, got {k}" in message, message
        assert_clean_error(message)
    with pytest.raises(EdgefillError, match=f"server: 400: .*SAMPLES must be in 1..{limit}") as err:
        client.inpaint(img, "center", samples=limit + 1)
    assert "\n" not in str(err.value)


def test_samples_in_a_mixed_batch_each_answer_their_own(server, reference):
    """Concurrent requests with no SAMPLES, SAMPLES=1 and SAMPLES=3 (batched together by Triton as
    they arrive): each gets its own answer, equal to its local run."""
    from edgefill.runtime.frontends.serve.client import ServeClient

    imgs = faces(6, seed=43)
    ks = [None, 3, 1, 3, None, 2]
    want = [reference.inpaint(img, "center", steps=8, seed=200 + i, samples=ks[i]) for i, img in enumerate(imgs)]

    def one(i):
        c = ServeClient(server.url)
        try:
            return c.inpaint(imgs[i], "center", steps=8, seed=200 + i, samples=ks[i])
        finally:
            c.close()

    with ThreadPoolExecutor(len(imgs)) as pool:
        got = list(pool.map(one, range(len(imgs))))
    for i, k in enumerate(ks):
        if k is None:
            assert np.array_equal(got[i][0], want[i].image), i
        else:
            assert len(got[i]) == k, i
            for (image, stats), res in zip(got[i], want[i]):
                assert np.array_equal(image, res.image), i


def test_samples_answer_batch_runs_one_pipeline_call_per_sample_count(tiny_bundle, reference):
    """Triton-free: a batch of problems with K = none, 1, 3, 3, 2 is searched with one
    Pipeline.run (no SAMPLES) and one Pipeline.run_samples per distinct K, never K separate runs,
    and every answer equals the local Inpainter's."""
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.requests import answer_batch, parse_request

    pipeline = Pipeline(tiny_bundle, provider="cpu", threads=1)
    calls = []
    run, run_samples = pipeline.run, pipeline.run_samples
    pipeline.run = lambda images, *a, **kw: calls.append(("run", len(images), kw.get("z0") is None)) or run(
        images, *a, **kw)
    pipeline.run_samples = lambda images, *a, **kw: calls.append(("run_samples", len(images), kw["samples"])) or \
        run_samples(images, *a, **kw)
    imgs = faces(5, seed=44)
    ks = [None, 1, 3, 3, 2]
    problems = []
    for i, (img, k) in enumerate(zip(imgs, ks)):
        tensors = {"IMAGE": img[None], "MASK_KIND": np.array([[b"center"]], object), "STEPS": np.array([[5]], np.int32),
                   "SEED": np.array([[300 + i]], np.int64)}
        if k is not None:
            tensors["SAMPLES"] = np.array([[k]], np.int32)
        problems.append(parse_request(tensors, ServeConfig(), pipeline))
    answers = answer_batch(problems, pipeline)
    outer = [c for c in calls if not (c[0] == "run" and not c[2])]  # run_samples calls run(z0=...) inside
    assert sorted(outer, key=str) == sorted([("run", 1, True), ("run_samples", 1, 1), ("run_samples", 2, 3),
                                             ("run_samples", 1, 2)], key=str), calls
    for i, (img, k) in enumerate(zip(imgs, ks)):
        want = reference.inpaint(img, "center", steps=5, seed=300 + i, samples=k)
        want = [want] if k is None else want
        assert answers[i].images.shape == (len(want), *img.shape) and answers[i].samples == k
        for j, res in enumerate(want):
            assert np.array_equal(answers[i].images[j], res.image), (i, j)
            assert answers[i].losses[j] == pytest.approx(res.stats["loss"], rel=1e-6)


def test_samples_are_declared_by_the_exported_model_config(tiny_bundle, tmp_path):
    from edgefill.runtime.errors import EdgefillError
    from edgefill.runtime.frontends.inpainter import MAX_SAMPLES
    from edgefill.runtime.frontends.serve.config import ServeConfig

    repo = tmp_path / "repo"
    proc = run_cli("export", "triton", "--bundle", str(tiny_bundle), "--out", str(repo))
    assert proc.returncode == 0, proc.stderr
    config = (repo / "edgefill" / "config.pbtxt").read_text()
    pattern = r'name: "(\w+)"\s*data_type: (\w+)\s*dims: (\[[^\]]*\])(\s*optional: true)?'
    declared = {m[0]: m[1:] for m in re.findall(pattern, config)}
    assert declared["SAMPLES"][:2] == ("TYPE_INT32", "[ 1 ]") and declared["SAMPLES"][2].strip() == "optional: true"
    assert declared["INPAINTED_SAMPLES"][:2] == ("TYPE_UINT8", "[ -1, -1, -1, 3 ]")
    assert declared["LOSS"][:2] == ("TYPE_FP32", "[ -1 ]")
    assert declared["INPAINTED"][:2] == ("TYPE_UINT8", "[ -1, -1, 3 ]")
    assert json.loads(proc.stdout)["config"]["max_samples"] == ServeConfig().max_samples <= MAX_SAMPLES
    for bad in (0, MAX_SAMPLES + 1):
        with pytest.raises(EdgefillError, match="max-samples"):
            ServeConfig(max_samples=bad)


def test_health_and_metrics_answer(server, client):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/edgefill/ready"):
        with urllib.request.urlopen(server.url + path, timeout=10) as r:
            assert r.status == 200, path
    client.inpaint(faces(1)[0], "center", steps=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'nv_inference_request_success{model="edgefill"' in text
    assert "nv_inference_queue_summary_us" in text or "nv_inference_request_summary_us" in text


def _successes(server) -> float:
    """Triton's count of successful inferences of the model (client requests and probes alike)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return float(re.search(r'^nv_inference_request_success\{model="edgefill".*?\} (\S+)', text, re.M).group(1))


def test_the_supervisor_probes_only_while_no_request_succeeds(server, client):
    """Idle, a tiny probe inference every probe_every (0.5 s) proves the model alive; while real
    requests succeed through the guard they are the proof, and no probe is sent. (A probe is one
    more request in Triton's batcher, which at one client could strand a request for 0.5 s.)"""
    img = faces(1)[0]
    start = _successes(server)
    time.sleep(2.0)
    idle_probes = _successes(server) - start
    start, sent, t0 = _successes(server), 0, time.monotonic()
    while time.monotonic() - t0 < 2.0:
        client.inpaint(img, "center", steps=1)
        sent += 1
    busy_probes = _successes(server) - start - sent
    assert idle_probes >= 2 and busy_probes <= 1, (idle_probes, busy_probes, sent)


def test_serve_defaults_follow_the_instance_kind():
    from edgefill.runtime.frontends.serve.config import DEFAULT_INSTANCES, ServeConfig

    assert ServeConfig().instances == DEFAULT_INSTANCES["cpu"] == 2 and ServeConfig().queue_delay_us == 0
    assert ServeConfig(kind="gpu").instances == 1 and ServeConfig(instances=3).instances == 3


# ---------------------------------------------------------------- each test owns its server


def test_a_flood_beyond_the_queue_gets_503s_without_waiting_for_the_work(triton_available, tiny_bundle, tmp_path):
    """max batch 2, queue 4: of 40 simultaneous requests 1-2 run + 4 wait (+ those admitted as
    batches finish, so at least 5 are served); the rest are refused on arrival, so every 503 comes
    back before the last accepted request has finished its work (by design: the accepted work is
    several batches of 300 steps each)."""
    stack = start_stack(tiny_bundle, tmp_path, max_batch=2, max_queue=4, max_steps=1000)
    try:
        img = faces(1, seed=11)[0]
        body = serve_load.good_json(img, 0, 300)
        t0 = time.monotonic()

        def timed(_):
            status, payload, _dt = serve_load.post(stack.url, body)
            return status, payload, time.monotonic() - t0

        with ThreadPoolExecutor(40) as pool:
            results = list(pool.map(timed, range(40)))
        statuses = [s for s, _, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        rejected = [(p, t) for s, p, t in results if s == 503]
        accepted = [t for s, _, t in results if s == 200]
        assert len(accepted) >= 5 and len(rejected) >= 10, statuses
        assert all("queue" in p.lower() for p, _ in rejected), rejected[:3]
        assert max(t for _, t in rejected) < max(accepted)
        status, out, _ = serve_load.post(stack.url, serve_load.good_json(img, 0, 5))
        assert status == 200 and out["STEPS_RUN"].reshape(-1)[0] == 5
    finally:
        stack.stop()


def test_the_queue_delay_bound_refuses_what_would_wait_too_long(triton_available, tiny_bundle, tmp_path):
    """--max-queue-delay-ms: with an unbounded queue, a burst whose work takes far longer than the
    bound gets some requests refused (503, Triton's 'timeout') instead of all waiting; the
    accepted ones still answer correctly."""
    stack = start_stack(tiny_bundle, tmp_path, max_batch=1, max_queue=0, max_queue_delay_ms=50, max_steps=2000)
    try:
        body = serve_load.good_json(faces(1, seed=12)[0], 0, 400)
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda _: serve_load.post(stack.url, body), range(12)))
        statuses = [s for s, _, _ in results]
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
        assert all("timeout" in p.lower() for s, p, _ in results if s == 503), results
    finally:
        stack.stop()


def test_the_guard_in_flight_bound_refuses_before_triton(triton_available, tiny_bundle, tmp_path):
    """--max-inflight 1: while one long request is in flight every other gets the guard's 503 at
    once (it never reaches Triton), then the server serves again."""
    stack = start_stack(tiny_bundle, tmp_path, max_batch=1, max_queue=0, max_inflight=1, max_steps=3000)
    try:
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(serve_load.post, stack.url, serve_load.good_json(faces(1)[0], 0, 3000))
            wait_until(lambda: status_of(stack)["inflight"] == 1, 60, "one request in flight")
            refused = [serve_load.post(stack.url, serve_load.good_json(faces(1)[0], i, 5)) for i in range(5)]
            assert [r[0] for r in refused] == [503] * 5 and all("in flight" in r[1] for r in refused), refused
            assert long.result()[0] == 200
        assert status_of(stack)["shed"] == 5
        assert serve_load.post(stack.url, serve_load.good_json(faces(1)[0], 0, 5))[0] == 200
    finally:
        stack.stop()


def test_stop_drains_at_the_guard_before_triton_gets_sigterm(tmp_path):
    """The stop order, without Triton's timing: a stand-in upstream holds every request until it
    is released. stop() must refuse new work at once (503 'stopping'), let the admitted requests
    finish against a live upstream, and only then stop the server, with none left in flight. (CI
    once saw a 503 where SIGTERM reached Triton before an admitted request did.)"""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from edgefill.runtime.frontends.serve.guard import GuardLimits, GuardServer
    from edgefill.runtime.frontends.serve.supervisor import ServingStack

    release, arrived = threading.Event(), []

    class Held(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.append(1)
            release.wait(60)
            body = b'{"outputs": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Held)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    class StandIn:  # what ServingStack.stop needs of a TritonServer
        process, exit_timeout, inflight_at_stop = object(), 30, None

        def stop(self):
            self.inflight_at_stop = stack.state.inflight
            return 0

    http, = free_ports(1)
    stack = ServingStack(tmp_path, http_port=http, limits=GuardLimits.for_pixels(4096 * 4096))
    stack.triton = StandIn()
    stack.guard = GuardServer("127.0.0.1", http, upstream.server_address[1], stack.limits, stack.state)
    stack.guard.serve_in_thread()
    stack.state.serving = True
    body = serve_load.good_json(faces(1)[0], 0, 5)
    try:
        with ThreadPoolExecutor(4) as pool:
            admitted = [pool.submit(serve_load.post, stack.url, body) for _ in range(3)]
            wait_until(lambda: len(arrived) == 3, 30, "three requests at the upstream")
            stopping = pool.submit(stack.stop)
            wait_until(lambda: not stack.state.serving, 30, "the guard refusing new work")
            late = serve_load.post(stack.url, body)
            assert late[0] == 503 and "stopping" in late[1], late
            assert stack.triton.inflight_at_stop is None  # not stopped while requests are in flight
            release.set()
            assert stopping.result(60) == 0
            assert [f.result()[0] for f in admitted] == [200] * 3
        assert stack.triton.inflight_at_stop == 0
    finally:
        release.set()
        if stack.guard is not None:
            stack._close_guard()
        upstream.shutdown()
        upstream.server_close()


def test_sigterm_under_load_drains_and_leaves_nothing(triton_available, tiny_bundle, tmp_path):
    from edgefill.runtime.frontends.serve.launcher import SHM_DIR

    # the drain may take as long as a loaded machine needs for two batches of 1500 steps: the bound
    # is generous by design (a quiet machine drains in seconds), so only a drain that drops work fails
    stack = start_stack(tiny_bundle, tmp_path, exit_timeout=600, max_batch=2, max_queue=0, max_steps=2000)
    pid, tmp, shm = stack.triton.process.pid, stack.triton._tmp, set(stack.triton._shm_owned)
    assert shm  # the Python backend's regions of this server (another server's are never touched)
    try:
        body = serve_load.good_json(faces(1, seed=2)[0], 0, 1500)
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(serve_load.post, stack.url, body) for _ in range(4)]
            wait_until(lambda: status_of(stack)["inflight"] == 4, 60, "four requests in flight")
            code = stack.stop()
            statuses = [f.result()[0] for f in futures]
    finally:
        stack.stop()
    assert statuses == [200] * 4, statuses
    assert code is not None
    assert not session_processes(pid), session_processes(pid)
    assert not tmp.exists()
    assert not [name for name in shm if (SHM_DIR / name).exists()]


def _kill_stub(stack) -> int:
    stubs = [ln.split()[0] for ln in session_processes(stack.triton.process.pid) if "triton_python_backend_stub" in ln]
    assert stubs, session_processes(stack.triton.process.pid)
    os.kill(int(stubs[0]), signal.SIGKILL)
    return int(stubs[0])


def test_a_killed_stub_under_load_is_noticed_and_the_server_serves_again(triton_available, tiny_bundle, tmp_path):
    """SIGKILL of the Python backend's stub while 4 clients send: requests then get a clear 503
    (never a 500 or a hang), ready answers 503 while it cannot serve, and the supervisor brings it
    back by itself; afterwards answers equal the in-process ones again."""
    from edgefill.runtime import Inpainter

    stack = start_stack(tiny_bundle, tmp_path, max_batch=4, max_queue=32, probe_every=0.5)
    try:
        img = faces(1, seed=21)[0]
        want = Inpainter(tiny_bundle, provider="cpu", threads=1).inpaint(img, "center", steps=20, seed=3).image
        body = serve_load.good_json(img, 3, 20)
        stop, seen = threading.Event(), queue.Queue()

        def client():
            while not stop.is_set():
                status, payload, _ = serve_load.post(stack.url, body, timeout=60)
                seen.put((status, payload))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: status_of(stack)["requests"] >= 8, 60, "load running")
            _kill_stub(stack)
            wait_until(lambda: status_of(stack)["restarts"] >= 1, 120, "a restart after the stub was killed")
            wait_until(lambda: status_of(stack)["serving"], 120, "serving again")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        results = []
        while not seen.empty():
            results.append(seen.get())
        assert {s for s, _ in results} <= {200, 503}, {(s, str(p)[:80]) for s, p in results if s not in (200, 503)}
        for s, p in results:
            if s == 503:
                assert_clean_error(p)
        for s, p in results:
            if s == 200:
                assert np.array_equal(p["INPAINTED"][0].astype(np.uint8), want)
        with urllib.request.urlopen(stack.url + "/v2/health/ready", timeout=10) as r:
            assert r.status == 200
        status, out, _ = serve_load.post(stack.url, body)
        assert status == 200 and np.array_equal(out["INPAINTED"][0].astype(np.uint8), want)
        assert stack.events and stack.events[0][2] > 0
    finally:
        stack.stop()


def test_a_killed_tritonserver_is_restarted_and_counted(triton_available, tiny_bundle, tmp_path):
    stack = start_stack(tiny_bundle, tmp_path, probe_every=0.5)
    try:
        old = stack.triton.process.pid
        os.killpg(old, signal.SIGKILL)
        wait_until(lambda: status_of(stack)["restarts"] == 1 and status_of(stack)["serving"], 120, "restarted")
        assert stack.triton.process.pid != old and not session_processes(old)
        status, out, _ = serve_load.post(stack.url, serve_load.good_json(faces(1)[0], 0, 2))
        assert status == 200
        # the restarted server (started by the supervisor's thread) still drains on stop
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(serve_load.post, stack.url, serve_load.good_json(faces(1)[0], 0, 1500))
            wait_until(lambda: status_of(stack)["inflight"] == 1, 60, "a request in flight")
            stack.stop()
            assert pending.result()[0] == 200
    finally:
        stack.stop()


def test_a_killed_edgefill_serve_takes_its_tritonserver_with_it(triton_available, tiny_bundle):
    http, grpc, metrics = free_ports(3)
    serve, lines = _serve("--bundle", str(tiny_bundle), "--http-port", str(http), "--grpc-port", str(grpc),
                          "--metrics-port", str(metrics), "--threads", "1")
    try:
        assert lines.wait_for("ready:", 120), "".join(lines.all)
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(serve.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert children
        serve.kill()
        serve.wait(timeout=30)
        for child in children:
            wait_until(lambda: not session_processes(int(child)), 60, f"tritonserver {child} gone")
    finally:
        _end(serve)


def test_a_client_that_hangs_up_mid_request_costs_nothing(triton_available, tiny_bundle, tmp_path):
    stack = start_stack(tiny_bundle, tmp_path)
    try:
        host, port = stack.url.split("://")[1].split(":")
        body = serve_load.good_json(faces(1)[0], 0, 800)
        for _ in range(3):  # send a long request and hang up without reading the answer
            s = socket.create_connection((host, int(port)))
            s.sendall(serve_load._http(body))
            s.close()
        s = socket.create_connection((host, int(port)))  # and one that stops halfway through its body
        s.sendall(serve_load._http(body)[: len(body) // 2])
        s.close()
        status, out, _ = serve_load.post(stack.url, serve_load.good_json(faces(1)[0], 0, 2))
        assert status == 200 and status_of(stack)["restarts"] == 0
    finally:
        stack.stop()


def test_short_soak_no_5xx_every_answer_exact_memory_flat(triton_available, tiny_bundle, tmp_path, reference):
    """The soak benchmark's short form: 240 requests from 16 clients, 5% malformed; zero 5xx,
    every good answer equal to its serial run, every bad one a 4xx, and the memory of tritonserver
    and its stubs grows at most 10% after warm-up. A warm-up round first: with two instances each
    stub's arenas grow on its own first batches, which a 3-second soak's first quarter misses."""
    stack = start_stack(tiny_bundle, tmp_path, max_batch=8, max_queue=64)
    try:
        imgs = faces(6, seed=31)
        warm = serve_load.soak(stack.url, stack.triton.process.pid, imgs, {}, requests=96, seconds=600,
                               concurrency=16, bad_every=20, steps=4, sample_every=0.5,
                               max_elements=stack.limits.max_elements)
        assert warm["5xx"] == 0 and warm["no_answer"] == 0, warm
        expected = {i: reference.inpaint(imgs[i % 6], "center", steps=4, seed=i).image for i in range(0, 240, 7)}
        report = serve_load.soak(stack.url, stack.triton.process.pid, imgs, expected, requests=240, seconds=600,
                                 concurrency=16, bad_every=20, steps=4, sample_every=0.5,
                                 max_elements=stack.limits.max_elements)
    finally:
        stack.stop()
    assert report["requests"] == 240, report
    assert report["5xx"] == 0 and report["no_answer"] == 0, report
    assert report["good_200"] == report["good"] == 228, report
    checked = [i for i in expected if i % 20 != 19]  # every 7th request, unless its slot is a bad one
    assert report["checked_against_serial"] == report["checked_equal_serial"] == len(checked), report
    assert report["bad"] == 12 and report["bad_4xx"] == 12, report["bad_not_4xx"]
    assert report["memory_growth_after_warmup"] is not None and report["memory_growth_after_warmup"] <= 0.10, \
        report["memory_mb"]


# ---------------------------------------------------------------- the CLI


class Lines:
    """stderr lines of a subprocess read on a thread, so a wait never blocks past its deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.q: queue.Queue = queue.Queue()
        self.all: list[str] = []
        threading.Thread(target=self._pump, args=(proc.stderr,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, fragment: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.all.append(line)
            if fragment in line:
                return True
        return False


def _serve(*args: str, tmpdir: Path | None = None) -> tuple[subprocess.Popen, Lines]:
    env = {**os.environ, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    proc = subprocess.Popen([sys.executable, "-m", "edgefill.runtime", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=env)
    return proc, Lines(proc)


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL of its whole session if it does not stop in time (no orphan)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_serve_bundle_and_inpaint_with_server(triton_available, tiny_bundle, tmp_path, sample_faces):
    """`edgefill serve --bundle` (the default path: a temporary repository), `inpaint --server`
    equal to the local inpaint, a bad request's one line, SIGTERM: exit 0 and nothing left."""
    from edgefill.runtime.imaging.images import read_image, write_image

    private_tmp = tmp_path / "tmp"  # its own TMPDIR: other servers on this machine make temp folders too
    private_tmp.mkdir()
    http, grpc, metrics = free_ports(3)
    serve, lines = _serve("--bundle", str(tiny_bundle), "--http-port", str(http), "--grpc-port", str(grpc),
                          "--metrics-port", str(metrics), "--threads", "1", tmpdir=private_tmp)
    try:
        assert lines.wait_for("ready:", 120), "".join(lines.all)
        src = tmp_path / "face.png"
        write_image(src, sample_faces[0])
        out = tmp_path / "out.png"
        proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(out), "--server",
                       f"http://127.0.0.1:{http}", "--steps", "6", "--seed", "3")
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["backend"] == "server" and summary["outputs"][0]["steps_run"] == 6
        local = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "local.png"), "--bundle",
                        str(tiny_bundle), "--steps", "6", "--seed", "3", "--threads", "1", "--no-progress")
        assert local.returncode == 0, local.stderr
        assert np.array_equal(read_image(out), read_image(tmp_path / "local.png"))
        bad = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "bad.png"), "--server",
                      f"http://127.0.0.1:{http}", "--steps", "99999")
        assert_one_line_error(bad, "STEPS")
        assert not (tmp_path / "bad.png").exists()
        serve.send_signal(signal.SIGTERM)
        assert lines.wait_for("stopped", 90), "".join(lines.all)
        serve.wait(timeout=60)
    finally:
        _end(serve)
    assert serve.returncode == 0, "".join(lines.all)
    assert not session_processes(serve.pid), session_processes(serve.pid)
    assert not list(private_tmp.glob("edgefill-*")), list(private_tmp.iterdir())  # ours are gone


def test_cli_export_triton_then_serve_the_repository(triton_available, tiny_bundle, tmp_path):
    repo = tmp_path / "repo"
    proc = run_cli("export", "triton", "--bundle", str(tiny_bundle), "--out", str(repo), "--max-batch", "4",
                   "--max-queue", "16", "--max-queue-delay-ms", "250", "--max-image-pixels", "10000")
    assert proc.returncode == 0, proc.stderr
    config = (repo / "edgefill" / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in config and "max_queue_size: 16" in config and "allow_ragged_batch: true" in config
    assert "default_timeout_microseconds: 250000" in config and "timeout_action: REJECT" in config
    assert (repo / "edgefill" / "1" / "model.py").is_file() and (repo / "edgefill" / "1" / "bundle" / "manifest.json").is_file()
    http, grpc, metrics = free_ports(3)
    serve, lines = _serve("--repository", str(repo), "--http-port", str(http), "--grpc-port", str(grpc),
                          "--metrics-port", str(metrics))
    try:
        assert lines.wait_for("ready:", 120), "".join(lines.all)
        url = f"http://127.0.0.1:{http}"
        status, _, _ = serve_load.post(url, serve_load.good_json(faces(1)[0], 0, 2))
        assert status == 200
        # the repository's own limit reaches the guard: 200x200 = 40,000 pixels > 10,000, refused before Triton
        big = json.dumps({"inputs": [{"name": "IMAGE", "shape": [1, 200, 200, 3], "datatype": "UINT8", "data": [0]}]})
        status, message, _ = serve_load.post(url, big.encode())
        assert status == 413 and "limit" in message
    finally:
        _end(serve)
    assert serve.returncode == 0, "".join(lines.all)


def test_cli_serve_refuses_a_port_in_use(triton_available, tiny_bundle):
    http, grpc, metrics = free_ports(3)
    for taken in (http, grpc, metrics):  # the guard's port, then Triton's: one line naming the port
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", taken))
            busy.listen(1)
            proc = run_cli("serve", "--bundle", str(tiny_bundle), "--http-port", str(http), "--grpc-port", str(grpc),
                           "--metrics-port", str(metrics), timeout=180)
        assert_one_line_error(proc, f"{taken}")
    proc = run_cli("serve", "--http-port", "9000", "--grpc-port", "9000")
    assert_one_line_error(proc, "must differ")


def test_client_side_bad_input_is_one_line(tmp_path, sample_faces):
    pytest.importorskip("tritonclient.http", reason="the serve extra (tritonclient) is not installed")
    from edgefill.runtime.imaging.images import write_image

    src = tmp_path / "face.png"
    write_image(src, sample_faces[0])
    (port,) = free_ports(1)
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   f"http://127.0.0.1:{port}")
    assert_one_line_error(proc, "server")
    for url in ("ftp://127.0.0.1:8000", "http://", "not a url at all"):
        proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server", url)
        assert_one_line_error(proc, "server")
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   "http://127.0.0.1:1", "--lam", "0.5")
    assert_one_line_error(proc, "--lam is not available with --server")
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   "http://127.0.0.1:1", "--no-flip-average")  # the server keeps its bundle's setting
    assert_one_line_error(proc, "--flip-average/--no-flip-average is not available with --server")
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   "http://127.0.0.1:1", "--samples", "3", "--sample-scale", "1")
    assert_one_line_error(proc, "--sample-scale is not available with --server")
    assert not (tmp_path / "o.png").exists()
    proc = run_cli("serve", "--repository", str(tmp_path))
    assert_one_line_error(proc, "not an edgefill model repository")
    proc = run_cli("export", "triton", "--bundle", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, "bundle not found")


def test_the_guard_answers_without_nagle():
    """The guard writes an answer as headers then body; with Nagle's algorithm on, the body waited
    for the client's delayed ACK (+40 ms a request: 72 ms through the guard against 27 ms over
    gRPC, docs/serving.md). socketserver sets TCP_NODELAY on each connection when asked to."""
    from edgefill.runtime.frontends.serve.guard import _Handler

    assert _Handler.disable_nagle_algorithm is True
