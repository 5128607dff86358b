"""Residual convolution blocks (He et al. 2016) in the pre-activation form of the DDPM U-Net.

h = conv(swish(norm(x))); then the conditioning vector (the embedded timestep) enters as a scale
and shift after the second norm, h = norm(h) (1 + s) + b (the adaptive group norm of Nichol &
Dhariwal 2021: a plain added bias before a norm with one channel per group would be erased by
it); h = conv(dropout(swish(h))); out = skip(x) + h, where skip is a 1x1 convolution when the
width changes and the identity otherwise. The second conv starts at zero, so every block begins
as the identity and a deep stack trains from the first step.
"""
from __future__ import annotations

import torch
from torch import nn


def group_norm(channels: int, max_groups: int = 32, min_size: int = 4) -> nn.GroupNorm:
    """GroupNorm with the most groups (<= max_groups, of >= min_size channels where possible)
    that divide ``channels``."""
    g = max(1, min(max_groups, channels // min_size))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


class ResidualBlock(nn.Module):
    """x (N, c_in, H, W), emb (N, emb_dim) or None -> (N, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int = 0, dropout: float = 0.0,
                 max_groups: int = 32):
        super().__init__()
        self.norm1 = group_norm(c_in, max_groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out) if emb_dim else None     # -> (scale, shift)
        self.norm2 = group_norm(c_out, max_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm2(self.conv1(self.act(self.norm1(x))))
        if self.emb is not None and emb is not None:
            scale, shift = self.emb(self.act(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(self.act(h)))
        return self.skip(x) + h


class ResidualStack(nn.Module):
    """The residual blocks of the VQ-VAE (van den Oord et al. 2017): each adds
    conv1x1(relu(conv3x3(relu(h)))) to h ("ReLU, 3x3 conv, ReLU, 1x1 conv"), with ``hidden``
    channels inside; a ReLU follows the last block. (N, channels, H, W) -> the same shape."""

    def __init__(self, channels: int, hidden: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(hidden, channels, 1))
            for _ in range(blocks))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = h + block(h)
        return torch.relu(h)
