"""The search's start network E (DESIGN section 7): a masked face and its mask -> a latent z."""
from __future__ import annotations

import torch
from torch import nn

from .config import EncoderConfig
from .layers import dcgan_init

IN_CHANNELS = 4  # known RGB (0 in the hole) + the known-pixel mask: runtime.core.starts.encoder_input


class Encoder(nn.Module):
    """x (N,4,64,64) float32: channels 0-2 the known pixels in [-1,1] (RGB, 0 in the hole),
    channel 3 the known mask M (1 known, 0 to fill) -> z (N, z_dim) in [-1,1] (tanh).

    4 strided 4x4 convs, 64 -> 32 -> 16 -> 8 -> 4 (BN after all but the first, LeakyReLU 0.2),
    flatten 4*4*8e, linear to z_dim. ~1.1M parameters at e=32, z_dim=100.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        e = cfg.width
        ch = [IN_CHANNELS, e, 2 * e, 4 * e, 8 * e]
        layers: list[nn.Module] = []
        for i in range(4):  # (N,4,64,64) -> (N,e,32,32) -> (N,2e,16,16) -> (N,4e,8,8) -> (N,8e,4,4)
            layers.append(nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(ch[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * 4 * 8 * e, cfg.z_dim)  # (N, 4*4*8e) -> (N, z_dim)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.features(x).flatten(1)))
