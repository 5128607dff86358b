"""Diffusion whose U-Net cross-attends to a context: what latent diffusion (a caption's token
states) and unCLIP's decoder (tokens made of a CLIP image embedding) share.

ddpm's machinery (models/diffusion/ddpm.py: schedule, loss, guidance, samplers) with the U-Net
built with cross-attention at the sides in ``cross_attention`` to a context of width
``self.context_dim`` (set by the family before it is built), captioned data tokenized as the
recipe says, and ``--prompt`` instead of ``--label``.
"""
from __future__ import annotations

from dataclasses import dataclass

from genzoo.models.base import SampleOption
from genzoo.models.diffusion.ddpm import Diffusion, DiffusionConfig
from genzoo.models.diffusion.unet import UNet


@dataclass
class ConditionedConfig(DiffusionConfig):
    cross_attention: tuple[int, ...] = (8, 4)  # sides whose blocks attend to the context
    context: int = 32                          # most tokens per caption (the recipe's data.context)
    tokenizer: str = "bpe"                     # the recipe's data.tokenizer and data.vocab_size
    vocab_size: int = 1000
    widths: tuple[int, ...] = (64, 128)
    bottleneck: int = 128
    image_size: int = 32                       # the pictures' side
    guidance: float = 3.0


# A few-millisecond U-Net for the contract test and pipeline smoke runs.
TINY = dict(widths=[8, 16], bottleneck=16, blocks=1, attention=[], cross_attention=[4, 2],
            emb_dim=8, T=100, sample_steps=4, context=16, image_size=8)


class ConditionedDiffusion(Diffusion):
    context_dim = 0
    sample_options = tuple(o for o in Diffusion.sample_options if o.name != "label") + (
        SampleOption("prompt", str, None, "the caption every sample is drawn for (default: "
                     "the data's example captions)", kind="prompt"),)

    def make_net(self, channels: int, side: int):
        c = self.config
        return UNet(channels, tuple(c.widths), c.bottleneck, c.blocks, tuple(c.attention), side,
                    c.emb_dim, c.dropout, 0, c.heads, context_dim=self.context_dim,
                    cross_attention=tuple(c.cross_attention))

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size, "tokenizer": config.tokenizer,
                "vocab_size": config.vocab_size, "context": config.context}
