"""Sinusoidal embeddings of a scalar (a timestep, a noise level, a position).

Vaswani et al. (2017) write a position p as sines and cosines of geometrically spaced
frequencies, [sin(p w_k), cos(p w_k)] with w_k = 1 / max_period^(k / (d/2)); DDPM (Ho et al.
2020) embeds its diffusion timestep the same way, and a small MLP then maps the vector to the
width the network wants. Nearby values get nearby vectors, far ones nearly orthogonal ones.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(p: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """p (N,) float -> (N, dim): [sin(p w_0..w_{d/2-1}), cos(p w_0..w_{d/2-1})]."""
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    half = dim // 2
    k = torch.arange(half, device=p.device, dtype=torch.float32)
    w = torch.exp(-math.log(max_period) * k / half)
    angle = p.float()[:, None] * w[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=1)


def geometric_sinusoidal_embedding(p: torch.Tensor, dim: int, f_min: float = 1.0,
                                   f_max: float = 1000.0) -> torch.Tensor:
    """p (N,) float -> (N, dim): [sin(2 pi f_k p), cos(2 pi f_k p)] with dim/2 frequencies f_k
    spaced geometrically from f_min to f_max, both included: the embedding of a noise variance
    in [0, 1] of the DDIM example in Foster's book (after Beres' Keras tutorial)."""
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    f = torch.exp(torch.linspace(math.log(f_min), math.log(f_max), dim // 2, device=p.device))
    angle = 2 * math.pi * p.float()[:, None] * f[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=1)


class SinusoidalMLP(nn.Module):
    """p (N,) -> (N, out_dim): the sinusoidal vector, then Linear, SiLU, Linear (DDPM)."""

    def __init__(self, dim: int, out_dim: int, scale: float = 1.0):
        super().__init__()
        self.dim, self.scale = dim, scale     # scale: multiplies p first (t in [0,1] -> 0..1000)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(p * self.scale, self.dim))
