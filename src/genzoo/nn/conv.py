"""Convolutional encoder and decoder stacks (3x3, stride 2), as in the autoencoder chapter.

Each encoder layer halves the image side ("same" padding), each decoder layer doubles it, so
a 32x32 image passes 32 -> 16 -> 8 -> 4 through three layers and back. The VQ-VAE's stacks
(4x4 stride-2 convolutions and a residual stack, to a map of vectors rather than a flat code)
are :class:`StridedEncoder` and :class:`StridedDecoder`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genzoo.nn.residual import ResidualStack


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "silu": nn.SiLU(),
            "gelu": nn.GELU()}[name]


class ConvEncoder(nn.Module):
    """x (N, C, H, W) -> flat features (N, widths[-1] * H/2^L * W/2^L)."""

    def __init__(self, in_shape: tuple[int, int, int], widths: list[int],
                 act: str = "relu", batch_norm: bool = False):
        super().__init__()
        layers, c = [], in_shape[0]
        for w in widths:
            layers.append(nn.Conv2d(c, w, 3, stride=2, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(w))
            layers.append(activation(act))
            c = w
        self.net = nn.Sequential(*layers, nn.Flatten())
        side = [math.ceil(s / 2 ** len(widths)) for s in in_shape[1:]]
        self.feature_shape = (c, *side)
        self.out_features = c * side[0] * side[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """z (N, latent) -> logits (N, C, H, W): a linear map to the encoder's last feature map,
    then transposed convolutions mirroring the encoder, then a 3x3 conv to the channels."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int],
                 feature_shape: tuple[int, int, int], widths: list[int],
                 act: str = "relu", batch_norm: bool = False):
        super().__init__()
        self.feature_shape = feature_shape
        self.out_shape = out_shape
        self.project = nn.Linear(latent_dim, math.prod(feature_shape))
        layers, c = [], feature_shape[0]
        for w in widths:
            layers.append(nn.ConvTranspose2d(c, w, 3, stride=2, padding=1, output_padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(w))
            layers.append(activation(act))
            c = w
        layers.append(nn.Conv2d(c, out_shape[0], 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, *self.feature_shape)
        x = self.net(h)
        return x[..., : self.out_shape[1], : self.out_shape[2]]


class StridedEncoder(nn.Module):
    """The VQ-VAE encoder (van den Oord et al. 2017): ``downsamples`` 4x4 stride-2 convolutions
    of ``hidden`` channels (each halves the side: 32 -> 16 -> 8), a residual stack, and a 1x1
    convolution to ``out_channels`` (the code dimension D). (N, C, H, W) -> (N, D, H/2^n, W/2^n)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, downsamples: int,
                 residual_hidden: int, residual_blocks: int):
        super().__init__()
        layers, c = [], in_channels
        for i in range(downsamples):
            layers += [nn.Conv2d(c, hidden, 4, stride=2, padding=1)]
            layers += [nn.ReLU()] if i + 1 < downsamples else []
            c = hidden
        if downsamples == 0:
            layers += [nn.Conv2d(c, hidden, 3, padding=1)]
        self.net = nn.Sequential(*layers, ResidualStack(hidden, residual_hidden, residual_blocks),
                                 nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StridedDecoder(nn.Module):
    """The mirror of :class:`StridedEncoder`: a 3x3 convolution from the code dimension to
    ``hidden`` channels, a residual stack, then ``upsamples`` 4x4 stride-2 transposed
    convolutions (ReLU between them), the last one to ``out_channels``, with no activation.
    ``last_layer`` is that final convolution (VQ-GAN's adaptive weight is taken there)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, upsamples: int,
                 residual_hidden: int, residual_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1),
                                   ResidualStack(hidden, residual_hidden, residual_blocks)]
        for i in range(upsamples):
            last = i + 1 == upsamples
            layers += [nn.ConvTranspose2d(hidden, out_channels if last else hidden, 4, stride=2,
                                          padding=1)]
            layers += [] if last else [nn.ReLU()]
        if upsamples == 0:
            layers += [nn.Conv2d(hidden, out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    @property
    def last_layer(self) -> nn.Module:
        return self.net[-1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
