"""Affine coupling layers and their masks (Dinh, Sohl-Dickstein & Bengio 2017, "Density
estimation using Real NVP").

A coupling layer splits its input with a binary mask b: the part b * x passes unchanged and
conditions an affine map of the rest,

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),

whose Jacobian is triangular, so log|det dy/dx| = sum (1 - b) * s(b * x), and whose inverse
needs no inversion of s or t: x = b * y + (1 - b) * (y - t(b * y)) * exp(-s(b * y)).
Masks alternate so every dimension is transformed by some layer. Vectors use alternating
masks; images use a checkerboard over pixels, or a split over channels after a squeeze,
which trades space for channels: (C, H, W) -> (4C, H/2, W/2).

Every flow here has ``forward(x) -> (y, logdet)`` and ``inverse(y) -> (x, logdet)`` with
``logdet`` per example, so that forward and inverse log-dets sum to zero.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

# -- masks (1 = passes through and conditions, 0 = transformed) ------------------------------


def alternating_mask(dim: int, parity: int) -> Tensor:
    """(dim,) mask of 1 on every other coordinate, starting at ``parity`` (0 or 1)."""
    return ((torch.arange(dim) + parity) % 2 == 0).float()


def checkerboard_mask(height: int, width: int, parity: int) -> Tensor:
    """(1, 1, H, W) checkerboard: 1 where (row + col + parity) is even."""
    i = torch.arange(height)[:, None]
    j = torch.arange(width)[None, :]
    return ((i + j + parity) % 2 == 0).float()[None, None]


def channel_mask(channels: int, parity: int) -> Tensor:
    """(1, C, 1, 1) mask: the first half of the channels (parity 0) or the second half."""
    b = (torch.arange(channels) < channels // 2).float()
    return (b if parity == 0 else 1 - b)[None, :, None, None]


# -- squeeze ---------------------------------------------------------------------------------


def squeeze(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, 4C, H/2, W/2): each 2x2 block of pixels becomes 4 channels."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """The inverse of :func:`squeeze`."""
    n, c4, h, w = x.shape
    x = x.reshape(n, c4 // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(n, c4 // 4, 2 * h, 2 * w)


# -- the conditioners s and t ----------------------------------------------------------------


class MLPScaleTranslate(nn.Module):
    """For vectors: a scale net ending in tanh and a translation net, both MLPs (Foster ch. 6)."""

    def __init__(self, dim: int, hidden: int, depth: int):
        super().__init__()

        def mlp():
            layers, d = [], dim
            for _ in range(depth):
                layers += [nn.Linear(d, hidden), nn.ReLU()]
                d = hidden
            last = nn.Linear(d, dim)
            nn.init.zeros_(last.weight)     # s = t = 0 at start: the layer is the identity
            nn.init.zeros_(last.bias)
            return nn.Sequential(*layers, last)
        self.s_net, self.t_net = mlp(), mlp()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.tanh(self.s_net(x)), self.t_net(x)


class ResidualBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(features, features, 3, padding=1),
                                 nn.ReLU(), nn.Conv2d(features, features, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class ConvScaleTranslate(nn.Module):
    """For images: one residual conv net gives both s and t (the paper's ResNet conditioner,
    without its batch normalisation: the zero-initialised last layer already makes training
    start from the identity); s = scale * tanh(.) with a learned per-channel scale keeps
    exp(s) in a safe range."""

    def __init__(self, channels: int, features: int, blocks: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, features, 3, padding=1),
                                 *[ResidualBlock(features) for _ in range(blocks)],
                                 nn.ReLU(), nn.Conv2d(features, 2 * channels, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(x).chunk(2, dim=1)
        return self.scale * torch.tanh(s), t


# -- the coupling layer and a sequence of flows ----------------------------------------------


class AffineCoupling(nn.Module):
    """y = b x + (1 - b)(x exp(s(b x)) + t(b x)); ``st(x)`` returns (s, t)."""

    def __init__(self, mask: Tensor, st: nn.Module):
        super().__init__()
        self.register_buffer("b", mask)
        self.st = st

    def _s_t(self, x_b: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.st(x_b)
        return s * (1 - self.b), t * (1 - self.b)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._s_t(self.b * x)
        y = self.b * x + (1 - self.b) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._s_t(self.b * y)
        x = self.b * y + (1 - self.b) * (y - t) * torch.exp(-s)
        return x, -s.flatten(1).sum(1)


class FlowSequence(nn.Module):
    """f = f_K o ... o f_1; log-dets add up."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for f in self.layers:
            x, ld = f(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for f in reversed(self.layers):
            y, ld = f.inverse(y)
            logdet = logdet + ld
        return y, logdet
