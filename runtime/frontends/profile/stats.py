"""Latency samples and their statistics (names after perf_analyzer / trtexec; numpy only)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import EXTRA_STAGES, STAGES, STAT_KEYS


def latency_stats(seconds) -> dict:
    """Per-sample durations in seconds -> {count, mean_ms, std_ms, min_ms, max_ms, p50..p99_ms}."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    if ms.size == 0:
        return {k: (0 if k == "count" else None) for k in STAT_KEYS}
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"count": int(ms.size), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "p50_ms": float(p50), "p90_ms": float(p90),
            "p95_ms": float(p95), "p99_ms": float(p99)}


@dataclass
class Samples:
    """Raw per-sample durations (seconds) of one (backend, batch size)."""

    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in (*STAGES, *EXTRA_STAGES)})

    def add(self, other: "Samples") -> None:
        for k, v in other.stages.items():
            self.stages[k].extend(v)
