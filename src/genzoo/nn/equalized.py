"""Blocks that ProGAN (Karras et al. 2018) introduced and StyleGAN2 (Karras et al. 2020) keeps.

- Equalised learning rate: weights are stored as w ~ N(0, 1) and scaled at run time by He's
  constant c = gain / sqrt(fan_in), w_hat = c w. Adam's step size is about the same for every
  stored weight, so after scaling every layer learns at the same relative speed, whatever its
  fan-in. A learning-rate multiplier m (StyleGAN's mapping network: 0.01) stores w ~ N(0, 1/m^2)
  and scales by c m: the same initial layer, learning m times slower.
- Pixel-wise feature normalisation: each pixel's feature vector divided by its root mean
  square over the channels, b = a / sqrt(mean_c a^2 + eps) (ProGAN's G; StyleGAN's z).
- Minibatch standard deviation: the discriminator is shown how varied a group of images is,
  as one more feature map (the standard deviation over the group of every feature at every
  pixel, averaged), so that a generator that collapses is easy to spot.
- Resampling by the binomial filter [1, 3, 3, 1] (StyleGAN2): bilinear upsampling by 2 is
  exactly that filter on the zero-stuffed image; downsampling filters with it and keeps every
  second pixel. Both are differentiable twice, as R1 and the path-length penalty need.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2)


def channels_at(side: int, channel_base: int, channel_max: int) -> int:
    """The width of both networks at side r: min(channel_max, channel_base / r)."""
    return max(1, min(channel_max, channel_base // side))


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) times sqrt(2), so that unit-variance inputs stay about unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualizedLinear(nn.Linear):
    """y = x (c m W)^T + m b, c = gain / sqrt(fan_in), with W ~ N(0, 1/m^2) stored."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 gain: float = 1.0, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__(in_features, out_features, bias)
        self.lr_mul = lr_mul
        self.scale = gain * lr_mul / math.sqrt(in_features)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            if bias:
                self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: Tensor) -> Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, b)


class EqualizedConv2d(nn.Conv2d):
    """A k x k convolution ("same" padding) with an equalised learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 bias: bool = True, gain: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=bias)
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)
        with torch.no_grad():
            self.weight.normal_()
            if bias:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each item's (or pixel's) features over dim 1 divided by their root mean square."""
    return x * torch.rsqrt(x.float().square().mean(1, keepdim=True) + eps).to(x.dtype)


class MinibatchStdDev(nn.Module):
    """x (N, C, H, W) -> (N, C + F, H, W): F maps of the standard deviation within groups.

    The batch is split into groups of ``group_size`` (item i belongs to group i mod N/G); for
    each group, the standard deviation over its items of every feature at every pixel, averaged
    over features (in F parts) and pixels, is appended as F constant maps to each of its items.
    A batch that does not divide into such groups uses the largest group size that does."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        G = max(g for g in range(1, min(self.group_size, n) + 1) if n % g == 0)
        F_ = self.num_channels
        y = x.float().reshape(G, -1, F_, c // F_, h, w)        # [G, M, F, c/F, H, W]
        y = (y.var(0, unbiased=False) + 1e-8).sqrt()            # over the group
        y = y.mean(dim=(2, 3, 4))                               # [M, F]
        y = y.reshape(-1, F_, 1, 1).repeat(G, 1, h, w)          # [N, F, H, W]
        return torch.cat([x, y.to(x.dtype)], 1)


def upsample2x(x: Tensor) -> Tensor:
    """Double the side: bilinear, i.e. the [1, 3, 3, 1] filter on the zero-stuffed image."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def downsample2x(x: Tensor) -> Tensor:
    """Halve the side: the separable [1, 3, 3, 1] / 8 low-pass filter, then every second pixel.

    Always in fp32: on CPUs the backward of this depthwise convolution in bf16 is far slower
    than in fp32; it led the profile of a bf16 step of the residual discriminator that uses
    it (benchmarks/results/advanced_gans.md)."""
    c = x.shape[1]
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device)
    k = (f[:, None] * f[None, :] / 64).expand(c, 1, 4, 4)
    with torch.autocast(x.device.type, enabled=False):
        return F.conv2d(F.pad(x.float(), (1, 1, 1, 1)), k, stride=2, groups=c).to(x.dtype)
