"""Small shared layer helpers and DCGAN initialisation."""
from __future__ import annotations

import torch
from torch import nn


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "leaky":
        return nn.LeakyReLU(0.2, inplace=False)
    raise ValueError(f"unknown activation {name!r}")


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights N(0, 0.02); BN gamma N(1, 0.02), beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def randomise_batchnorm_stats(module: nn.Module, seed: int = 0) -> None:
    """Give BN layers non-trivial running statistics (for export tests on untrained weights)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.weight.copy_(1.0 + torch.randn(m.num_features, generator=g) * 0.1)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.05)
