"""The DCGAN pair of networks (Radford et al. 2016) and the WGAN-GP gradient penalty
(Gulrajani et al. 2017), shared by every GAN family.

The generator turns a code z into a 4x4 feature map with one transposed convolution, then
doubles the side with 4x4 stride-2 transposed convolutions (batch norm, LeakyReLU 0.2) until
the image side, ending in tanh. The discriminator mirrors it: 4x4 stride-2 convolutions
(LeakyReLU 0.2, optional batch norm and dropout) halve the side down to 4x4, and a last 4x4
convolution gives one number per image (a logit, or a critic's score).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn


def halvings(side: int) -> int:
    """k such that side = 4 * 2^k (k >= 1), the number of stride-2 layers of each network."""
    k = int(round(math.log2(side / 4))) if side >= 8 else 0
    if k < 1 or 4 * 2 ** k != side:
        raise ValueError(f"image side {side} must be 4 * 2^k with k >= 1 (8, 16, 32, 64, 128...)")
    return k


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, C, S, S) in [-1, 1].

    Channels: ``width * 2^(k-1)`` at 4x4, halving at each doubling of the side, ``width`` just
    before the output layer (64x64 with width 64: 512 -> 256 -> 128 -> 64 -> C).
    """

    def __init__(self, z_dim: int, channels: int, side: int, width: int = 64,
                 batch_norm: bool = True, slope: float = 0.2):
        super().__init__()
        k = halvings(side)
        c = width * 2 ** (k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=not batch_norm)]
        for _ in range(k - 1):
            layers += [nn.BatchNorm2d(c) if batch_norm else nn.Identity(), nn.LeakyReLU(slope),
                       nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=not batch_norm)]
            c //= 2
        layers += [nn.BatchNorm2d(c) if batch_norm else nn.Identity(), nn.LeakyReLU(slope),
                   nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """images (N, C, S, S) -> one unbounded score per image (N,).

    A DCGAN discriminator reads the score as a logit (sigmoid gives D(x)); a Wasserstein
    critic uses it as it is, and must then have no batch norm (its penalty is per sample).
    The first layer never has batch norm (Radford et al.).
    """

    def __init__(self, channels: int, side: int, width: int = 64, batch_norm: bool = True,
                 dropout: float = 0.0, slope: float = 0.2):
        super().__init__()
        k = halvings(side)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(k):
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=not (batch_norm and i > 0)))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c_in, c = c, c * 2
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 0))     # 4x4 -> 1x1: the score
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


def gradient_penalty(critic: Callable[[Tensor], Tensor], x: Tensor, x_tilde: Tensor,
                     epsilon: Tensor | None = None) -> Tensor:
    """E[(||grad_{x_hat} D(x_hat)||_2 - 1)^2] with x_hat = epsilon x + (1 - epsilon) x_tilde.

    ``x`` real and ``x_tilde`` generated items of the same shape; epsilon ~ U(0, 1) one per
    item unless given; the norm is taken over all non-batch axes. The graph is kept
    (create_graph) so that the penalty trains the critic.
    """
    if epsilon is None:
        epsilon = torch.rand(len(x), device=x.device)
    epsilon = epsilon.to(x.dtype).view(-1, *[1] * (x.dim() - 1))
    x_hat = (epsilon * x.detach() + (1 - epsilon) * x_tilde.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return (norm - 1).pow(2).mean()


def spread(x: Tensor) -> Tensor:
    """Mean over pixels of the standard deviation across a batch: 0 when all items are alike.

    The collapse indicator logged at every step: a collapsed generator's spread falls far
    below the real data's.
    """
    return x.detach().float().flatten(1).std(0).mean()
