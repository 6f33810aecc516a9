"""The report's refiner: a convolutional autoencoder that cleans blended search outputs."""
from __future__ import annotations

import torch
from torch import nn

from .config import RefinerConfig
from .layers import dcgan_init


class Refiner(nn.Module):
    """image (N,3,64,64) float32 in [-1,1], RGB -> image (N,3,64,64) in [-1,1] (tanh).

    Encoder: 4 strided 4x4 convs with BN + LeakyReLU(0.2): 64 -> 32 -> 16 -> 8 -> 4, giving a
    4*4*8r code (8192 at r=64). Decoder: 4 transposed convs back to 64x64 (BN + ReLU, tanh out).
    """

    def __init__(self, cfg: RefinerConfig):
        super().__init__()
        self.cfg = cfg
        r = cfg.width
        enc = [3, r, 2 * r, 4 * r, 8 * r]
        layers: list[nn.Module] = []
        for i in range(4):  # (N,3,64,64) -> (N,r,32,32) -> (N,2r,16,16) -> (N,4r,8,8) -> (N,8r,4,4)
            layers += [nn.Conv2d(enc[i], enc[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(enc[i + 1]),
                       nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*layers)
        dec = [8 * r, 4 * r, 2 * r, r]
        layers = []
        for i in range(3):  # (N,8r,4,4) -> (N,4r,8,8) -> (N,2r,16,16) -> (N,r,32,32)
            layers += [nn.ConvTranspose2d(dec[i], dec[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(dec[i + 1]),
                       nn.ReLU()]
        layers += [nn.ConvTranspose2d(r, 3, 4, 2, 1), nn.Tanh()]  # (N,r,32,32) -> (N,3,64,64)
        self.decoder = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
