"""U-Net noise predictors (Ronneberger et al. 2015 for the U): DDPM's, and the book's.

The image goes down through levels of residual blocks (each level halves the side), through a
bottleneck, and back up, each up block concatenating the activations its mirror down block
saved (the skips), so fine detail need not squeeze through the bottleneck. The last
convolution starts at zero, so an untrained net predicts 0.

- :class:`UNet` (``arch=ddpm``, Ho et al. 2020): group-normed pre-activation residual blocks
  that each receive the embedded noise level t (sinusoidal, then an MLP) as a scale and shift
  and, for conditional models, an embedded class label; strided-conv down-sampling, nearest
  up-sampling then a conv; optional self-attention at the low resolutions, and optional
  cross-attention to a text's token states (Rombach et al. 2022: the latent diffusion U-Net;
  padded tokens are masked out).
- :class:`BookUNet` (``arch=book``): the DDIM network of Foster's "Generative Deep Learning"
  (2nd ed., ch. 8, after Beres' Keras example). The noise variance sigma_t^2 is embedded
  sinusoidally once and concatenated to the 1x1-convolved image at the input, never fed to
  the blocks; a block is BN (no centre, no scale) -> conv3x3 -> swish -> conv3x3, plus the
  input (1x1-convolved when the width changes); average pooling down, bilinear up;
  unconditional. Not carried over from Keras: its weight initialisation (PyTorch's default).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.models.diffusion.schedules import Schedule
from genzoo.nn.attention import MultiHeadAttention
from genzoo.nn.embeddings import SinusoidalMLP, geometric_sinusoidal_embedding
from genzoo.nn.residual import ResidualBlock, group_norm


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, residual, with a
    zero-initialised output projection (so it starts as the identity)."""

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2),
                                             v.transpose(-1, -2))        # (n, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class CrossAttention2d(nn.Module):
    """Attention from the H*W positions of a feature map (queries, after a group norm) to the
    states of a text's tokens (keys and values, (N, S, context_dim)), padded tokens masked;
    residual, with a zero-initialised output projection (it starts as the identity)."""

    def __init__(self, channels: int, context_dim: int, heads: int = 1):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = MultiHeadAttention(channels, heads, context_dim=context_dim)
        nn.init.zeros_(self.attn.out.weight)
        nn.init.zeros_(self.attn.out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)                       # (n, hw, c)
        out = self.attn(q, context=context.to(q.dtype), mask=mask)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class Level(nn.Module):
    """``blocks`` residual blocks at one resolution, each optionally followed by attention and
    by cross-attention to a context (when ``context_dim``)."""

    def __init__(self, widths_in: list[int], c_out: int, emb_dim: int, dropout: float,
                 attention: bool, heads: int, context_dim: int = 0):
        super().__init__()
        self.res = nn.ModuleList(ResidualBlock(c, c_out, emb_dim, dropout) for c in widths_in)
        self.attn = nn.ModuleList(SelfAttention2d(c_out, heads) if attention else nn.Identity()
                                  for _ in widths_in)
        self.cross = nn.ModuleList(CrossAttention2d(c_out, context_dim, heads)
                                   for _ in widths_in) if context_dim else None

    def block(self, i: int, h, emb, context=None, mask=None):
        h = self.attn[i](self.res[i](h, emb))
        if self.cross is not None and context is not None:
            h = self.cross[i](h, context, mask)
        return h


class UNet(nn.Module):
    """eps_theta(x_t, t, y, context): x_t (N, C, H, W), t (N,) in [0, 1], y (N,) labels or None,
    context (N, S, context_dim) token states or None (with mask (N, S), True at real tokens)
    -> (N, C, H, W).

    ``widths`` are the channels of the levels from the top (full resolution) down; each level
    ends with a halving of the side, so H and W must divide by 2^len(widths). ``attention``
    lists the sides (e.g. 16, 8) at which blocks get self-attention. ``num_classes`` > 0 adds
    a label embedding with one extra row, index num_classes, for "no label" (classifier-free
    guidance trains it by dropping labels). ``cross_attention`` lists the sides whose blocks
    cross-attend to a context of width ``context_dim``.
    """

    def __init__(self, channels: int, widths: tuple[int, ...] = (32, 64, 96), bottleneck: int = 128,
                 blocks: int = 2, attention: tuple[int, ...] = (), image_size: int = 64,
                 emb_dim: int = 32, dropout: float = 0.0, num_classes: int = 0, heads: int = 1,
                 time_scale: float = 1000.0, context_dim: int = 0,
                 cross_attention: tuple[int, ...] = ()):
        super().__init__()
        d = 4 * widths[0]        # width of the conditioning vector fed to every block
        self.time_embed = SinusoidalMLP(emb_dim, d, scale=time_scale)
        self.num_classes = num_classes
        self.label_embed = nn.Embedding(num_classes + 1, d) if num_classes else None
        self.conv_in = nn.Conv2d(channels, widths[0], 3, padding=1)

        self.down, self.downsample, skips = nn.ModuleList(), nn.ModuleList(), []
        c, side = widths[0], image_size
        for w in widths:
            ins = [c] + [w] * (blocks - 1)
            self.down.append(Level(ins, w, d, dropout, side in attention, heads,
                                   context_dim if side in cross_attention else 0))
            skips += [w] * blocks
            self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
            c, side = w, side // 2

        mid_attn = side in attention
        self.mid = Level([c, bottleneck], bottleneck, d, dropout, mid_attn, heads,
                         context_dim if side in cross_attention else 0)
        c = bottleneck

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for w in reversed(widths):
            side *= 2
            self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
            ins = []
            for _ in range(blocks):
                ins.append(c + skips.pop())
                c = w
            self.up.append(Level(ins, w, d, dropout, side in attention, heads,
                                 context_dim if side in cross_attention else 0))

        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(t)
        if self.label_embed is not None:
            if y is None:               # no label given: the "no label" row
                y = torch.full((len(t),), self.num_classes, device=t.device, dtype=torch.long)
            emb = emb + self.label_embed(y)
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.conv_in(x)
        skips = []
        for level, down in zip(self.down, self.downsample):
            for i in range(len(level.res)):
                h = level.block(i, h, emb, context, mask)
                skips.append(h)
            h = down(h)
        for i in range(len(self.mid.res)):
            h = self.mid.block(i, h, emb, context, mask)
        for level, up in zip(self.up, self.upsample):
            h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            for i in range(len(level.res)):
                h = level.block(i, torch.cat([h, skips.pop()], dim=1), emb, context, mask)
        return self.conv_out(F.silu(self.norm_out(h)))


class BookResidualBlock(nn.Module):
    """x (N, c_in, H, W) -> skip(x) + conv3x3(swish(conv3x3(BN(x)))), BN without centre or
    scale and with Keras' defaults (momentum 0.99 -> PyTorch's 0.01, eps 1e-3)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.norm = nn.BatchNorm2d(c_in, eps=1e-3, momentum=0.01, affine=False)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv2(F.silu(self.conv1(self.norm(x))))


class BookUNet(nn.Module):
    """eps_theta(x_t, sigma_t^2): x_t (N, C, H, W), t (N,) in [0, 1] -> (N, C, H, W).

    The book's network at widths (32, 64, 96), bottleneck 128, blocks 2, emb_dim 32; sigma_t^2
    = 1 - alpha_bar(t) comes from ``schedule``, so the net sees the noise variance, not t."""

    def __init__(self, channels: int, schedule: Schedule, widths: tuple[int, ...] = (32, 64, 96),
                 bottleneck: int = 128, blocks: int = 2, emb_dim: int = 32):
        super().__init__()
        self.schedule, self.emb_dim = schedule, emb_dim
        self.conv_in = nn.Conv2d(channels, widths[0], 1)
        self.pool = nn.AvgPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

        def level(c_in: int, width: int) -> nn.ModuleList:
            return nn.ModuleList(BookResidualBlock(c_in if i == 0 else width, width)
                                 for i in range(blocks))

        self.down, skips, c = nn.ModuleList(), [], widths[0] + emb_dim
        for w in widths:
            self.down.append(level(c, w))
            skips += [w] * blocks
            c = w
        self.mid = level(c, bottleneck)
        self.up, c = nn.ModuleList(), bottleneck
        for w in reversed(widths):
            ups = nn.ModuleList()
            for _ in range(blocks):
                ups.append(BookResidualBlock(c + skips.pop(), w))
                c = w
            self.up.append(ups)
        self.conv_out = nn.Conv2d(c, channels, 1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def noise_variance(self, t: torch.Tensor) -> torch.Tensor:
        return 1 - self.schedule.alpha_bar(t)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            raise ValueError("the book's U-Net is unconditional: it takes no labels")
        h = self.conv_in(x)
        e = geometric_sinusoidal_embedding(self.noise_variance(t), self.emb_dim)
        h = torch.cat([h, e.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1)
        skips = []
        for level in self.down:
            for block in level:
                h = block(h)
                skips.append(h)
            h = self.pool(h)
        for block in self.mid:
            h = block(h)
        for level in self.up:
            h = self.upsample(h)
            for block in level:
                h = block(torch.cat([h, skips.pop()], 1))
        return self.conv_out(h)
