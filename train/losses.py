"""LSGAN losses (Mao et al. 2017), a=0 (fake), b=c=1 (real)."""
from __future__ import annotations

import torch


def d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2, averaged over the batch."""
    return 0.5 * ((real_score.float() - 1.0) ** 2).mean() + 0.5 * (fake_score.float() ** 2).mean()


def g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """1/2 (D(G(z)) - 1)^2, averaged over the batch."""
    return 0.5 * ((fake_score.float() - 1.0) ** 2).mean()
