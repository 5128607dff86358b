"""Convolutional encoder and decoder stacks (3x3, stride 2), as in the autoencoder chapter.

Each encoder layer halves the image side ("same" padding), each decoder layer doubles it, so
a 32x32 image passes 32 -> 16 -> 8 -> 4 through three layers and back.
"""
from __future__ import annotations

import math

import torch
from torch import nn


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
