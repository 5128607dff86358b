"""CLIP's image encoders, small (Radford et al. 2021, sec. 2.4; Dosovitskiy et al. 2021).

- :class:`ResNetEncoder`: a 3x3 stem, then stages of pre-activation residual blocks (DDPM's,
  from nn/residual.py, group-normed), each stage after the first opening with a stride-2
  convolution; global average pooling gives the image's vector. CLIP's ResNets pool with an
  attention layer instead; a mean is what a small model on small pictures needs.
- :class:`ViTEncoder`: the picture cut into p x p patches, each linearly embedded (a conv with
  stride p), a learned class token prepended and learned positions added, layer norm, then
  pre-norm transformer blocks in which every token sees every other; the class token's final
  state, layer-normed, is the image's vector.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.models.multimodal.text import encoder_block
from genzoo.nn.residual import ResidualBlock, group_norm


class ResNetEncoder(nn.Module):
    """(N, C, H, W) -> (N, widths[-1])."""

    def __init__(self, channels: int, widths: tuple[int, ...], blocks: int = 1):
        super().__init__()
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1)
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.Conv2d(c, w, 3, stride=2, padding=1))
                c = w
            layers += [ResidualBlock(c, w) for _ in range(blocks)]
        self.stages = nn.Sequential(*layers)
        self.norm = group_norm(c)
        self.width = c

    def forward(self, x: Tensor) -> Tensor:
        h = torch.nn.functional.silu(self.norm(self.stages(self.stem(x))))
        return h.mean((2, 3))


class ViTEncoder(nn.Module):
    """(N, C, H, W) -> (N, width): a vision transformer over p x p patches."""

    def __init__(self, channels: int, image_size: int, patch: int, width: int, layers: int,
                 heads: int):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image side {image_size} must divide into patches of {patch}")
        self.patchify = nn.Conv2d(channels, width, patch, stride=patch, bias=False)
        n = (image_size // patch) ** 2
        self.cls = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.position = nn.Parameter(torch.randn(n + 1, width) * width ** -0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(encoder_block(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        h = self.patchify(x).flatten(2).transpose(1, 2)            # (N, patches, width)
        h = torch.cat([self.cls.expand(len(h), 1, -1).to(h.dtype), h], 1) + self.position
        h = self.ln_pre(h)
        for block in self.blocks:
            h = block(h)
        return self.ln_post(h[:, 0])
