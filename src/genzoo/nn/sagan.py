"""Spectral normalisation (Miyato et al. 2018) and the self-attention block (Zhang et al. 2019,
"Self-Attention GANs"): two of the SAGAN / BigGAN toolkit's parts, usable by any GAN.

Spectral normalisation divides a layer's weight by its largest singular value,
W_SN = W / sigma(W), so that the layer is 1-Lipschitz and a network of such layers (with
1-Lipschitz activations) is too: the discriminator cannot sharpen without bound. sigma(W) is
estimated by power iteration, one step per training forward pass, carrying u and v from step to
step (the weight moves little between steps, so one step keeps the estimate sharp):
v <- W^T u / |W^T u|, u <- W v / |W v|, sigma = u^T W v. The gradient flows through sigma.

Self-attention lets a convolutional feature map look at all of itself at once, so that distant
parts of an image (two eyes, the legs of an animal) can agree. With 1x1 convolutions
f(x), g(x) (C/8 channels) and h(x): beta_ji = softmax_i(f(x_i)^T g(x_j)), o_j = sum_i beta_ji
h(x_i), and y = x + gamma o with gamma learned from 0 (the block starts as the identity).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize


class SpectralNorm(nn.Module):
    """A parametrization W -> W / sigma(W), with the power iteration's vectors u, v as buffers
    (saved in checkpoints, so a resumed run continues the very same estimate).

    ``dim`` is the weight's output axis (1 for a transposed convolution, whose weight is
    (in, out, k, k)); the weight is read as a matrix (out, everything else)."""

    def __init__(self, weight: Tensor, dim: int = 0, iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        self.dim, self.iterations, self.eps = dim, iterations, eps
        rows, cols = self.matrix(weight).shape
        g = torch.Generator().manual_seed(rows * 7919 + cols)
        self.register_buffer("u", F.normalize(torch.randn(rows, generator=g), dim=0, eps=eps))
        self.register_buffer("v", F.normalize(torch.randn(cols, generator=g), dim=0, eps=eps))
        with torch.no_grad():       # a sharp estimate from the start
            self.power_iteration(self.matrix(weight.float()), 15)

    def matrix(self, W: Tensor) -> Tensor:
        return W.movedim(self.dim, 0).flatten(1)

    @torch.no_grad()
    def power_iteration(self, W: Tensor, steps: int) -> None:
        for _ in range(steps):
            self.v.copy_(F.normalize(W.t() @ self.u, dim=0, eps=self.eps))
            self.u.copy_(F.normalize(W @ self.v, dim=0, eps=self.eps))

    @torch.compiler.disable     # in-place updates of u, v between uses: kept out of graphs
    def forward(self, weight: Tensor) -> Tensor:
        with torch.autocast(weight.device.type, enabled=False):    # sigma in float32
            W = self.matrix(weight.float())
            if self.training:
                self.power_iteration(W, self.iterations)
            u, v = self.u.clone(), self.v.clone()      # the graph keeps these, not the buffers
            sigma = u @ (W @ v)
        return weight / sigma.clamp_min(self.eps).to(weight.dtype)


def spectral_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Put spectral normalisation on ``module.weight`` (in place); returns the module."""
    dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    parametrize.register_parametrization(module, name, SpectralNorm(getattr(module, name), dim))
    return module


def apply_spectral_norm(network: nn.Module, embeddings: bool = False) -> nn.Module:
    """Spectral normalisation on every convolution and linear map of ``network`` (SAGAN: all
    of them, in both G and D), and on its embeddings too if asked (the class embedding of a
    projection discriminator); norms are left alone."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear) + ((nn.Embedding,) if embeddings else ())
    for m in list(network.modules()):
        if isinstance(m, kinds) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m)
    return network


def largest_singular_value(W: Tensor, dim: int = 0) -> float:
    """sigma(W) of a weight read as a matrix (out, everything else), computed exactly."""
    return float(torch.linalg.matrix_norm(W.detach().float().movedim(dim, 0).flatten(1), ord=2))


class SelfAttention2d(nn.Module):
    """x (N, C, H, W) -> x + gamma * attention(x), the SAGAN block."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        d = max(1, channels // reduction)
        self.f = nn.Conv2d(channels, d, 1, bias=False)          # f(x_i): where one looks
        self.g = nn.Conv2d(channels, d, 1, bias=False)          # g(x_j): who looks
        self.h = nn.Conv2d(channels, channels, 1, bias=False)   # h(x_i): what is seen
        self.gamma = nn.Parameter(torch.zeros(()))
        self.keep_weights = False                 # set True to keep the last attention map
        self.weights: Tensor | None = None        # beta, (N, HW, HW) when kept

    def forward(self, x: Tensor) -> Tensor:
        f, g, h = (m(x).flatten(2) for m in (self.f, self.g, self.h))   # (N, c, HW)
        # beta[n, j, i]: how much position j attends to position i. Written out (not SDPA)
        # so that a gradient penalty can differentiate through it twice.
        beta = torch.softmax(g.transpose(1, 2) @ f, dim=-1)
        if self.keep_weights:
            self.weights = beta.detach()
        o = (h @ beta.transpose(1, 2)).view_as(x)
        return x + self.gamma.to(o.dtype) * o
