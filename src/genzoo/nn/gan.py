"""The DCGAN pair of networks (Radford et al. 2016) and the critics' penalties and losses
(WGAN-GP's gradient penalty, R1, the hinge loss), shared by every GAN family.

The generator turns a code z into a 4x4 feature map with one transposed convolution, then
doubles the side with 4x4 stride-2 transposed convolutions (batch norm, LeakyReLU 0.2) until
the image side, ending in tanh. The discriminator mirrors it: 4x4 stride-2 convolutions
(LeakyReLU 0.2, optional batch norm and dropout) halve the side down to 4x4, and a last 4x4
convolution gives one number per image (a logit, or a critic's score). The SAGAN / BigGAN
toolkit's options (nn/sagan.py, nn/biggan.py) slot into both: a self-attention block at a chosen
side, class-conditional batch norm in G and a projection discriminator.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.biggan import ConditionalBatchNorm2d
from genzoo.nn.sagan import SelfAttention2d


def halvings(side: int) -> int:
    """k such that side = 4 * 2^k (k >= 1), the number of stride-2 layers of each network."""
    k = int(round(math.log2(side / 4))) if side >= 8 else 0
    if k < 1 or 4 * 2 ** k != side:
        raise ValueError(f"image side {side} must be 4 * 2^k with k >= 1 (8, 16, 32, 64, 128...)")
    return k


def feature_sides(side: int) -> list[int]:
    """The sides of the inner feature maps of both networks (4 up to side / 2): where a
    self-attention block may sit."""
    return [4 * 2 ** i for i in range(halvings(side))]


def _check_attention(attention_at: int, side: int) -> None:
    if attention_at and attention_at not in feature_sides(side):
        raise ValueError(f"attention_at {attention_at} is not a feature side of a {side}x{side} "
                         f"network ({', '.join(map(str, feature_sides(side)))}; 0 = none)")


class Generator(nn.Module):
    """z (N, z_dim) [, y (N,) class indices] -> images (N, C, S, S) in [-1, 1].

    Channels: ``width * 2^(k-1)`` at 4x4, halving at each doubling of the side, ``width`` just
    before the output layer (64x64 with width 64: 512 -> 256 -> 128 -> 64 -> C). The toolkit's
    options: a self-attention block after the features of side ``attention_at``, and, with
    ``num_classes``, class-conditional batch norm from one shared class embedding.
    """

    def __init__(self, z_dim: int, channels: int, side: int, width: int = 64,
                 batch_norm: bool = True, slope: float = 0.2, attention_at: int = 0,
                 num_classes: int = 0, embed_dim: int = 128):
        super().__init__()
        k = halvings(side)
        _check_attention(attention_at, side)
        if num_classes and not batch_norm:
            raise ValueError("a class-conditional generator needs batch norm (the class enters "
                             "through its gain and bias)")
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None

        def norm_act(c: int, r: int) -> list[nn.Module]:
            norm = (nn.Identity() if not batch_norm else
                    ConditionalBatchNorm2d(c, embed_dim) if num_classes else nn.BatchNorm2d(c))
            return [norm, nn.LeakyReLU(slope)] + ([SelfAttention2d(c)] if r == attention_at else [])

        c, r = width * 2 ** (k - 1), 4
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=not batch_norm)]
        for _ in range(k - 1):
            layers += norm_act(c, r) + [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=not batch_norm)]
            c, r = c // 2, r * 2
        layers += norm_act(c, r) + [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None and y is None:
            raise ValueError("this generator is class-conditional: give the classes y")
        e = self.embed(y) if self.embed is not None else None
        h = z[:, :, None, None]
        for m in self.net:
            h = m(h, e) if isinstance(m, ConditionalBatchNorm2d) else m(h)
        return h


class Discriminator(nn.Module):
    """images (N, C, S, S) [, y (N,)] -> one unbounded score per image (N,).

    A DCGAN discriminator reads the score as a logit (sigmoid gives D(x)); a Wasserstein
    critic uses it as it is, and must then have no batch norm (its penalty is per sample).
    The first layer never has batch norm (Radford et al.). With ``num_classes``, the score
    gains the projection term of Miyato & Koyama (2018), <embed(y), phi(x)>, where phi(x) are
    the 4x4 features summed over space. ``attention_at``: a self-attention block after the
    features of that side.
    """

    def __init__(self, channels: int, side: int, width: int = 64, batch_norm: bool = True,
                 dropout: float = 0.0, slope: float = 0.2, attention_at: int = 0,
                 num_classes: int = 0):
        super().__init__()
        k = halvings(side)
        _check_attention(attention_at, side)
        layers: list[nn.Module] = []
        c_in, c, r = channels, width, side
        for i in range(k):
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=not (batch_norm and i > 0)))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            r //= 2
            if r == attention_at:
                layers.append(SelfAttention2d(c))
            c_in, c = c, c * 2
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 0))     # 4x4 -> 1x1: the score
        self.net = nn.Sequential(*layers)
        self.embed = nn.Embedding(num_classes, c_in) if num_classes else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        *body, head = self.net
        for m in body:
            x = m(x)
        score = head(x).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: give the classes y")
            score = score + (self.embed(y)[:, :, None, None] * x).sum((1, 2, 3))
        return score


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


def r1_penalty(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] on real data x (Mescheder et al. 2018): the zero-centred penalty
    that StyleGAN2 weighs by gamma / 2. The graph is kept so that it trains the critic."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1).mean()


def hinge_losses(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """The critic's hinge loss (Lim & Ye 2017; SAGAN, BigGAN) in two parts:
    E[max(0, 1 - D(x))] and E[max(0, 1 + D(G(z)))]. The generator minimises -E[D(G(z))]."""
    return F.relu(1 - d_real).mean(), F.relu(1 + d_fake).mean()


def spread(x: Tensor) -> Tensor:
    """Mean over pixels of the standard deviation across a batch: 0 when all items are alike.

    The collapse indicator logged at every step: a collapsed generator's spread falls far
    below the real data's.
    """
    return x.detach().float().flatten(1).std(0).mean()
