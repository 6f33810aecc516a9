"""The latent-search settings: one frozen dataclass, stored in every bundle manifest."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import EdgefillError
from .manifest_settings import ManifestSettings

PRIOR_FORMS = ("lsgan", "log")
BLEND_MODES = ("paste", "poisson")


@dataclass(frozen=True)
class SearchConfig(ManifestSettings):
    """Yeh et al.'s search: minimise L_c(z) + lam * L_p(z) over z in [-1,1]^z_dim with Adam.

    prior: `lsgan` -> (D(G(z)) - 1)^2 (default); `log` -> log(1 - sigmoid(D(G(z)))).
    steps: Adam steps; restarts: random starts per image run as one batch, lowest loss wins.
    patience/min_delta: stop early once the best loss of every image has not improved by
    min_delta (relative) for `patience` steps (0 disables early stopping).
    sample_spread: for K samples per hole (runtime.core.starts.sample_starts), sample k >= 1
    starts at the start's z + sample_spread * N(0, I) (clipped to [-1,1]); 0 = every sample
    starts at the same z (no diversity beyond the random restarts).
    sample_steps: Adam steps of samples k >= 1 (sample 0 is the single output and takes `steps`);
    0 = `steps`. The step count is also each sample's loss evaluation, which orders the samples:
    1 scores each sample's start and keeps it (on 2 CPU cores a row-step is most of a sample's
    cost; docs/samples.md measured what more steps give).
    """

    steps: int = 300
    restarts: int = 4
    lam: float = 0.1
    lr: float = 0.03
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    prior: str = "lsgan"
    blend: str = "paste"
    patience: int = 0
    min_delta: float = 1e-4
    sample_spread: float = 0.5
    sample_steps: int = 0

    def __post_init__(self) -> None:
        if self.prior not in PRIOR_FORMS:
            raise EdgefillError(f"prior must be one of {PRIOR_FORMS}, got {self.prior!r}")
        if self.blend not in BLEND_MODES:
            raise EdgefillError(f"blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if self.steps < 1 or self.restarts < 1:
            raise EdgefillError("steps and restarts must be at least 1")
        if not (self.lr > 0 and self.lam >= 0 and self.eps > 0):
            raise EdgefillError("lr and eps must be positive and lam non-negative")
        if not self.sample_spread >= 0:
            raise EdgefillError("sample_spread must be non-negative")
        if self.sample_steps < 0:
            raise EdgefillError("sample_steps must be non-negative (0: the same as steps)")

    @property
    def steps_of_samples(self) -> int:
        """The Adam steps of samples k >= 1: sample_steps, or steps when that is 0."""
        return self.sample_steps or self.steps

    def steps_for(self, samples: int) -> int:
        """Search steps a call for `samples` fills per hole reports to its progress bar: `steps`
        for one, plus steps_of_samples for the second batch when K > 1 (Pipeline.run_samples)."""
        return self.steps + (self.steps_of_samples if samples > 1 else 0)

