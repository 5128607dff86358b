"""The growing networks of ProGAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of
GANs for Improved Quality, Stability, and Variation").

Both networks are built for every resolution 4x4 .. S x S at once but used up to a *level* l
(side 4 * 2^l). When a new level comes in, it is faded in smoothly: the generator's output is
alpha toRGB_l(block_l(h)) + (1 - alpha) upsample(toRGB_{l-1}(h)) and the discriminator's input
path alpha block_l(fromRGB_l(x)) + (1 - alpha) fromRGB_{l-1}(downsample(x)), with alpha going
from 0 to 1; the layers of lower resolutions keep training all along.

G: z, pixel-normalised -> a dense layer to 4x4 -> 3x3 conv; each next level: nearest-neighbour
upsampling and two 3x3 convs; LeakyReLU 0.2 and pixel norm after every conv; toRGB is a linear
1x1 conv. D mirrors it with average pooling, and ends in minibatch standard deviation, a 3x3
conv, a dense layer and a linear output. Every layer has an equalised learning rate (He's
constant sqrt(2 / fan_in) applied at run time). Channels at side r: min(channel_max,
channel_base / r) (the paper: 512 up to 32x32, then halving).
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.equalized import (EqualizedConv2d, EqualizedLinear, MinibatchStdDev, channels_at,
                                 pixel_norm)
from genzoo.nn.gan import halvings

GAIN = math.sqrt(2)


def act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def upsample(x: Tensor, factor: int = 2) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest") if factor > 1 else x


def downsample(x: Tensor, factor: int = 2) -> Tensor:
    return F.avg_pool2d(x, factor) if factor > 1 else x


class ConvPN(nn.Module):
    """3x3 equalised conv, LeakyReLU, pixel norm (the generator's unit)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = EqualizedConv2d(c_in, c_out, 3, gain=GAIN)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(act(self.conv(x)))


class ProgressiveGenerator(nn.Module):
    """(z, level, alpha) -> images (N, C, 4 * 2^level, same), about [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, side: int, channel_base: int,
                 channel_max: int):
        super().__init__()
        self.max_level = halvings(side)
        ch = [channels_at(4 * 2 ** l, channel_base, channel_max) for l in range(self.max_level + 1)]
        self.c0 = ch[0]
        self.dense = EqualizedLinear(z_dim, ch[0] * 16, gain=GAIN / 4)   # "4x4 conv" on z
        self.blocks = nn.ModuleList([ConvPN(ch[0], ch[0])])
        for l in range(1, self.max_level + 1):
            self.blocks.append(nn.Sequential(ConvPN(ch[l - 1], ch[l]), ConvPN(ch[l], ch[l])))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1) for c in ch)

    def features(self, z: Tensor, level: int) -> list[Tensor]:
        """The feature maps of levels 0..level."""
        h = pixel_norm(act(self.dense(pixel_norm(z)).view(-1, self.c0, 4, 4)))
        out = [self.blocks[0](h)]
        for l in range(1, level + 1):
            out.append(self.blocks[l](upsample(out[-1])))
        return out

    def forward(self, z: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        h = self.features(z, level)
        img = self.to_rgb[level](h[level])
        if level > 0 and alpha < 1:        # fade in: blend with the previous level's image
            img = alpha * img + (1 - alpha) * upsample(self.to_rgb[level - 1](h[level - 1]))
        return img


class ProgressiveDiscriminator(nn.Module):
    """(images at 4 * 2^level, level, alpha) -> one score per image (N,)."""

    def __init__(self, channels: int, side: int, channel_base: int, channel_max: int,
                 mbstd_group: int = 4):
        super().__init__()
        self.max_level = halvings(side)
        ch = [channels_at(4 * 2 ** l, channel_base, channel_max) for l in range(self.max_level + 1)]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, c, 1, gain=GAIN) for c in ch)
        self.blocks = nn.ModuleList([nn.Identity()])       # level 0 has the epilogue instead
        for l in range(1, self.max_level + 1):
            self.blocks.append(nn.ModuleList([EqualizedConv2d(ch[l], ch[l], 3, gain=GAIN),
                                              EqualizedConv2d(ch[l], ch[l - 1], 3, gain=GAIN)]))
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualizedConv2d(ch[0] + 1, ch[0], 3, gain=GAIN)
        self.dense = EqualizedLinear(ch[0] * 16, ch[0], gain=GAIN)
        self.out = EqualizedLinear(ch[0], 1)

    def block(self, l: int, h: Tensor) -> Tensor:
        conv0, conv1 = self.blocks[l]
        return downsample(act(conv1(act(conv0(h)))))

    def forward(self, x: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        h = act(self.from_rgb[level](x))
        if level > 0:
            h = self.block(level, h)
            if alpha < 1:                  # fade in: blend with the previous level's path
                h = alpha * h + (1 - alpha) * act(self.from_rgb[level - 1](downsample(x)))
        for l in range(level - 1, 0, -1):
            h = self.block(l, h)
        h = act(self.conv(self.mbstd(h)))
        return self.out(act(self.dense(h.flatten(1)))).flatten()


def schedule(shown: int, per_phase: int, max_level: int) -> tuple[int, float]:
    """(level, alpha) after ``shown`` real images: level 0 trains for ``per_phase`` images,
    then each next level fades in over ``per_phase`` images (alpha 0 -> 1) and stabilises for
    as many; the last level stays."""
    if shown < per_phase:
        return 0, 1.0
    k, r = divmod(shown - per_phase, 2 * per_phase)
    if k + 1 > max_level:
        return max_level, 1.0
    return k + 1, min(1.0, r / per_phase)
