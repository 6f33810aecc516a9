"""Export wrappers: one nn.Module per graph with fixed input/output names (see specs.py).

Each wrapper holds the trained module under its state-dict prefix (`generator`,
`discriminator`, `refiner`), so the exported initializers are named exactly like the
checkpoint's tensors (`generator.convs.0.weight`, ...): that is what lets weights.bin hold
every tensor once and be shared by all graphs.

SearchStep is the latent-search step as an ordinary forward computation: G and D forward
(keeping pre-activations), the per-image loss of runtime.core.torch_search.search_loss, a
HAND-WRITTEN vector-Jacobian product back to z (no autograd in the graph), and the Adam step
of runtime.core.torch_search.adam_step. The backward reuses the forward weights as they are: the
input-gradient of ConvTranspose2d is Conv2d with the same weight, stride and padding, and of
Conv2d is ConvTranspose2d; so the step graph adds no weight tensors of its own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgefill.train.discriminator import LEAK, Discriminator
from edgefill.train.encoder import Encoder
from edgefill.train.generator import Generator

ACT_SLOPE = {"relu": 0.0, "leaky": 0.2}


class GeneratorExport(nn.Module):
    """z (B, z_dim) f32 -> image (B,3,64,64) f32."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


class DiscriminatorExport(nn.Module):
    """image (B,3,64,64) f32 -> score (B,1) f32 (raw)."""

    def __init__(self, discriminator: Discriminator):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.discriminator(image)


class RefinerExport(nn.Module):
    """image (B,C,64,64) f32 (C = 3: blended RGB; 4: + the hole; 7: + Telea's fill) -> refined
    (B,3,64,64) f32. `name` is the model's state-dict prefix ("refiner", or "samples_refiner" for
    the refiner of K samples), so the graph's initializers carry the bundle's tensor names."""

    def __init__(self, refiner: nn.Module, name: str = "refiner"):
        super().__init__()
        self.name = name
        setattr(self, name, refiner)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.name)(image)


class EncoderExport(nn.Module):
    """masked (B,4,64,64) f32 -> z (B, z_dim) f32 in [-1,1]."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, masked: torch.Tensor) -> torch.Tensor:
        return self.encoder(masked)


def _bn(h: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm with the running statistics (training=False whatever the mode)."""
    return F.batch_norm(h, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)


def _bn_scale(norm: nn.BatchNorm2d) -> torch.Tensor:
    """d bn(h) / dh in eval mode: gamma / sqrt(var + eps), shaped (1,C,1,1); computed in-graph
    from the stored BN tensors so the step graph needs no tensors of its own."""
    return (norm.weight / torch.sqrt(norm.running_var + norm.eps)).reshape(1, -1, 1, 1)


def _act(pre: torch.Tensor, slope: float) -> torch.Tensor:
    return F.relu(pre) if slope == 0.0 else F.leaky_relu(pre, slope)


def _act_back(pre: torch.Tensor, grad: torch.Tensor, slope: float) -> torch.Tensor:
    """VJP of ReLU / LeakyReLU at the pre-activation: grad where pre > 0, else slope * grad."""
    return torch.where(pre > 0, grad, grad * slope)


class SearchStep(nn.Module):
    """One Adam step of the latent search (names: runtime.bundle.STEP_INPUTS/STEP_OUTPUTS).

    Inputs (float32; B = images x restarts): z, m, v (B,Z); t (B,) steps taken so far;
    y (B,3,64,64) target in [-1,1]; W (B,1,64,64) importance weights (computed by the runtime);
    scalars lam, lr, beta1, beta2, eps, prior (0.0 = lsgan, 1.0 = log).
    Outputs: z_next, m_next, v_next, t_next; loss (B,) and image (B,3,64,64) at the input z.

    loss = sum |W * (G(z) - y)| + lam * P(s), s = D(G(z)), P = (s-1)^2 (lsgan) or -softplus(s) (log).
    """

    def __init__(self, generator: Generator, discriminator: Discriminator):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.g_slope = ACT_SLOPE[generator.cfg.activation]

    def forward(self, z, m, v, t, y, W, lam, lr, beta1, beta2, eps, prior):
        G, D = self.generator, self.discriminator
        z_dim = G.cfg.z_dim
        # ---- G forward (dropout is the identity in eval), keeping BN outputs (pre-activations)
        h = z.reshape(-1, z_dim, 1, 1)
        g_pre = []
        for conv, norm in zip(G.convs, G.norms):
            pre = _bn(conv(h), norm)  # (B,8w,4,4) (B,4w,8,8) (B,2w,16,16) (B,w,32,32)
            g_pre.append(pre)
            h = _act(pre, self.g_slope)
        x = torch.tanh(G.to_rgb(h))  # (B,3,64,64)
        # ---- D forward
        c0 = D.convs[0](x)  # (B,d,32,32), with bias
        d_pre = [c0]
        h = F.leaky_relu(c0, LEAK)
        for conv, norm in zip(D.convs[1:], D.norms):
            pre = _bn(conv(h), norm)  # (B,2d,16,16) (B,4d,8,8) (B,8d,4,4)
            d_pre.append(pre)
            h = F.leaky_relu(pre, LEAK)
        s = D.head(h.flatten(1)).reshape(-1)  # (B,)
        # ---- per-image loss
        r = W * (x - y)
        contextual = r.abs().sum(dim=(1, 2, 3))
        is_log = prior > 0.5
        prior_loss = torch.where(is_log, -F.softplus(s), (s - 1.0) ** 2)
        loss = contextual + lam * prior_loss  # (B,)
        # ---- hand-written VJP of sum(loss) back to z
        ds = lam * torch.where(is_log, -torch.sigmoid(s), 2.0 * (s - 1.0))  # (B,)
        dh = (ds.unsqueeze(1) @ D.head.weight).reshape_as(h)  # (B,1)@(1,F) -> (B,8d,4,4)
        for i in range(len(D.norms), 0, -1):
            dc = _act_back(d_pre[i], dh, LEAK) * _bn_scale(D.norms[i - 1])
            conv = D.convs[i]
            dh = F.conv_transpose2d(dc, conv.weight, stride=conv.stride, padding=conv.padding)
        dc0 = _act_back(c0, dh, LEAK)
        conv = D.convs[0]
        dx = F.conv_transpose2d(dc0, conv.weight, stride=conv.stride, padding=conv.padding)  # (B,3,64,64)
        dx = dx + torch.sign(r) * W  # d|r|/dr = sign(r) (sign(0) = 0, like torch), dr/dx = W
        da = dx * (1.0 - x * x)  # tanh' = 1 - tanh^2
        conv = G.to_rgb
        dh = F.conv2d(da, conv.weight, stride=conv.stride, padding=conv.padding)  # (B,w,32,32)
        for i in range(len(G.convs) - 1, -1, -1):
            dc = _act_back(g_pre[i], dh, self.g_slope) * _bn_scale(G.norms[i])
            conv = G.convs[i]
            dh = F.conv2d(dc, conv.weight, stride=conv.stride, padding=conv.padding)
        grad = dh.reshape(-1, z_dim)  # (B,Z)
        # ---- Adam, exactly runtime.core.torch_search.adam_step
        t_next = t + 1.0
        m_next = beta1 * m + (1.0 - beta1) * grad
        v_next = beta2 * v + (1.0 - beta2) * grad * grad
        m_hat = m_next / (1.0 - torch.pow(beta1, t_next)).unsqueeze(1)
        v_hat = v_next / (1.0 - torch.pow(beta2, t_next)).unsqueeze(1)
        z_next = torch.clamp(z - lr * m_hat / (torch.sqrt(v_hat) + eps), -1.0, 1.0)
        return z_next, m_next, v_next, t_next, loss, x
