"""`edgefill serve`: run a real tritonserver on a model repository, on this machine.

The binary: the one inside the `serve` extra (nvidia-pytriton ships tritonserver with the Python
backend and one backend stub per Python version), else a `tritonserver` on PATH (then with its
own backends). The bundled one needs, and gets here:
  - a backends folder holding python/ (libtriton_python.so, triton_python_backend_utils.py) and
    the stub built for THIS Python version, assembled as links in a private temp folder;
  - LD_LIBRARY_PATH starting with this interpreter's LIBDIR (a pyenv-built Python otherwise loads
    the system libpython against its own stdlib and the stub dies) and nvidia_pytriton.libs;
  - this interpreter's bin folder first on PATH, and its site-packages (with the .pth files that
    editable installs rely on) on PYTHONPATH through a sitecustomize, so model.py imports edgefill.
Lifecycle: TritonServer starts the process in its own process group, waits for
/v2/health/ready, and stop() sends SIGTERM, which makes Triton refuse new requests and finish the
ones in flight (up to exit_timeout seconds; ServingStack drains its guard before this), then reaps
it (SIGKILL to the group only after that),
removes the Python backend's shared-memory regions it left in /dev/shm (those its own processes
mapped: another server's on the same machine are never touched), and deletes the temp folder. Nothing outlives stop(): no process, no shared memory, no folder.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ...errors import EdgefillError

SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region"
PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Binary:
    """path: the tritonserver executable; backends: a folder to assemble (bundled) or None (the
    binary's own); stub: the Python backend stub for this interpreter (bundled) or None; libs:
    extra library folders."""

    path: Path
    stub: Path | None = None
    python_backend: Path | None = None
    libs: tuple[Path, ...] = ()


def find_binary() -> Binary:
    """The `serve` extra's tritonserver, else one on PATH; one clear error when there is none."""
    spec = importlib.util.find_spec("pytriton")
    if spec is not None and spec.submodule_search_locations:
        root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
        exe = root / "bin" / "tritonserver"
        if exe.is_file():
            stub = root / "python_backend_stubs" / PY_VERSION / "triton_python_backend_stub"
            if not stub.is_file():
                raise EdgefillError(f"the bundled tritonserver has no Python backend stub for Python {PY_VERSION}")
            libs = root.parent.parent / "nvidia_pytriton.libs"
            return Binary(exe, stub, root / "backends" / "python", (libs,) if libs.is_dir() else ())
    exe = shutil.which("tritonserver")
    if exe:
        return Binary(Path(exe))
    raise EdgefillError("no tritonserver found: install the serve extra (pip install 'edgefill[serve]', which "
                        "brings nvidia-pytriton's tritonserver) or put tritonserver on PATH")


def _assemble_backends(binary: Binary, tmp: Path) -> Path | None:
    if binary.stub is None:
        return None
    python = tmp / "backends" / "python"
    python.mkdir(parents=True)
    for item in binary.python_backend.iterdir():
        if item.is_file():
            (python / item.name).symlink_to(item)
    (python / "triton_python_backend_stub").symlink_to(binary.stub)
    return tmp / "backends"


def _environment(binary: Binary, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ld = [p for p in (libdir, *map(str, binary.libs), env.get("LD_LIBRARY_PATH", "")) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(ld)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # the stub's interpreter gets this interpreter's site-packages as site dirs (so .pth files of
    # editable installs work) through a sitecustomize in a private folder on PYTHONPATH
    boot = tmp / "pyboot"
    boot.mkdir()
    dirs = [d for d in (*site.getsitepackages(), site.getusersitepackages()) if d and os.path.isdir(d)]
    (boot / "sitecustomize.py").write_text(
        "import site\n" + "".join(f"site.addsitedir({d!r})\n" for d in dirs))
    env["PYTHONPATH"] = os.pathsep.join([str(boot), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _session_shm(sid: int) -> set[str]:
    """The Python backend's shared-memory regions that the processes of session `sid` (one
    tritonserver and its stubs) have mapped: theirs alone, never another server's on this machine."""
    names: set[str] = set()
    marker = f"{SHM_DIR}/{SHM_PREFIX}"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[3]) != sid:
                    continue
            with open(f"/proc/{entry}/maps") as f:
                for line in f:
                    if marker in line:
                        names.add(line.rsplit("/", 1)[1].split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return names


class TritonServer:
    """One tritonserver process on `repository` (module docstring). Use as a context manager, or
    start() / stop(). Ports: 0 picks none; host: the bind address of HTTP and gRPC."""

    def __init__(self, repository: str | os.PathLike, host: str = "127.0.0.1", http_port: int = 8000,
                 grpc_port: int = 8001, metrics_port: int = 8002, exit_timeout: int = 30, log_verbose: int = 0,
                 log_file: str | os.PathLike | None = None, public_host: str | None = None):
        self.repository = Path(repository).resolve()
        self.host, self.http_port, self.grpc_port, self.metrics_port = host, http_port, grpc_port, metrics_port
        self.public_host = host if public_host is None else public_host  # gRPC and metrics bind here
        self.exit_timeout = exit_timeout
        self.log_verbose = log_verbose
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self._tmp: Path | None = None
        self._shm_owned: set[str] = set()
        self._log = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.http_port}"

    def command(self, binary: Binary, backends: Path | None) -> list[str]:
        cmd = [str(binary.path), "--model-repository", str(self.repository), "--http-address", self.host,
               "--http-port", str(self.http_port), "--grpc-address", self.public_host,
               "--grpc-port", str(self.grpc_port), "--metrics-address", self.public_host,
               "--metrics-port", str(self.metrics_port), "--allow-metrics", "true", "--allow-gpu-metrics", "false",
               "--metrics-config", "summary_latencies=true", "--exit-timeout-secs", str(self.exit_timeout),
               "--strict-readiness", "true", "--log-verbose", str(self.log_verbose)]
        if backends is not None:
            cmd += ["--backend-directory", str(backends)]
        return cmd

    def start(self, timeout: float = 120.0) -> "TritonServer":
        if not (self.repository / "edgefill" / "config.pbtxt").is_file():
            raise EdgefillError(f"{self.repository} is not an edgefill model repository (no edgefill/config.pbtxt)")
        binary = find_binary()
        self._tmp = Path(tempfile.mkdtemp(prefix="edgefill-serve-"))
        try:
            backends = _assemble_backends(binary, self._tmp)
            env = _environment(binary, self._tmp)
            log_path = Path(self.log_file) if self.log_file else self._tmp / "tritonserver.log"
            self._log_path = log_path
            self._log = open(log_path, "ab")
            self.process = subprocess.Popen(self.command(binary, backends), stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                            preexec_fn=_die_with_parent)
            self.wait_ready(timeout)
            self._shm_owned = _session_shm(self.process.pid)  # made while loading the model
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = Path(self._log_path).read_text(errors="replace").strip().splitlines()
        except (OSError, AttributeError):
            return ""
        return " | ".join(ln.strip() for ln in text[-lines:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EdgefillError(f"tritonserver exited during start (code {self.process.returncode}): "
                                    f"{_first_error(self.log_tail(20))}")
            if self.ready():
                return
            time.sleep(0.2)
        raise EdgefillError(f"tritonserver was not ready after {timeout:.0f} s: {_first_error(self.log_tail(20))}")

    def stop(self, drain: bool = True) -> int | None:
        """SIGTERM, drain (Triton finishes requests in flight), reap, clean up. Returns the exit code.
        drain=False: SIGKILL at once (a restart after a failure: its requests are lost anyway)."""
        code = None
        p = self.process
        if p is not None and p.poll() is None:
            self._shm_owned |= _session_shm(p.pid)
        if p is not None and p.poll() is None and not drain:
            os.killpg(p.pid, signal.SIGKILL)
            code = p.wait()
        elif p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                code = p.wait(timeout=self.exit_timeout + 15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                code = p.wait()
        elif p is not None:
            code = p.returncode
        if p is not None:
            try:  # the Python backend stubs live in the server's process group
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for name in self._shm_owned:  # what Triton could not remove itself (killed): ours only
            try:
                (SHM_DIR / name).unlink()
            except OSError:
                pass
        self._shm_owned = set()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.process = None
        return code

    def __enter__(self) -> "TritonServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (even by
    SIGKILL), so a killed `edgefill serve` or benchmark never leaves tritonserver behind (its
    Python stubs exit with it)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _first_error(log: str) -> str:
    """The most telling part of Triton's log tail for a one-line error."""
    for part in log.split(" | "):
        low = part.lower()
        if "error" in low or "failed" in low or "address already in use" in low:
            return part[-300:]
    return log[-300:] or "no output"
