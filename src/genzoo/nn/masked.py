"""Causal convolutions for autoregressive image models.

An autoregressive image model factorises p(x) = prod_i p(x_i | x_<i) over pixels in raster
order (row by row, left to right), so the network's output at pixel i may see only pixels
before i. Two ways of building such a network from convolutions are here:

* Masked convolutions (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", PixelCNN):
  the kernel is multiplied by a mask that zeroes every weight at or after the centre.
  Type A (first layer) also zeroes the centre, so an output never sees its own pixel; type B
  (every later layer) keeps the centre, since by then the centre feature holds only the past.
  For colour the paper orders the channels R -> G -> B inside a pixel: feature maps are split
  into as many groups as colours, and at the centre a group-c output sees input groups < c
  (type A) or <= c (type B). Away from the centre every group sees everything.
* Shifted convolutions (Salimans et al. 2017, PixelCNN++; van den Oord et al. 2016, Gated
  PixelCNN): a "down" stream whose output at (i, j) sees only rows above i, and a "down-right"
  stream that also sees row i left of j. They are ordinary convolutions with one-sided
  padding followed by a shift, have no blind spot, and allow strided down- and up-sampling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def channel_groups(channels: int, colours: int) -> torch.Tensor:
    """Colour group (0 = R, 1 = G, 2 = B...) of each of ``channels`` feature maps: contiguous
    blocks of (nearly) equal size, so the last layer's C*K outputs are C blocks of K."""
    return torch.arange(channels) * colours // channels


def causal_mask(mask_type: str, in_channels: int, out_channels: int, kernel_size: int,
                colours: int = 1) -> torch.Tensor:
    """The (out, in, k, k) 0/1 mask of a PixelCNN convolution of type ``"A"`` or ``"B"``."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask type must be 'A' or 'B', got {mask_type!r}")
    if kernel_size % 2 == 0:
        raise ValueError(f"masked convolutions need an odd kernel size, got {kernel_size}")
    c = kernel_size // 2
    mask = torch.zeros(out_channels, in_channels, kernel_size, kernel_size)
    mask[:, :, :c, :] = 1              # every row above the centre
    mask[:, :, c, :c] = 1              # the centre row, left of the centre
    g_out = channel_groups(out_channels, colours)[:, None]
    g_in = channel_groups(in_channels, colours)[None, :]
    sees = g_in < g_out if mask_type == "A" else g_in <= g_out
    mask[:, :, c, c] = sees.float()    # the centre: earlier colours (and, type B, the same)
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same' convolution whose kernel is masked so that outputs see only the past."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 mask_type: str = "B", colours: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=bias)
        self.mask_type = mask_type
        # derived from the arguments, so it is not saved in checkpoints
        self.register_buffer("mask", causal_mask(mask_type, in_channels, out_channels,
                                                 kernel_size, colours), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type}"


class MaskedResidualBlock(nn.Module):
    """x + 1x1(relu(masked 3x3(relu(1x1(x))))), every convolution masked (type B) so that
    colour groups stay ordered; for grey images the 1x1 masks are all ones (PixelCNN's block;
    the VQ prior's PixelCNN over code maps uses it too)."""

    def __init__(self, h: int, colours: int):
        super().__init__()
        self.reduce = MaskedConv2d(h, h // 2, 1, "B", colours)
        self.conv = MaskedConv2d(h // 2, h // 2, 3, "B", colours)
        self.expand = MaskedConv2d(h // 2, h, 1, "B", colours)

    def forward(self, x):
        y = F.relu(self.reduce(x))
        y = F.relu(self.conv(y))
        return x + F.relu(self.expand(y))


# -- shifted convolutions (PixelCNN++) ------------------------------------------------------
def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Move every row one down (a zero row enters at the top): row i now holds row i - 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Move every column one right: column j now holds column j - 1."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class DownShiftedConv2d(nn.Conv2d):
    """Output (i, j) sees rows i - kh + 1 .. i, columns j - kw//2 .. j + kw//2 (kh x kw kernel,
    kw odd): padding only above, so nothing below row i enters."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(2, 3), stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride)
        kh, kw = self.kernel_size
        self.pad = (kw // 2, kw // 2, kh - 1, 0)        # left, right, top, bottom

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))


class DownRightShiftedConv2d(nn.Conv2d):
    """Output (i, j) sees rows i - kh + 1 .. i and columns j - kw + 1 .. j: padding only above
    and to the left."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(2, 2), stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride)
        kh, kw = self.kernel_size
        self.pad = (kw - 1, 0, kh - 1, 0)

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))


class DownShiftedConvTranspose2d(nn.ConvTranspose2d):
    """Stride-2 up-sampling of the down stream: input (i, j) writes rows 2i, 2i + 1 only, so
    what was above row 2i stays above."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(2, 3)):
        super().__init__(in_channels, out_channels, kernel_size, stride=2, output_padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        kw = self.kernel_size[1]
        return super().forward(x)[:, :, :2 * h, kw // 2: kw // 2 + 2 * w]


class DownRightShiftedConvTranspose2d(nn.ConvTranspose2d):
    """Stride-2 up-sampling of the down-right stream: input (i, j) writes the 2x2 block at
    (2i, 2j) and nothing above or left of it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(2, 2)):
        super().__init__(in_channels, out_channels, kernel_size, stride=2, output_padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        return super().forward(x)[:, :, :2 * h, :2 * w]
