"""The refiner R: cleans the blended search output inside the hole.

Input x: float32 (N,C,64,64), RGB in [-1,1] first; C = 4 when the config's mask_channel is set,
the fourth channel being the hole mask (1 = hole, 0 = known); C = 7 with telea_channels too,
channels 4-6 OpenCV Telea's fill of the hole (runtime.imaging.images.refiner_input builds them
all, for training and the runtime alike). Output: RGB (N,3,64,64) in [-1,1]. The product
keeps only the hole of it: M*y + (1-M)*R(x).

arch "autoencoder" (the report's): 4 strided 4x4 convs with BN + LeakyReLU(0.2), 64 -> 4, a
4*4*8r code (8192 at r=64), 4 transposed convs back, tanh. Everything must pass the 4x4 code,
which is why its fills are blurry.

arch "unet": the same strided path down to 4x4 (r-2r-4r-8r channels), a 3x3 conv at 4x4, then
transposed convs back up, each concatenated with the encoder features of its scale (skips), and
at 64x64 with the input itself; a 3x3 conv gives a correction d, and the output is
clamp(x_rgb + d, -1, 1): R starts near the identity on the blended image, and the skips carry
the known pixels' colours and edges right up to the hole border. cfg.blocks residual blocks
(ResBlock) follow the 4x4 conv and each transposed conv up to 32x32: depth where the hole is
drawn, about 19M MACs a block per scale at r=32.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from edgefill.runtime.errors import EdgefillError

from .config import RefinerConfig
from .layers import dcgan_init


def _down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    """(N,cin,H,W) -> (N,cout,H/2,W/2): 4x4 stride-2 conv, BN, LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    """(N,cin,H,W) -> (N,cout,2H,2W): 4x4 stride-2 transposed conv, BN, ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class ResBlock(nn.Module):
    """(N,c,H,W) -> (N,c,H,W): x + BN(conv3x3(ReLU(BN(conv3x3(x))))). zero_last() sets the last
    BN's scale to zero, making the block the identity until training moves it."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def zero_last(self) -> None:
        nn.init.zeros_(self.body[4].weight)
        nn.init.zeros_(self.body[4].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _blocks(c: int, n: int) -> nn.Sequential:
    """n ResBlocks of c channels (an empty Sequential, no weights, for n = 0)."""
    return nn.Sequential(*[ResBlock(c) for _ in range(n)])


class Refiner(nn.Module):
    """The report's autoencoder: x (N,C,64,64) -> RGB (N,3,64,64) in [-1,1] (tanh); module docstring."""

    def __init__(self, cfg: RefinerConfig):
        super().__init__()
        self.cfg = cfg
        r = cfg.width
        enc = [cfg.in_channels, r, 2 * r, 4 * r, 8 * r]
        layers: list[nn.Module] = []
        for i in range(4):  # (N,C,64,64) -> (N,r,32,32) -> (N,2r,16,16) -> (N,4r,8,8) -> (N,8r,4,4)
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


class UNetRefiner(nn.Module):
    """The refiner that keeps the known pixels' detail: x (N,C,64,64) -> RGB (N,3,64,64) in
    [-1,1] = clamp(x[:, :3] + d); module docstring. About 2.2M parameters (116 MMACs) at r=32."""

    def __init__(self, cfg: RefinerConfig):
        super().__init__()
        self.cfg = cfg
        r, c = cfg.width, cfg.in_channels
        self.d1 = _down(c, r, norm=False)      # (N,C,64,64)  -> (N,r,32,32)
        self.d2 = _down(r, 2 * r)              # -> (N,2r,16,16)
        self.d3 = _down(2 * r, 4 * r)          # -> (N,4r,8,8)
        self.d4 = _down(4 * r, 8 * r)          # -> (N,8r,4,4)
        self.mid = nn.Sequential(nn.Conv2d(8 * r, 8 * r, 3, 1, 1, bias=False), nn.BatchNorm2d(8 * r), nn.ReLU())
        self.u4 = _up(8 * r, 4 * r)            # (N,8r,4,4) -> (N,4r,8,8), + d3 -> 8r
        self.u3 = _up(8 * r, 2 * r)            # -> (N,2r,16,16), + d2 -> 4r
        self.u2 = _up(4 * r, r)                # -> (N,r,32,32), + d1 -> 2r
        self.u1 = _up(2 * r, r)                # -> (N,r,64,64), + x -> r + C
        self.out = nn.Conv2d(r + c, 3, 3, 1, 1)
        n = cfg.blocks                         # residual blocks at 4x4, 8x8, 16x16, 32x32
        self.b4, self.b8, self.b16, self.b32 = _blocks(8 * r, n), _blocks(4 * r, n), _blocks(2 * r, n), _blocks(r, n)
        dcgan_init(self)
        nn.init.zeros_(self.out.weight)        # start as the identity on the blended image
        nn.init.zeros_(self.out.bias)
        for m in self.modules():               # and every residual block as the identity
            if isinstance(m, ResBlock):
                m.zero_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.d1(x)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        h = self.b4(self.mid(self.d4(e3)))
        h = self.b8(self.u4(h))
        h = self.b16(self.u3(torch.cat([h, e3], 1)))
        h = self.b32(self.u2(torch.cat([h, e2], 1)))
        h = self.u1(torch.cat([h, e1], 1))
        d = self.out(torch.cat([h, x], 1))
        return torch.clamp(x[:, :3] + d, -1.0, 1.0)


def build_refiner(cfg: RefinerConfig) -> nn.Module:
    """The refiner module for a config (its arch)."""
    return UNetRefiner(cfg) if cfg.arch == "unet" else Refiner(cfg)


def grows_into(found: RefinerConfig, wanted: RefinerConfig) -> bool:
    """True when `wanted` is the refiner `found` with input channels appended (the Telea channels
    added to one that saw the blended image and the mask) and/or more residual blocks, so
    grow_state can start it from found's weights."""
    grown = replace(found, telea_channels=wanted.telea_channels, blocks=wanted.blocks) == wanted
    return grown and (wanted.in_channels > found.in_channels or wanted.blocks > found.blocks) \
        and wanted.in_channels >= found.in_channels and wanted.blocks >= found.blocks


def grow_state(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A refiner's weights `state` fitted to `target`'s shapes (another refiner's state_dict)
    where the only changes are more input channels appended at the end of a conv's inputs (dim
    1: the first conv's and the U-Net's output conv's, which both read the input image x last)
    and more residual blocks. The old weights fill the leading slice and the new channels'
    weights are zero; new blocks keep `target`'s values (identity blocks: ResBlock.zero_last). So
    the grown refiner computes exactly what the old one did until training moves them."""
    out = {}
    for key, new in target.items():
        if key not in state and _is_block_weight(key):
            out[key] = new
            continue
        if key not in state:
            raise EdgefillError(f"refiner weight {key} is missing from the start's weights")
        old = state[key]
        if old.shape == new.shape:
            out[key] = old
        elif old.ndim == new.ndim > 1 and old.shape[0] == new.shape[0] and old.shape[2:] == new.shape[2:] \
                and old.shape[1] < new.shape[1]:
            grown = torch.zeros(new.shape, dtype=old.dtype)
            grown[:, :old.shape[1]] = old
            out[key] = grown
        else:
            raise EdgefillError(f"refiner weight {key}: {tuple(old.shape)} cannot grow to {tuple(new.shape)}")
    return out


def _is_block_weight(key: str) -> bool:
    """A residual block's parameter or BN buffer (UNetRefiner.b4/b8/b16/b32)."""
    return key.split(".")[0] in ("b4", "b8", "b16", "b32")
