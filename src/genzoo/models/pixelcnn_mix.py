"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017), in the small configuration of
Foster's "Generative Deep Learning", ch. 5.

Still p(x) = prod_i p(x_i | x_<i) over pixels in raster order, but each pixel's value is a
discretised mixture of logistics over all 256 levels (genzoo/nn/logistic_mixture.py) rather than
a 256-way softmax: neighbouring levels share mass, and the colours of a pixel depend on each
other through the mixture's means, so the network conditions on whole pixels. The network
is two streams of shifted convolutions (genzoo/nn/masked.py): a "down" stream that sees the
rows above and a "down-right" stream that also sees the row's left part, so there is no blind
spot; gated residual blocks with concatenated ELU, dropout, and a U-Net-like hierarchy of
resolutions (strided down-sampling, then up-sampling with shortcut connections).
The log-likelihood is exact: bits per dimension over 256 levels. Not kept from the paper:
weight normalisation and data-dependent initialisation (plain PyTorch init and Adam instead).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Likelihood, Objective, SampleOption
from genzoo.nn import logistic_mixture as dmol
from genzoo.nn.masked import (DownRightShiftedConv2d, DownRightShiftedConvTranspose2d,
                              DownShiftedConv2d, DownShiftedConvTranspose2d, down_shift,
                              right_shift)
from genzoo.registry import register


@dataclass
class PixelCNNMixConfig:
    image_size: int = 32            # the recipe's side; data is adapted to it
    filters: int = 32               # feature maps of both streams
    resnet_blocks: int = 1          # gated residual blocks per resolution and pass
    hierarchies: int = 2            # resolutions: image_size, image_size/2, ...
    mixtures: int = 5               # logistic components per pixel
    dropout: float = 0.3            # in the residual blocks, during training only
    lr: float = 1e-3                # Adam, betas (0.9, 0.999)

    def validate(self):
        if self.filters < 1 or self.resnet_blocks < 1 or self.hierarchies < 1 or self.mixtures < 1:
            raise ValueError("filters, resnet_blocks, hierarchies and mixtures must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.image_size % 2 ** (self.hierarchies - 1):
            raise ValueError(f"image_size {self.image_size} must be divisible by "
                             f"2^{self.hierarchies - 1} (one halving per extra hierarchy)")


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """ELU of x and of -x side by side: both signs of a feature pass (twice the channels)."""
    return F.elu(torch.cat([x, -x], 1))


class GatedResnet(nn.Module):
    """x + a * sigmoid(b), [a, b] = conv(dropout(concat_elu(conv(concat_elu(x)) +
    nin(concat_elu(shortcut))))); ``conv`` is the stream's shifted convolution."""

    def __init__(self, h: int, conv: type, shortcut_channels: int = 0, dropout: float = 0.0):
        super().__init__()
        self.conv1 = conv(2 * h, h)
        self.nin = nn.Conv2d(2 * shortcut_channels, h, 1) if shortcut_channels else None
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv(2 * h, 2 * h)

    def forward(self, x, shortcut=None):
        c = self.conv1(concat_elu(x))
        if shortcut is not None:
            c = c + self.nin(concat_elu(shortcut))
        a, b = self.conv2(self.dropout(concat_elu(c))).chunk(2, 1)
        return x + a * torch.sigmoid(b)


@register("pixelcnn_mix", config=PixelCNNMixConfig, taxonomy="explicit-tractable",
          modality="image",
          summary="PixelCNN++: discretised logistic mixture over 256 levels, exact bits per dim",
          showcase="genzoo.viz.pixelcnn:showcase")
class PixelCNNMix(Family):
    train_defaults = {"batch_size": 128, "steps": 2000, "sample_n": 16}
    presets = {
        # A few-millisecond model for the contract test and pipeline smoke runs.
        "tiny": dict(filters=8, resnet_blocks=1, hierarchies=2, mixtures=2, image_size=8),
    }
    sample_options = (
        SampleOption("temperature", float, 1.0, "sharpens the choice of mixture component and "
                     "narrows each logistic (< 1)"),)

    def __init__(self, config: PixelCNNMixConfig, data: DataInfo):
        super().__init__(config, data)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"pixelcnn_mix: needs images (C, H, W), got {data.modality} {data.shape}")
        C, h, R, L = data.shape[0], config.filters, config.resnet_blocks, config.hierarchies
        side = 2 ** (L - 1)
        if data.shape[1] % side or data.shape[2] % side:
            raise GenzooError(f"pixelcnn_mix: image size {tuple(data.shape[1:])} must be "
                              f"divisible by {side} for {L} hierarchies")
        self.colours = C
        # first layers: down sees the rows above, down-right also the pixels to the left
        self.u_in = DownShiftedConv2d(C + 1, h, (2, 3))
        self.ul_in_up = DownShiftedConv2d(C + 1, h, (1, 3))
        self.ul_in_left = DownRightShiftedConv2d(C + 1, h, (2, 1))
        p = config.dropout
        self.down_u = nn.ModuleList([nn.ModuleList([GatedResnet(h, DownShiftedConv2d, 0, p)
                                                    for _ in range(R)]) for _ in range(L)])
        self.down_ul = nn.ModuleList([nn.ModuleList([GatedResnet(h, DownRightShiftedConv2d, h, p)
                                                     for _ in range(R)]) for _ in range(L)])
        self.shrink_u = nn.ModuleList([DownShiftedConv2d(h, h, (2, 3), 2) for _ in range(L - 1)])
        self.shrink_ul = nn.ModuleList([DownRightShiftedConv2d(h, h, (2, 2), 2) for _ in range(L - 1)])
        ups = [R] + [R + 1] * (L - 1)       # the up pass also consumes the down-samplings' outputs
        self.up_u = nn.ModuleList([nn.ModuleList([GatedResnet(h, DownShiftedConv2d, h, p)
                                                  for _ in range(r)]) for r in ups])
        self.up_ul = nn.ModuleList([nn.ModuleList([GatedResnet(h, DownRightShiftedConv2d, 2 * h, p)
                                                   for _ in range(r)]) for r in ups])
        self.grow_u = nn.ModuleList([DownShiftedConvTranspose2d(h, h) for _ in range(L - 1)])
        self.grow_ul = nn.ModuleList([DownRightShiftedConvTranspose2d(h, h) for _ in range(L - 1)])
        self.out = nn.Conv2d(h, dmol.num_params(C, config.mixtures), 1)

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- the network ---------------------------------------------------------------------
    def params(self, x: torch.Tensor) -> torch.Tensor:
        """Images on the grid [-1, 1] (N, C, H, W) -> mixture parameters (N, P, H, W) of
        p(x_ij | pixels before (i, j))."""
        x = self._mark(x)
        return self._down_right(x, *self._down(x))

    @staticmethod
    def _mark(x):
        """Add a channel of ones: the zero padding then tells the network where the border is."""
        return torch.cat([x, torch.ones_like(x[:, :1])], 1)

    def _down(self, x):
        """The down stream u (it sees only the rows above): its activations in the down pass
        (shortcuts) and up pass, in the order the down-right stream uses them."""
        us = [down_shift(self.u_in(x))]
        for level in range(self.config.hierarchies):
            for f_u in self.down_u[level]:
                us.append(f_u(us[-1]))
            if level < self.config.hierarchies - 1:
                us.append(self.shrink_u[level](us[-1]))
        skips, ups = list(us), []
        u = skips.pop()
        for level in range(self.config.hierarchies):
            if level > 0:
                u = self.grow_u[level - 1](u)
            for f_u in self.up_u[level]:
                u = f_u(u, skips.pop())
                ups.append(u)
        return us, ups

    def _down_right(self, x, us, ups):
        """The down-right stream ul (rows above and the pixels to the left), fed with u.
        ``x`` may be the top-left corner of the image that u was computed on: ul then runs
        on that window only, u being cut to it."""
        uls = [down_shift(self.ul_in_up(x)) + right_shift(self.ul_in_left(x))]
        k = 0
        for level in range(self.config.hierarchies):
            for f_ul in self.down_ul[level]:
                k += 1
                uls.append(f_ul(uls[-1], _like(us[k], uls[-1])))
            if level < self.config.hierarchies - 1:
                k += 1                          # u's down-sampling is no shortcut for ul
                uls.append(self.shrink_ul[level](uls[-1]))
        ul, t = uls.pop(), 0
        for level in range(self.config.hierarchies):
            if level > 0:
                ul = self.grow_ul[level - 1](ul)
            for f_ul in self.up_ul[level]:
                ul = f_ul(ul, torch.cat([_like(ups[t], ul), uls.pop()], 1))
                t += 1
        return self.out(F.elu(ul))

    # -- the likelihood ------------------------------------------------------------------
    def log_prob(self, x01: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats per image of 8-bit images given in [0, 1] (exact, discrete)."""
        x = dmol.to_grid(x01)
        return dmol.log_prob(self.params(x), x, self.config.mixtures).flatten(1).sum(1)

    def loss(self, batch):
        x01 = batch["x"]
        nll = -self.log_prob(x01).mean() / x01[0].numel()      # nats per sub-pixel
        return {"loss": nll, "bpd": nll / math.log(2)}

    def objectives(self):
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr)]

    def evaluate(self, batch):
        """Held-out negative log-likelihood; ``bpd`` in bits per dimension over 256 levels."""
        return self.loss(batch)

    def likelihood(self, held_out):
        return Likelihood(held_out["bpd"], "bits/dim", 256, exact=True)

    # -- sampling ------------------------------------------------------------------------
    @torch.no_grad()
    def complete(self, x01: torch.Tensor, start_row: int = 0, generator=None,
                 temperature: float = 1.0) -> torch.Tensor:
        """Keep the rows of ``x01`` above ``start_row``, draw the rest pixel by pixel for all
        images at once: per row one pass of the down stream u, per pixel one pass of the
        down-right stream ul (all colours come from it) on the window of rows up to the
        current one and columns up to the next one (rounded up to whole down-sampled
        pixels); nothing outside the window can reach the pixel."""
        if temperature <= 0:
            raise GenzooError(f"pixelcnn_mix: temperature must be > 0, got {temperature}")
        was_training = self.training
        self.eval()
        x = dmol.to_grid(x01.to(self.device).float())
        _, C, H, W = x.shape
        side = 2 ** (self.config.hierarchies - 1)
        for i in range(start_row, H):
            rows = min(H, math.ceil((i + 1) / side) * side)
            # row i of u depends on the rows above only: one pass of u serves the whole row
            u = self._down(self._mark(x[:, :, :rows]))
            for j in range(W):
                # ul looks only left, but its first layer sees the row above up to j + 1
                cols = min(W, math.ceil((j + 2) / side) * side)
                window = self._mark(x[:, :, :rows, :cols])
                p = self._down_right(window, *u)[:, :, i:i + 1, j:j + 1]
                x[:, :, i:i + 1, j:j + 1] = dmol.sample(p.float(), C, self.config.mixtures,
                                                        generator, temperature)
        self.train(was_training)
        return (x + 1) / 2

    @torch.no_grad()
    def sample(self, n, generator=None, temperature: float = 1.0):
        """``n`` images in [0, 1] (multiples of 1/255); temperature sharpens the choice of
        component and narrows each logistic."""
        x = torch.zeros(n, *self.data.shape, device=self.device)
        return self.complete(x, 0, generator, temperature)


def _like(u: torch.Tensor, ul: torch.Tensor) -> torch.Tensor:
    """u cut to the (top-left) window that ul covers."""
    return u[:, :, :ul.shape[2], :ul.shape[3]]
