"""The HTTP front door of `edgefill serve`: checks every request's size before Triton sees it.

Why it exists (measured on the tritonserver 2.51 that nvidia-pytriton 0.7.0 bundles): a KServe v2
JSON request whose IMAGE *declares* shape [1, 100000, 100000, 3] with a 3-value `data` array made
tritonserver allocate the declared 30 GB and die; malformed JSON got a 500. Later Triton releases
check sizes before allocating; this one has no such option. gRPC and the binary-tensor HTTP path
were measured safe (a declared size that its bytes do not match is a 400 in ~1 ms), so gRPC goes
to Triton directly and only HTTP passes through here.

What the guard does, per HTTP request, before forwarding it unchanged to Triton on loopback:
  - infer requests: a Content-Length is required (411) and at most `max_body_bytes` (413); the
    JSON (or the JSON header of a binary-tensor request) must parse (400), and every input's
    declared element count must be at most `max_elements` (413) and, for JSON `data`, equal the
    values actually sent (400) - so nothing can make Triton allocate more than was sent;
  - /v2/repository/* (model load/unload) is refused (403): clients never control the models;
  - /v2/health/ready and the model's ready endpoint answer 503 while the supervisor restarts
    Triton (its own ready stays 200 while its Python stub is dead: triton-inference-server
    issues 7230, 8604); infer requests then get a fast 503 with a one-line reason;
  - a 500 "Stub process ... is not healthy" from Triton is turned into a 503 for that client and
    reported to the supervisor, which restarts the model at once;
  - with an in-flight bound (`--max-inflight`), an infer request beyond it gets a 503 at once,
    before Triton spends anything on it;
  - GET /v2/edgefill/status: JSON counters (requests, rejected, shed, in flight, restarts, serving).
Every error body is KServe's {"error": "<one line>"}. A client that hangs up mid-request costs
only its own connection.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np

try:  # tritonclient brings python-rapidjson: several times faster on big JSON bodies
    import rapidjson as _json_impl
except ImportError:  # pragma: no cover - the serve extra always has it
    _json_impl = json

MAX_HEADER_BYTES = 1 << 20
_DTYPE_BYTES = {"BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "BF16": 2, "UINT32": 4,
                "INT32": 4, "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8, "BYTES": 1}
FORWARD_HEADERS = ("Content-Type", "Inference-Header-Content-Length", "Accept")
RETURN_HEADERS = ("Content-Type", "Inference-Header-Content-Length")


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class GuardLimits:
    """max_elements: the most values one input may declare (IMAGE: max_image_pixels * 3);
    max_body_bytes: the largest request body (JSON text of max_elements values, plus slack)."""

    max_elements: int
    max_body_bytes: int
    max_inflight: int = 0  # infer requests forwarded at once; beyond it a 503 at once (0: no bound)

    @classmethod
    def for_pixels(cls, max_image_pixels: int, max_inflight: int = 0) -> "GuardLimits":
        values = max_image_pixels * 4  # IMAGE (3 per pixel) + MASK (1 per pixel)
        return cls(max_elements=max_image_pixels * 3, max_body_bytes=values * 4 + (1 << 16),
                   max_inflight=max_inflight)


@dataclass
class GuardState:
    """Shared between the guard and the supervisor. serving: False while Triton (re)starts or
    stops; reason: the one line a client gets meanwhile. Counters only grow."""

    serving: bool = False
    reason: str = "the server is starting"
    requests: int = 0
    rejected: int = 0
    unavailable: int = 0
    restarts: int = 0
    inflight: int = 0  # infer requests forwarded to Triton and not answered yet
    last_success: float = 0.0  # time.monotonic() of the last infer Triton answered 200
    shed: int = 0  # infer requests refused at the in-flight bound
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_unhealthy: Callable[[str], None] | None = None

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + by)

    def admit(self, limit: int) -> str | None:
        """Take an in-flight slot (None), or say why not: "unavailable" while not serving (checked
        under the lock, so a stop that saw no request in flight never has one slip past it), "shed"
        at the bound. Either refusal is counted."""
        with self.lock:
            if not self.serving:
                self.unavailable += 1
                return "unavailable"
            if limit and self.inflight >= limit:
                self.shed += 1
                return "shed"
            self.inflight += 1
            return None

    def stop_serving(self, reason: str) -> None:
        """Refuse new work from now on (ready and infer answer 503 with `reason`)."""
        with self.lock:
            self.serving, self.reason = False, reason

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` s until no admitted infer request is left; True when none is."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if self.inflight == 0:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def snapshot(self) -> dict:
        with self.lock:
            return {"serving": self.serving, "reason": None if self.serving else self.reason,
                    "requests": self.requests, "rejected": self.rejected, "unavailable": self.unavailable,
                    "restarts": self.restarts, "inflight": self.inflight, "shed": self.shed}


_INT_RANGES = {"UINT8": (0, 255), "INT8": (-128, 127), "UINT16": (0, 65535), "INT16": (-32768, 32767),
               "UINT32": (0, 2**32 - 1), "INT32": (-2**31, 2**31 - 1), "UINT64": (0, 2**64 - 1),
               "INT64": (-2**63, 2**63 - 1)}


def _check_data(name: str, datatype: str, data, declared: int) -> None:
    """JSON `data` must hold exactly the declared number of values, each of the declared type and
    range (Triton 2.51 answers a float in a UINT8 tensor with a 500)."""
    if not isinstance(data, list):
        data = [data]
    try:
        arr = np.asarray(data)
    except (ValueError, OverflowError):
        raise Rejected(400, f"{name}: 'data' is ragged or holds values of mixed kinds") from None
    if arr.size != declared:
        raise Rejected(400, f"{name}: its shape declares {declared} values but 'data' holds {arr.size}")
    if arr.size == 0:
        return
    kind = arr.dtype.kind
    if datatype in _INT_RANGES:
        lo, hi = _INT_RANGES[datatype]
        if kind not in "iu" or int(arr.min()) < lo or int(arr.max()) > hi:
            raise Rejected(400, f"{name}: 'data' must be integers in {lo}..{hi} for {datatype}")
    elif datatype == "BOOL":
        if kind != "b":
            raise Rejected(400, f"{name}: 'data' must be true/false for BOOL")
    elif datatype in ("FP16", "FP32", "FP64", "BF16"):
        if kind not in "iuf":
            raise Rejected(400, f"{name}: 'data' must be numbers for {datatype}")
    elif datatype == "BYTES":
        if kind not in "US":
            raise Rejected(400, f"{name}: 'data' must be strings for BYTES")
    else:
        raise Rejected(400, f"{name}: unknown datatype {datatype[:20]!r}")


def check_infer_body(body: bytes, header_length: int | None, limits: GuardLimits) -> None:
    """Raise Rejected unless the KServe v2 infer body is well formed and within the limits."""
    head = body if header_length is None else body[:header_length]
    if header_length is not None and not 0 <= header_length <= len(body):
        raise Rejected(400, f"Inference-Header-Content-Length {header_length} is outside the body "
                            f"({len(body)} bytes)")
    try:
        request = _json_impl.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"the request body is not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise Rejected(400, "the request must be a JSON object with an 'inputs' list")
    for i, inp in enumerate(request["inputs"]):
        if not isinstance(inp, dict):
            raise Rejected(400, f"inputs[{i}] must be an object")
        name = str(inp.get("name", f"inputs[{i}]"))[:40]
        shape = inp.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise Rejected(400, f"{name}: 'shape' must be a list of integers")
        if any(d < 0 for d in shape):
            raise Rejected(400, f"{name}: shape {shape} has a negative dimension")
        declared = 1
        for d in shape:
            declared *= d
        if declared > limits.max_elements:
            raise Rejected(413, f"{name}: shape {shape[:6]} declares {declared} values, more than this server's "
                                f"limit of {limits.max_elements}")
        if "data" in inp:
            _check_data(name, str(inp.get("datatype", ""))[:20], inp["data"], declared)
        elif header_length is None:
            raise Rejected(400, f"{name}: no 'data' and no binary tensor data")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # an answer is two writes (headers, body): with Nagle on, the body waited for the client's
    # delayed ACK, +40 ms on every request (measured: 72 ms through the guard, 27 ms over gRPC)
    disable_nagle_algorithm = True
    server: "GuardServer"

    def log_message(self, *args) -> None:  # the supervisor logs what matters; no per-request lines
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for k, v in (headers or {"Content-Type": "application/json"}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client hung up: only its own connection is lost
            self.close_connection = True

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            raise Rejected(411, "send the request with a Content-Length (chunked bodies are not accepted)")
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command == "POST":
                raise Rejected(411, "a POST needs a Content-Length")
            return b""
        try:
            n = int(length)
        except ValueError:
            raise Rejected(400, f"Content-Length {length[:20]!r} is not a number") from None
        limit = self.server.limits.max_body_bytes if self.command == "POST" else MAX_HEADER_BYTES
        if n < 0 or n > limit:
            self._unread = max(0, n)
            raise Rejected(413, f"the request body is {n} bytes, more than this server's limit of {limit}")
        body = self.rfile.read(n)
        if len(body) != n:
            raise Rejected(400, "the request body ended early")
        return body

    def _drain(self, max_bytes: int = 1 << 28, seconds: float = 5.0) -> None:
        """After refusing an oversized body, read (and drop) what the client is still sending, a
        bounded amount for a bounded time, so it can read the refusal instead of meeting a reset."""
        left = min(getattr(self, "_unread", 0), max_bytes)
        if not left:
            return
        try:
            self.connection.settimeout(seconds)
            while left > 0:
                chunk = self.rfile.read1(min(left, 1 << 20)) if hasattr(self.rfile, "read1") else self.rfile.read(
                    min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _handle(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
            if path == "/v2/edgefill/status":
                self._send(200, json.dumps(state.snapshot()).encode())
                return
            if path.startswith("/v2/repository"):
                raise Rejected(403, "model repository control is not available through edgefill serve")
            is_infer = path.endswith("/infer")
            if is_infer:
                state.count("requests")
                hl = self.headers.get("Inference-Header-Content-Length")
                try:
                    header_length = None if hl is None else int(hl)
                except ValueError:
                    raise Rejected(400, f"Inference-Header-Content-Length {hl[:20]!r} is not a number") from None
                check_infer_body(body, header_length, self.server.limits)
        except Rejected as r:
            state.count("rejected")
            self.close_connection = True  # the rest of a refused body may still be on the wire
            self._error(r.status, r.message)
            self._drain()
            return
        is_ready = path == "/v2/health/ready" or path.endswith("/ready")
        if not state.serving and is_ready:  # (an infer request learns it from admit, under the lock)
            state.count("unavailable")
            self._error(503, state.reason)
            return
        if not is_infer:
            self._forward(body, False)
            return
        limit = self.server.limits.max_inflight
        refused = state.admit(limit)
        if refused == "unavailable":
            self._error(503, state.reason)
            return
        if refused == "shed":
            self._error(503, f"the server is at its bound of {limit} requests in flight; retry")
            return
        try:
            self._forward(body, True)
        finally:
            state.count("inflight", -1)

    def _forward(self, body: bytes, is_infer: bool) -> None:
        state = self.server.state
        headers = {k: self.headers[k] for k in FORWARD_HEADERS if self.headers.get(k) is not None}
        for attempt in (0, 1):  # a kept-alive upstream connection may have been closed: retry once, fresh
            try:
                conn = self.server.upstream()
                conn.request(self.command, self.path, body=body if body or self.command == "POST" else None,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                out_headers = {k: resp.getheader(k) for k in RETURN_HEADERS if resp.getheader(k) is not None}
                break
            except (OSError, http.client.HTTPException):
                self.server.drop_upstream()
                if attempt == 1:  # (a stop drains admitted requests first: Triton is still up for the retry)
                    state.count("unavailable")
                    self._error(503, state.reason if not state.serving else "the model server did not answer; retry")
                    return
        if is_infer and status >= 500 and b"not healthy" in data:
            # Triton's Python stub died: this request is lost; the supervisor restarts the model
            if state.on_unhealthy is not None:
                state.on_unhealthy("the model's Python stub is not healthy")
            state.count("unavailable")
            self._error(503, "the model's worker died and is being restarted; retry in a few seconds")
            return
        if is_infer and status == 200:
            state.last_success = time.monotonic()  # the supervisor's proof of health (no probe needed)
        self._send(status, data, out_headers)

    do_GET = do_POST = do_HEAD = _handle


class GuardServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on (host, port) forwarding to Triton's HTTP at 127.0.0.1:upstream_port,
    one keep-alive upstream connection per handler thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # listen backlog: a burst of clients must queue, not be reset (default 5)

    def __init__(self, host: str, port: int, upstream_port: int, limits: GuardLimits, state: GuardState):
        super().__init__((host, port), _Handler)
        self.upstream_port, self.limits, self.state = upstream_port, limits, state
        self._local = threading.local()

    def upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=3600)
            self._local.conn = conn
        return conn

    def drop_upstream(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def serve_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="edgefill-guard",
                             daemon=True)
        t.start()
        return t
