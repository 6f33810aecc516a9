"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The critic only ever sees augmented images, real and fake alike: the same policy is applied to
the whole (real + fake) batch that goes through D, with independent random parameters per
image, in the D step and in the G step. Every operation is differentiable in the image, so G
learns through it. Training only: nothing of it exists at export (G is untouched, and the
exported critic scores plain images).

Policy: a comma-separated subset of
- `color`: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel mean),
  contrast (x U(0.5, 1.5) around the image mean), as in the paper's code, on images in [-1, 1];
- `translation`: shift by up to 1/8 of the size (8 px at 64) in x and y, zero fill;
- `cutout`: zero one square of half the size at a random place (it may cross the border).

The random numbers come from an explicit torch.Generator (checkpointed by the training loop),
so a resumed run augments exactly as an uninterrupted one.
"""
from __future__ import annotations

import torch

from edgefill.runtime.errors import EdgefillError

OPS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in OPS]
    if bad:
        raise EdgefillError(f"unknown DiffAugment op(s) {', '.join(bad)}; use a comma-separated subset of "
                            f"{', '.join(OPS)} (or an empty policy)")
    return ops


def _rand(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=gen).to(device)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + (_rand(n, gen, x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(n, gen, x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(n, gen, x.device) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), generator=gen).to(x.device)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=gen).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    # output (y, x) reads padded input (y + ty + 1, x + tx + 1); index 0 and h+1 are the zero border
    yy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    xx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    b = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, yy, xx].permute(0, 3, 1, 2)  # (n,h,w,c) gathered -> (n,c,h,w)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen).to(x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen).to(x.device)
    gy = torch.arange(h, device=x.device)[None, :, None]
    gx = torch.arange(w, device=x.device)[None, None, :]
    ry, rx = gy - oy + ch // 2, gx - ox + cw // 2  # (n,h,1), (n,1,w): position inside the square
    inside = (ry >= 0) & (ry < ch) & (rx >= 0) & (rx < cw)  # (n,h,w)
    return x * (~inside).to(x.dtype)[:, None]


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """x (N,3,H,W) in [-1,1] -> the same batch, each image augmented by every op of `policy` in
    the paper's order (color, translation, cutout)."""
    for op in OPS:
        if op in policy:
            x = {"color": color, "translation": translation, "cutout": cutout}[op](x, gen)
    return x
