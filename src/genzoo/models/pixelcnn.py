"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural
Networks"; the recipe of Foster's "Generative Deep Learning", ch. 5).

An image is a sequence of pixels in raster order, p(x) = prod_i p(x_i | x_<i), and each
factor is a softmax over the K quantised levels of a pixel value. One network computes all
the factors at once: masked convolutions (type A first, so a pixel never sees itself; type B
after) keep every output blind to its own and later pixels; for colour the channels of a
pixel come R -> G -> B. Training is maximum likelihood (cross-entropy per sub-pixel), the
likelihood is exact, and sampling draws the pixels one by one.

The network: a 7x7 type-A layer, residual blocks (1x1 -> masked 3x3 -> 1x1), masked 1x1
layers and a masked 1x1 to K logits per colour. Like the paper's PixelCNN it has a blind spot
(pixels up and to the right beyond the kernel's reach are never seen); PixelCNN++
(``pixelcnn_mix``) has not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Likelihood, Objective, SampleOption
from genzoo.nn.masked import MaskedConv2d, MaskedResidualBlock
from genzoo.registry import register


@dataclass
class PixelCNNConfig:
    levels: int = 4                 # K: quantisation levels of every pixel value (2..256)
    image_size: int = 16            # the recipe's side; data is adapted to it
    filters: int = 128              # feature maps of the type-A layer and the residual stream
    kernel_size: int = 7            # side of the first (type A) kernel
    residual_blocks: int = 5        # 1x1 -> masked 3x3 -> 1x1, with half the filters inside
    output_layers: int = 2          # masked 1x1 layers of `filters` before the logits
    lr: float = 5e-4                # Adam, betas (0.9, 0.999)

    def validate(self):
        if not 2 <= self.levels <= 256:
            raise ValueError(f"levels must be in 2..256, got {self.levels}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if self.filters < 2 or self.residual_blocks < 0 or self.output_layers < 0:
            raise ValueError("filters must be >= 2; residual_blocks and output_layers >= 0")


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images in [0, 1] stored as v/255 -> integer levels k = floor(v * K / 256) in 0..K-1."""
    v = (x * 255).round().long().clamp(0, 255)
    return v * levels // 256


@register("pixelcnn", config=PixelCNNConfig, taxonomy="explicit-tractable", modality="image",
          summary="PixelCNN: masked convolutions, softmax over K levels, exact bits per dim",
          showcase="genzoo.viz.pixelcnn:showcase")
class PixelCNN(Family):
    train_defaults = {"batch_size": 128, "steps": 3000, "sample_n": 16}
    presets = {
        # A few-millisecond model for the contract test and pipeline smoke runs.
        "tiny": dict(filters=16, kernel_size=3, residual_blocks=1, output_layers=1,
                     image_size=8),
    }
    sample_options = (
        SampleOption("temperature", float, 1.0, "divides the logits of every pixel value "
                     "(< 1: sharper)"),)

    def __init__(self, config: PixelCNNConfig, data: DataInfo):
        super().__init__(config, data)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"pixelcnn: needs images (C, H, W), got {data.modality} {data.shape}")
        C = self.colours = data.shape[0]
        K, h = config.levels, config.filters
        layers = [MaskedConv2d(C, h, config.kernel_size, "A", C), nn.ReLU()]
        layers += [MaskedResidualBlock(h, C) for _ in range(config.residual_blocks)]
        for _ in range(config.output_layers):
            layers += [MaskedConv2d(h, h, 1, "B", C), nn.ReLU()]
        layers += [MaskedConv2d(h, C * K, 1, "B", C)]
        self.net = nn.Sequential(*layers)
        # how far (in rows and columns) an output can see: half of every kernel, summed
        self.reach = sum(m.kernel_size[0] // 2 for m in self.modules() if isinstance(m, MaskedConv2d))

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- the likelihood ------------------------------------------------------------------
    def logits(self, k: torch.Tensor) -> torch.Tensor:
        """Levels k (N, C, H, W) -> logits (N, K, C, H, W) of p(x_i | x_<i) for every sub-pixel."""
        K = self.config.levels
        n, C, H, W = k.shape
        out = self.net(k.float() / (K - 1))               # the network sees k scaled to [0, 1]
        return out.view(n, C, K, H, W).transpose(1, 2)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(k) in nats per image, k the K-level quantisation of ``x`` (exact)."""
        k = quantize(x, self.config.levels)
        return -F.cross_entropy(self.logits(k), k, reduction="none").flatten(1).sum(1)

    def loss(self, batch):
        k = quantize(batch["x"], self.config.levels)
        nll = F.cross_entropy(self.logits(k).float(), k)   # nats per sub-pixel
        return {"loss": nll, "bpd": nll / math.log(2)}

    def objectives(self):
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr)]

    def evaluate(self, batch):
        """Held-out negative log-likelihood; ``bpd`` is in bits per dimension of the
        K-level quantised images (log2 K at most), exact."""
        return self.loss(batch)

    def likelihood(self, held_out):
        """Exact bits/dim over the K levels: not comparable with 256-level numbers."""
        return Likelihood(held_out["bpd"], "bits/dim", self.config.levels, exact=True)

    # -- sampling ------------------------------------------------------------------------
    def window_logits(self, k: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """The logits (N, K, C) at pixel (i, j), computed on the smallest window of the image
        that holds everything the output there can see: rows i - reach .. i, columns
        j - reach .. j + reach. Exact, since an output never sees beyond ``reach``."""
        r = self.reach
        top, left = max(0, i - r), max(0, j - r)
        window = k[:, :, top:i + 1, left:j + r + 1]
        return self.logits(window)[:, :, :, i - top, j - left]

    @torch.no_grad()
    def complete(self, x: torch.Tensor, start_row: int = 0, generator=None,
                 temperature: float = 1.0) -> torch.Tensor:
        """Keep the rows of ``x`` above ``start_row`` and draw the rest pixel by pixel, for
        all images at once (H * W * C network passes, each on a small window)."""
        if temperature <= 0:
            raise GenzooError(f"pixelcnn: temperature must be > 0, got {temperature}")
        K = self.config.levels
        was_training = self.training
        self.eval()
        k = quantize(x.to(self.device), K)
        n, C, H, W = k.shape
        for i in range(start_row, H):
            for j in range(W):
                for c in range(C):           # R, then G given R, then B given R and G
                    p = F.softmax(self.window_logits(k, i, j)[:, :, c].float() / temperature, -1)
                    k[:, c, i, j] = torch.multinomial(p, 1, generator=generator)[:, 0]
        self.train(was_training)
        return k.float() / (K - 1)

    @torch.no_grad()
    def sample(self, n, generator=None, temperature: float = 1.0):
        """``n`` images in [0, 1] on the K levels k / (K - 1); temperature divides the logits."""
        x = torch.zeros(n, *self.data.shape, device=self.device)
        return self.complete(x, 0, generator, temperature)
