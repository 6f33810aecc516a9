"""The DCGAN-shaped LSGAN generator (report Table 2.1; width 128 = `paper`)."""
from __future__ import annotations

import torch
from torch import nn

from .config import GeneratorConfig
from .layers import activation, dcgan_init


class Generator(nn.Module):
    """z (N, z_dim) float32 in [-1,1] -> image (N,3,64,64) float32 in [-1,1], RGB.

    `blocks` is a list of (ConvTranspose2d, BatchNorm2d) pairs followed by the activation;
    `to_rgb` is the last ConvTranspose2d (then tanh). The export's hand-written
    vector-Jacobian product walks exactly this structure.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        chans = [cfg.z_dim, 8 * w, 4 * w, 2 * w, w]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(4):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            # i=0: (N,z,1,1) -> (N,8w,4,4); i=1: -> (N,4w,8,8); i=2: -> (N,2w,16,16); i=3: -> (N,w,32,32)
            self.convs.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, stride, pad, bias=False))
            self.norms.append(nn.BatchNorm2d(chans[i + 1]))
        self.act = activation(cfg.activation)
        self.drop = nn.Dropout2d(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.to_rgb = nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False)  # (N,w,32,32) -> (N,3,64,64)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z.reshape(z.shape[0], self.cfg.z_dim, 1, 1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = self.act(norm(conv(h)))
            if i in (1, 2):
                h = self.drop(h)
        return torch.tanh(self.to_rgb(h))
