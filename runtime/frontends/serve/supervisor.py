"""`edgefill serve`'s supervisor: tritonserver behind the guard, watched and restarted.

    ServingStack(repository, host, http_port, grpc_port, metrics_port, limits, ...)
        .start()   tritonserver on a private loopback HTTP port (gRPC and metrics on the public
                   ones), the guard (guard.py) on the public HTTP port, and a watch thread
        .stop()    the guard refuses new work and waits for the HTTP requests it admitted, then
                   Triton drains what is left (SIGTERM, exit_timeout), then everything is reaped:
                   no process, shm or temp folder left

What the watch thread does, every `probe_every` seconds:
  - tritonserver exited (killed, crashed, out of memory) -> restart it;
  - the guard saw Triton answer "Stub process ... is not healthy" (the Python backend's stub was
    killed: Triton 2.51 never restarts it and keeps /v2/health/ready at 200) -> restart;
  - nothing has succeeded for `probe_every` seconds -> a real tiny inference (an 8x8 image, one
    step) proves health; a stub error or no connection -> restart. Under load the real requests
    are the proof and no probe is sent; a probe that times out or meets a full queue proves
    nothing either way and is not acted on.
A restart marks the guard not-serving (ready and infer answer 503 with the reason), stops the old
server at once (its requests are lost anyway), starts a fresh one on the same ports, waits for it
to be ready, and logs one line with how long it took. More than `max_restarts` within a minute
is a crash loop: the stack gives up with one error line.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Callable

from ...errors import EdgefillError
from .guard import GuardLimits, GuardServer, GuardState
from .launcher import TritonServer

PROBE = json.dumps({"inputs": [
    {"name": "IMAGE", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [128] * 192},
    {"name": "MASK_KIND", "shape": [1, 1], "datatype": "BYTES", "data": ["center"]},
    {"name": "STEPS", "shape": [1, 1], "datatype": "INT32", "data": [1]}]}).encode()


class CrashLoop(EdgefillError):
    """More restarts within a minute than the supervisor allows."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServingStack:
    """tritonserver + guard + watch thread (module docstring). log: called with one line per
    event (start, restart, stop); events: (time, kind, seconds) of every restart, for reports."""

    def __init__(self, repository: str | Path, host: str = "127.0.0.1", http_port: int = 8000,
                 grpc_port: int = 8001, metrics_port: int = 8002, limits: GuardLimits | None = None,
                 exit_timeout: int = 30, probe_every: float = 1.0, probe_timeout: float = 10.0,
                 max_restarts: int = 5, log_file: str | None = None, log: Callable[[str], None] = lambda _: None):
        self.host, self.http_port = host, http_port
        self.limits = limits or GuardLimits.for_pixels(4096 * 4096)
        self.probe_every, self.probe_timeout, self.max_restarts = probe_every, probe_timeout, max_restarts
        self.log = log
        self.triton = TritonServer(repository, host="127.0.0.1", http_port=free_port(), grpc_port=grpc_port,
                                   metrics_port=metrics_port, exit_timeout=exit_timeout, log_file=log_file,
                                   public_host=host)
        self.state = GuardState(on_unhealthy=self._unhealthy)
        self.guard: GuardServer | None = None
        self.events: list[tuple[float, str, float]] = []
        self.failure: str | None = None
        self._restart = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lifecycle = threading.Lock()  # a restart and a stop never overlap
        self._watch: threading.Thread | None = None
        self._recent: deque[float] = deque()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.http_port}"

    @property
    def internal_url(self) -> str:
        return self.triton.url

    def start(self, timeout: float = 120.0) -> "ServingStack":
        for port in (self.triton.grpc_port, self.triton.metrics_port):  # Triton's ports: one clear line, early
            try:
                with socket.socket() as s:
                    s.bind((self.host, port))
            except OSError as exc:
                raise EdgefillError(f"cannot listen on {self.host}:{port}: {exc.strerror or exc}") from None
        try:
            self.guard = GuardServer(self.host, self.http_port, self.triton.http_port, self.limits, self.state)
        except OSError as exc:
            raise EdgefillError(f"cannot listen on {self.host}:{self.http_port}: {exc.strerror or exc}") from None
        self.log(f"starting tritonserver on {self.triton.repository}")
        self.guard.serve_in_thread()
        try:
            self.triton.start(timeout)
        except BaseException:
            self._close_guard()
            raise
        self.state.serving, self.state.reason = True, ""
        self._watch = threading.Thread(target=self._watch_loop, name="edgefill-supervisor", daemon=True)
        self._watch.start()
        return self

    def _unhealthy(self, why: str) -> None:
        self._restart.set()  # the watch thread restarts (and logs) at its next tick

    def _probe(self) -> bool | None:
        """True: a real inference succeeded; False: the server cannot serve; None: no verdict."""
        req = urllib.request.Request(f"{self.internal_url}/v2/models/edgefill/infer", data=PROBE,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.probe_timeout) as r:
                return r.status == 200
        except urllib.error.HTTPError as e:
            body = e.read()
            if b"not healthy" in body or e.code == 500:
                return False
            return None  # 503 (queue full) or 4xx: the server is alive and answering
        except (TimeoutError, socket.timeout):
            return None
        except (urllib.error.URLError, OSError):
            return False

    def _watch_loop(self) -> None:
        try:
            self._watch_until_stopping()
        finally:
            # a tritonserver this thread started dies with it (launcher: PR_SET_PDEATHSIG), so the
            # thread lives until stop() has drained and reaped the server
            self._stopped.wait()

    def _watch_until_stopping(self) -> None:
        while not self._stopping.wait(self.probe_every):
            proc = self.triton.process
            why = None
            if proc is None or proc.poll() is not None:
                why = f"tritonserver exited (code {None if proc is None else proc.returncode})"
            elif self._restart.is_set():
                why = "the model's Python stub is not healthy"
            elif time.monotonic() - self.state.last_success < self.probe_every:
                continue  # a real request succeeded within the last tick: the proof, no probe
            elif self._probe() is False and not self._stopping.is_set():
                why = "the model's Python stub is not healthy" if self._restart.is_set() else "a probe inference failed"
            if why is None or self._stopping.is_set():
                continue
            try:
                with self._lifecycle:
                    if self._stopping.is_set():
                        return
                    self._do_restart(why)
            except CrashLoop as exc:
                self.failure = str(exc)
                self.state.stop_serving("the model server could not be restarted")
                self.log(f"supervisor: giving up: {exc}")
                return
            except EdgefillError as exc:  # this start failed (killed while starting...): the next tick retries
                self.log(f"supervisor: restart failed, retrying: {exc}")

    def _do_restart(self, why: str) -> None:
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        if len(self._recent) >= self.max_restarts:
            raise CrashLoop(f"{len(self._recent)} restarts within a minute, the last because {why}")
        self._recent.append(now)
        t0 = time.perf_counter()
        self.state.stop_serving("the model server is restarting; retry in a few seconds")
        self.log(f"supervisor: {why}; restarting tritonserver")
        self.triton.stop(drain=False)  # the old server's requests are lost anyway: do not wait for them
        self.triton.start()
        self._restart.clear()
        seconds = time.perf_counter() - t0
        with self.state.lock:
            self.state.restarts += 1
        self.state.serving, self.state.reason = True, ""
        self.events.append((time.time(), why, seconds))
        self.log(f"supervisor: serving again after {seconds:.1f} s (restart {self.state.restarts})")

    def stop(self) -> int | None:
        """Drain and stop everything; returns tritonserver's exit code.

        The guard is the front door, so it drains first: new requests get 503 at once, and the
        HTTP requests it already admitted are answered by a Triton that is still up (at most
        exit_timeout s). Only then does Triton get SIGTERM, which drains what is left (gRPC
        clients talk to it directly) for up to exit_timeout s more. Sending SIGTERM first would
        lose an admitted request still on its way through Triton's HTTP front to the queue."""
        self._stopping.set()
        with self._lifecycle:
            self.state.stop_serving("the server is stopping")
            if self.triton.process is not None and not self.state.wait_idle(self.triton.exit_timeout):
                self.log(f"supervisor: requests still in flight after {self.triton.exit_timeout} s; stopping tritonserver")
            code = self.triton.stop()
        self._stopped.set()
        if self._watch is not None:
            self._watch.join()
        self._close_guard()
        return code

    def _close_guard(self) -> None:
        if self.guard is not None:
            self.guard.shutdown()
            self.guard.server_close()
            self.guard = None

    def __enter__(self) -> "ServingStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
