"""The machine a profile ran on: versions, CPU/GPU, memory and load, recorded beside the numbers."""
from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess

import numpy as np


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_mb() -> dict:
    out: dict = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    try:
        with open("/proc/self/statm") as f:
            out["rss_mb"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    out["total_mb"] = int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return out


def gpu_info() -> list[dict] | None:
    """GPUs as nvidia-smi reports them (name, memory total/used MiB, this process's MiB), or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        apps = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    mine = sum(float(p[1]) for p in (ln.split(",") for ln in apps.stdout.splitlines() if ln.strip())
               if len(p) == 2 and p[0].strip() == str(os.getpid()))
    gpus = []
    for ln in out.stdout.splitlines():
        parts = [p.strip() for p in ln.split(",")]
        if len(parts) == 4:
            gpus.append({"index": int(parts[0]), "name": parts[1], "memory_total_mb": float(parts[2]),
                         "memory_used_mb": float(parts[3]), "this_process_mb": mine})
    return gpus or None


def _version(module: str) -> str | None:
    from importlib import metadata

    for dist in {"onnxruntime": ("onnxruntime-gpu", "onnxruntime"), "cv2": ("opencv-python-headless",
                                                                            "opencv-python")}.get(module, (module,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment(backends: list, load_start=None, load_end=None) -> dict:
    """Versions, CPU/GPU, memory and load, recorded beside the numbers."""
    import cv2
    import onnxruntime as ort

    from ... import __version__
    from ...core.engine import physical_cores

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    env = {
        "edgefill": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "numpy": np.__version__, "onnxruntime": ort.__version__, "onnxruntime_build": _version("onnxruntime"),
        "onnxruntime_available_providers": ort.get_available_providers(), "opencv": cv2.__version__,
        "torch": None,
        "cpu": {"model": _cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
                "physical_cores": physical_cores()},
        "memory": _memory_mb(), "gpu": gpu_info(),
        "backends": [{"name": b.name, "provider": b.provider, "threads": b.threads} for b in backends],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_start": load_start, "loadavg_end": load_end,
    }
    torch_be = next((b for b in backends if b.torch is not None), None)
    if torch_be is not None:
        env["torch"] = torch_be.torch.__version__
    return env
