"""What `edgefill profile` measures: the stage names, the statistics and the run settings."""
from __future__ import annotations

from dataclasses import dataclass

from ...core.starts import INITS
from ...errors import EdgefillError

STAGES = ("preprocessing", "start", "h2d", "search_step", "search", "refiner", "blending", "d2h", "total")
EXTRA_STAGES = ("blending_poisson",)
STAT_KEYS = ("count", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
TORCH_NAME = "torch-eager"


@dataclass(frozen=True)
class ProfileConfig:
    """batch_sizes: images per batch; init: where the search starts ("auto": the bundle's encoder
    when it has one, else random, as `edgefill inpaint` does; "random"; "encoder"); steps: Adam
    steps per search (None: the bundle's default for that start, so the profile times what the
    product runs; else >= 2, so that a step other than the first is timed); restarts: starts per
    image (None: the bundle's default; search rows = batch x restarts);
    iterations: timed pipeline runs per (backend, batch size) after `warmup` untimed ones;
    providers: None = every provider that loads; threads: intra-op threads (None = physical cores);
    samples: K > 1 also times the whole inpaint of one 64x64 problem with K samples per hole
    against K = 1 (run.time_samples)."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    steps: int | None = None
    restarts: int | None = None
    iterations: int = 10
    warmup: int = 2
    providers: tuple[str, ...] | None = None
    compare_torch: bool = False
    threads: int | None = None
    mask: str = "center"
    seed: int = 0
    measure_peak: bool = True
    samples: int = 1
    init: str = "auto"

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise EdgefillError("--batch-sizes: give positive batch sizes, e.g. 1,8,32")
        if self.steps is not None and self.steps < 2:
            raise EdgefillError("--steps must be at least 2 (the first step of a search also binds buffers)")
        if self.init not in INITS:
            raise EdgefillError(f"--init must be one of {', '.join(INITS)}, not {self.init!r}")
        if self.iterations < 1 or self.warmup < 0 or (self.restarts is not None and self.restarts < 1):
            raise EdgefillError("--iterations and --restarts must be >= 1 and --warmup >= 0")
        from ..inpainter import MAX_SAMPLES

        if not 1 <= self.samples <= MAX_SAMPLES:
            raise EdgefillError(f"--samples must be 1..{MAX_SAMPLES}, got {self.samples}")
