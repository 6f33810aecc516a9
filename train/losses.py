"""LSGAN losses (Mao et al. 2017), a=0 (fake), b=c=1 (real)."""
from __future__ import annotations

import torch


def d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2, averaged over the batch."""
    return 0.5 * ((real_score.float() - 1.0) ** 2).mean() + 0.5 * (fake_score.float() ** 2).mean()


def g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """1/2 (D(G(z)) - 1)^2, averaged over the batch."""
    return 0.5 * ((fake_score.float() - 1.0) ** 2).mean()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1,1,size,size)


def ssim_map(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Wang et al.'s SSIM map of images in [-1,1] (B,3,H,W), computed per channel on [0,1] with
    the metric's Gaussian window (11x11, sigma 1.5; runtime.imaging.metrics.ssim), valid region
    -> (B,3,H-size+1,W-size+1). Differentiable; used as a training loss 1 - mean(ssim_map)."""
    import torch.nn.functional as F

    a, b = (a.float() + 1) / 2, (b.float() + 1) / 2
    c = a.shape[1]
    w = _gaussian_window(size, sigma).to(a.device).expand(c, 1, size, size)
    mu_a, mu_b = F.conv2d(a, w, groups=c), F.conv2d(b, w, groups=c)
    saa = F.conv2d(a * a, w, groups=c) - mu_a ** 2
    sbb = F.conv2d(b * b, w, groups=c) - mu_b ** 2
    sab = F.conv2d(a * b, w, groups=c) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))


def hole_error(out: torch.Tensor, truth: torch.Tensor, known: torch.Tensor, kind: str = "mse",
               per_row: bool = False) -> torch.Tensor:
    """Mean squared ("mse") or absolute ("l1") error over the hole's pixels (known == 0) of the
    batch: out, truth (B,3,H,W), known (B,1,H,W) 1 on known pixels. 0 when there is no hole.
    per_row: each image's own mean over its hole, (B,), instead of one mean over the batch's."""
    hole = 1.0 - known
    diff = (out.float() - truth.float()) * hole
    err = diff.abs() if kind == "l1" else diff ** 2
    if per_row:
        return err.sum(dim=(1, 2, 3)) / (3 * hole.sum(dim=(1, 2, 3))).clamp_min(1.0)
    return err.sum() / (3 * hole.sum()).clamp_min(1.0)
