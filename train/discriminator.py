"""The LSGAN critic: 4 strided 4x4 convs and a linear layer to one raw score (no sigmoid)."""
from __future__ import annotations

import torch
from torch import nn

from .config import DiscriminatorConfig
from .layers import dcgan_init

LEAK = 0.2


class Discriminator(nn.Module):
    """image (N,3,64,64) float32 in [-1,1], RGB -> raw score (N,1) float32.

    convs[0] has a bias and no BN; convs[1..3] have no bias and a BatchNorm2d each (norms[0..2]);
    LeakyReLU(0.2) after each; `head` is Linear(4*4*8d -> 1).
    """

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        chans = [3, d, 2 * d, 4 * d, 8 * d]
        # (N,3,64,64) -> (N,d,32,32) -> (N,2d,16,16) -> (N,4d,8,8) -> (N,8d,4,4)
        self.convs = nn.ModuleList(
            [nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1, bias=(i == 0)) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(chans[i + 1]) for i in range(1, 4)])
        self.act = nn.LeakyReLU(LEAK, inplace=False)
        self.head = nn.Linear(4 * 4 * 8 * d, 1)  # (N, 8192 at d=64) -> (N,1)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.convs[0](x))
        for conv, norm in zip(self.convs[1:], self.norms):
            h = self.act(norm(conv(h)))
        return self.head(h.flatten(1))
