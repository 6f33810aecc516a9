"""Serving with a REAL tritonserver started by the tests (the `serve` extra's binary, or one on
PATH; skipped with the reason only where none can run). Tiny bundle, loopback ports picked free.

Covered: a round trip equals the in-process Inpainter bit for bit; concurrent clients each get
exactly their own result; bad requests batched with good ones fail alone with one-line 400s;
a flood beyond the queue gets quick 503s and the server then serves normally; health and
metrics; SIGTERM under load drains and leaves no process, shared memory or temp folder; the
CLI (`export triton`, `serve`, `inpaint --server`) end to end; bad client input.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


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


def start_server(bundle, tmp: Path, **cfg):
    from edgefill.runtime.frontends.serve.config import ServeConfig
    from edgefill.runtime.frontends.serve.launcher import TritonServer
    from edgefill.runtime.frontends.serve.repository import build_repository

    repo = build_repository(str(bundle), tmp / "repo", ServeConfig(**{"threads": 1, **cfg}))
    http, grpc, metrics = free_ports(3)
    return TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics, exit_timeout=20).start()


@pytest.fixture(scope="module")
def server(triton_available, tiny_bundle, tmp_path_factory):
    srv = start_server(tiny_bundle, tmp_path_factory.mktemp("serve"), max_batch=8, max_queue=16,
                       max_image_pixels=200 * 200, max_steps=3000)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    from edgefill.runtime.frontends.serve.client import ServeClient

    c = ServeClient(server.url)
    yield c
    c.close()


def faces(n: int, seed: int = 0, size=(48, 40)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def raw_infer(server, inputs: dict) -> tuple[int, dict | str]:
    """POST a KServe v2 JSON request; (HTTP status, outputs by name or the error text)."""
    body = {"inputs": [{"name": k, "shape": list(np.asarray(v).shape), "datatype": dt,
                        "data": np.asarray(v).reshape(-1).tolist() if dt != "BYTES" else list(np.asarray(v).reshape(-1))}
                       for k, (v, dt) in inputs.items()]}
    req = urllib.request.Request(f"{server.url}/v2/models/edgefill/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            out = json.loads(r.read())
            return r.status, {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in out["outputs"]}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()).get("error", "")


def test_round_trip_equals_the_in_process_inpainter(client, tiny_bundle):
    from edgefill.runtime import Inpainter

    inp = Inpainter(tiny_bundle, provider="cpu", threads=1)
    for i, img in enumerate(faces(2, seed=1)):
        got, stats = client.inpaint(img, "center", steps=12, seed=i)
        want = inp.inpaint(img, "center", steps=12, seed=i)
        assert np.array_equal(got, want.image), i
        assert stats["steps_run"] == 12 and stats["loss"] == pytest.approx(want.stats["loss"], rel=1e-6)
    mask = np.zeros((48, 40), np.uint8)
    mask[10:30, 5:25] = 255
    got, _ = client.inpaint(faces(1, 3)[0], mask, steps=5, seed=7, box=(2, 2, 36, 40))
    want = inp.inpaint(faces(1, 3)[0], mask, steps=5, seed=7, box=(2, 2, 36, 40))
    assert np.array_equal(got, want.image)


def test_concurrent_clients_each_get_their_own_result(server, tiny_bundle):
    from edgefill.runtime import Inpainter
    from edgefill.runtime.frontends.serve.client import ServeClient

    imgs = faces(12, seed=5)
    inp = Inpainter(tiny_bundle, provider="cpu", threads=1)
    want = [inp.inpaint(img, "pattern", steps=20, seed=100 + i).image for i, img in enumerate(imgs)]

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


def test_bad_requests_fail_alone_with_one_line_400s(server, client, tiny_bundle):
    from edgefill.runtime import Inpainter

    imgs = faces(6, seed=9)
    inp = Inpainter(tiny_bundle, provider="cpu", threads=1)
    want = [inp.inpaint(img, "center", steps=200, seed=i).image for i, img in enumerate(imgs)]
    jobs = [("good", i) for i in range(len(imgs))] + [("bad", k) for k in BAD]
    order = [j for pair in zip(jobs[:6], list(jobs[6:]) + [None] * 6) for j in pair if j is not None]

    def run(job):
        kind, key = job
        if kind == "good":
            img = imgs[key]
            return job, raw_infer(server, {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"),
                                           "STEPS": ([[200]], "INT32"), "SEED": ([[key]], "INT64")})
        return job, raw_infer(server, BAD[key][0])

    with ThreadPoolExecutor(len(order)) as pool:
        results = list(pool.map(run, order))
    for (kind, key), (status, payload) in results:
        if kind == "good":
            assert status == 200, (key, payload)
            assert np.array_equal(payload["INPAINTED"][0].astype(np.uint8), want[key]), key
        else:
            assert status == 400, (key, status, payload)
            assert BAD[key][1].lower() in payload.lower(), (key, payload)
            assert "\n" not in payload and "Traceback" not in payload and "/work" not in payload and \
                "site-packages" not in payload, (key, payload)


def test_a_flood_beyond_the_queue_gets_quick_503s_then_the_server_serves(server, client):
    img = faces(1, seed=11)[0]
    body = {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"), "STEPS": ([[3000]], "INT32")}

    def timed(_):
        t0 = time.perf_counter()
        status, _payload = raw_infer(server, body)
        return status, time.perf_counter() - t0

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(timed, range(40)))
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 503}, statuses
    rejected = [t for s, t in results if s == 503]
    assert len(rejected) >= 10, statuses
    assert max(rejected) < 1.0, max(rejected)
    got, stats = client.inpaint(img, "center", steps=5)
    assert stats["steps_run"] == 5 and got.shape == img.shape


def test_health_and_metrics_answer(server, client):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/edgefill/ready"):
        with urllib.request.urlopen(server.url + path, timeout=5) as r:
            assert r.status == 200, path
    client.inpaint(faces(1)[0], "center", steps=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'nv_inference_request_success{model="edgefill"' in text
    assert "nv_inference_queue_summary_us" in text or "nv_inference_request_summary_us" in text


def _our_processes(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,pgid,args"], capture_output=True, text=True).stdout.splitlines()
    return [ln for ln in out[1:] if ln.split()[1] == str(pid)]


def test_sigterm_under_load_drains_and_leaves_nothing(triton_available, tiny_bundle, tmp_path):
    from edgefill.runtime.frontends.serve.launcher import SHM_DIR, SHM_PREFIX

    shm_before = {p.name for p in SHM_DIR.iterdir() if p.name.startswith(SHM_PREFIX)}
    srv = start_server(tiny_bundle, tmp_path, max_batch=2, max_queue=0)
    pid, tmp = srv.process.pid, srv._tmp
    img = faces(1, seed=2)[0]
    body = {"IMAGE": (img[None], "UINT8"), "MASK_KIND": ([["center"]], "BYTES"), "STEPS": ([[1500]], "INT32")}
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(raw_infer, srv, body) for _ in range(4)]
        time.sleep(0.5)  # all four are in flight or queued
        code = srv.stop()
        statuses = [f.result()[0] for f in futures]
    assert statuses == [200] * 4, statuses
    assert code is not None
    assert not _our_processes(pid), _our_processes(pid)
    assert not tmp.exists()
    assert {p.name for p in SHM_DIR.iterdir() if p.name.startswith(SHM_PREFIX)} <= shm_before


def test_cli_export_triton_serve_and_inpaint_with_server(triton_available, tiny_bundle, tmp_path, sample_faces):
    from edgefill.runtime.imaging.images import read_image, write_image

    repo = tmp_path / "repo"
    proc = run_cli("export", "triton", "--bundle", str(tiny_bundle), "--out", str(repo), "--max-batch", "4",
                   "--max-queue", "16")
    assert proc.returncode == 0, proc.stderr
    config = (repo / "edgefill" / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in config and "max_queue_size: 16" in config and "allow_ragged_batch: true" in config
    assert (repo / "edgefill" / "1" / "model.py").is_file() and (repo / "edgefill" / "1" / "bundle" / "manifest.json").is_file()

    http, grpc, metrics = free_ports(3)
    serve = subprocess.Popen([sys.executable, "-m", "edgefill.runtime", "serve", "--repository", str(repo),
                              "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stderr.readline()
            lines.append(line)
            if "ready:" in line or not line:
                break
        assert "ready:" in lines[-1], "".join(lines)
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
        bad = run_cli("inpaint", str(src), "--mask", "center", "--out", str(out), "--server",
                      f"http://127.0.0.1:{http}", "--steps", "99999")
        assert_one_line_error(bad, "STEPS")
    finally:
        serve.send_signal(signal.SIGTERM)
        rest = serve.communicate(timeout=60)[1]
    assert serve.returncode == 0, rest
    assert "stopped" in rest
    assert not _our_processes(serve.pid)


def test_client_side_bad_input_is_one_line(tmp_path, sample_faces):
    pytest.importorskip("tritonclient.http", reason="the serve extra (tritonclient) is not installed")
    from edgefill.runtime.imaging.images import write_image

    src = tmp_path / "face.png"
    write_image(src, sample_faces[0])
    (port,) = free_ports(1)
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   f"http://127.0.0.1:{port}")
    assert_one_line_error(proc, "server")
    proc = run_cli("inpaint", str(src), "--mask", "center", "--out", str(tmp_path / "o.png"), "--server",
                   "http://127.0.0.1:1", "--lam", "0.5")
    assert_one_line_error(proc, "--lam is not available with --server")
    assert not (tmp_path / "o.png").exists()
    proc = run_cli("serve", "--repository", str(tmp_path))
    assert_one_line_error(proc, "not an edgefill model repository")
    proc = run_cli("export", "triton", "--bundle", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, "bundle not found")
