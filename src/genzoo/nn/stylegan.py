"""The StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"): a mapping network, a skip generator with modulated convolutions, and a residual
discriminator.

- Mapping f: z -> w, pixel norm then 8 fully connected layers learning 100x slower than the
  rest (lr multiplier 0.01). It also keeps w_avg, the running mean of w, for truncation:
  w' = w_avg + psi (w - w_avg).
- Synthesis g: from a learned constant 4x4 input, two 3x3 convolutions per resolution (the
  first after a 2x upsampling), each *modulated* by a style s = A(w) (one affine map per layer)
  and *demodulated*: w'_ijk = s_i w_ijk, then w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps),
  which gives the outputs unit variance if the inputs have it (the role AdaIN played,
  without its droplet artefacts). Per-pixel noise, scaled by a learned strength, adds
  stochastic detail. Skip architecture: each resolution adds its toRGB output to the
  upsampled image so far. One w per layer ("ws", N x num_ws x w_dim) allows style mixing.
- Discriminator: fromRGB at full resolution, then residual blocks (two 3x3 convolutions, the
  second after a 2x downsampling, plus a 1x1 skip, summed and scaled by 1/sqrt(2)) down to 4x4,
  then minibatch standard deviation, a 3x3 convolution and two fully connected layers.
Channels at side r: min(channel_max, channel_base / r).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.nn.equalized import (SQRT2, EqualizedConv2d, EqualizedLinear, MinibatchStdDev,
                                 channels_at, downsample2x, lrelu, pixel_norm, upsample2x)
from genzoo.nn.gan import halvings


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim); ``w_avg`` is the running mean of the w's it has made."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.fcs = nn.ModuleList(EqualizedLinear(z_dim if i == 0 else w_dim, w_dim,
                                                 lr_mul=lr_mul) for i in range(layers))
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, psi: float = 1.0, track: bool = False) -> Tensor:
        w = pixel_norm(z)
        for fc in self.fcs:
            w = lrelu(fc(w))
        if track:               # training: w_avg <- beta w_avg + (1 - beta) mean(w)
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1:            # the truncation trick, around the mean style
            w = self.w_avg.to(w.dtype).lerp(w, psi)
        return w


class ModulatedConv2d(nn.Conv2d):
    """x (N, C_in, H, W), w (N, w_dim) -> (N, C_out, H', W'): a k x k convolution whose weights
    are scaled per input channel by the style s = A(w) and (optionally) demodulated.

    Written as the paper's "non-fused" equivalent: scaling the input channels by s before a
    shared convolution is the same as scaling the weights, and demodulation is then one factor
    per item and output channel, d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + eps)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, up: bool = False):
        super().__init__(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)
        with torch.no_grad():
            self.weight.normal_()
        self.scale = 1 / (c_in * kernel_size ** 2) ** 0.5         # equalised learning rate
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)  # A: styles start at 1
        self.demodulate, self.up = demodulate, up

    def styles(self, w: Tensor) -> Tensor:
        return self.affine(w)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.styles(w)
        W = self.weight * self.scale
        x = x * s[:, :, None, None].to(x.dtype)
        if self.up:
            x = upsample2x(x)
        x = nn.functional.conv2d(x, W, padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt(s.float().square() @ W.float().square().sum((2, 3)).t() + 1e-8)
            x = x * d[:, :, None, None].to(x.dtype)
        return x


class NoiseInjection(nn.Module):
    """x + strength * noise, one N(0, 1) value per pixel shared by the channels; the strength
    is learned (from 0)."""

    def __init__(self):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = x.shape
        noise = torch.randn(n, 1, h, w, generator=generator, device=x.device).to(x.dtype)
        return x + self.strength.to(x.dtype) * noise


class StyleLayer(nn.Module):
    """Modulated 3x3 convolution, noise, bias, LeakyReLU: one layer of the synthesis network."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim, up=up)
        self.noise = NoiseInjection()
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: Tensor, w: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = self.noise(self.conv(x, w), generator)
        return lrelu(x + self.bias.to(x.dtype)[:, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to the image's channels, not demodulated, plus a bias."""

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = self.conv(x, w)
        return x + self.bias.to(x.dtype)[:, None, None]


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, C, S, S), unbounded (about [-1, 1]).

    Layer order and the w each reads: 4x4 conv (w_0), toRGB (w_1); then per doubling b = 1..:
    up-conv (w_2b-1), conv (w_2b), toRGB (w_2b+1). num_ws = 2 log2(S) - 2."""

    def __init__(self, w_dim: int, side: int, channels: int, channel_base: int,
                 channel_max: int):
        super().__init__()
        sides = [4 * 2 ** b for b in range(halvings(side) + 1)]
        ch = [channels_at(r, channel_base, channel_max) for r in sides]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.convs = nn.ModuleList([StyleLayer(ch[0], ch[0], w_dim)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[0], channels, w_dim)])
        for b in range(1, len(sides)):
            self.convs.append(StyleLayer(ch[b - 1], ch[b], w_dim, up=True))
            self.convs.append(StyleLayer(ch[b], ch[b], w_dim))
            self.to_rgb.append(ToRGB(ch[b], channels, w_dim))
        self.num_ws = 2 * len(sides)
        self.side = side

    def forward(self, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = self.const[None].expand(len(ws), -1, -1, -1).to(ws.dtype)
        x = self.convs[0](x, ws[:, 0], generator)
        img = self.to_rgb[0](x, ws[:, 1])
        for b in range(1, len(self.to_rgb)):
            x = self.convs[2 * b - 1](x, ws[:, 2 * b - 1], generator)
            x = self.convs[2 * b](x, ws[:, 2 * b], generator)
            img = upsample2x(img) + self.to_rgb[b](x, ws[:, 2 * b + 1])
        return img


def mix_styles(w1: Tensor, w2: Tensor, num_ws: int, cutoff: int) -> Tensor:
    """Style mixing: ws whose layers before ``cutoff`` read w1 and from ``cutoff`` on read w2
    (N, num_ws, w_dim); cutoff = num_ws: no mixing."""
    ws = w1[:, None].repeat(1, num_ws, 1)
    ws[:, cutoff:] = w2[:, None]
    return ws


class ResidualBlock(nn.Module):
    """x (N, c_in, S, S) -> (N, c_out, S/2, S/2): (skip(x) + conv(conv(x))) / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3)
        self.skip = EqualizedConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(downsample2x(x))
        x = lrelu(self.conv1(downsample2x(lrelu(self.conv0(x)))))
        return (x + y) / SQRT2


class ResidualDiscriminator(nn.Module):
    """images (N, C, S, S) -> one logit per image (N,)."""

    def __init__(self, channels: int, side: int, channel_base: int, channel_max: int,
                 mbstd_group: int = 4):
        super().__init__()
        ch = lambda r: channels_at(r, channel_base, channel_max)   # noqa: E731
        self.from_rgb = EqualizedConv2d(channels, ch(side), 1)
        blocks, r = [], side
        while r > 4:
            blocks.append(ResidualBlock(ch(r), ch(r // 2)))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c = ch(4)
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualizedConv2d(c + 1, c, 3)
        self.fc = EqualizedLinear(c * 16, c)
        self.out = EqualizedLinear(c, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(lrelu(self.from_rgb(x)))
        x = lrelu(self.conv(self.mbstd(x)))
        return self.out(lrelu(self.fc(x.flatten(1)))).flatten()


class StyleGenerator(nn.Module):
    """The mapping and synthesis networks together: z (N, z_dim) -> images (N, C, S, S)."""

    def __init__(self, z_dim: int, w_dim: int, side: int, channels: int, channel_base: int,
                 channel_max: int, mapping_layers: int = 8, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, lr_mul, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, side, channels, channel_base, channel_max)
        self.num_ws = self.synthesis.num_ws

    def broadcast(self, w: Tensor) -> Tensor:
        """One w for every layer: (N, w_dim) -> (N, num_ws, w_dim)."""
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(self, z: Tensor, psi: float = 1.0,
                generator: torch.Generator | None = None) -> Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, psi)), generator)


def path_lengths(images: Tensor, ws: Tensor) -> Tensor:
    """|J_w^T y|_2 per item, y ~ N(0, I) / sqrt(H W) (StyleGAN2 eq. 4): how far the image moves
    for a step in w, in a random image direction. ``images`` must have been made from ``ws``
    (N, num_ws, w_dim); the gradient's square is summed over w_dim and averaged over layers."""
    h, w = images.shape[2:]
    y = torch.randn_like(images) / (h * w) ** 0.5
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.float().square().sum(2).mean(1).sqrt()
