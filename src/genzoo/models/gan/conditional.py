"""Conditional GAN (Mirza & Osindero 2014) on the WGAN-GP game; Foster's ch. 4 recipe.

Both players see the class label y as a one-hot vector: the generator as K extra entries
appended to z, G([z, onehot(y)]); the critic as K extra image channels, each constant (1 on the
label's channel, 0 elsewhere), D([x, onehot(y) broadcast]). The critic then judges whether an
image is a real image *of that class*, so the generator must draw the class it is asked for.
The loss is WGAN-GP's with the real batch's labels given to both real and generated images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.gan.wgan_gp import PRESETS as WGAN_PRESETS
from genzoo.models.gan.wgan_gp import WGANGP, WGANGPConfig
from genzoo.registry import register


@dataclass
class CGANConfig(WGANGPConfig):
    def validate(self):
        super().validate()
        if self.conditional != "no":
            raise ValueError("conditional: a cgan is conditioned by one-hot inputs already; for "
                             "conditional batch norm and a projection critic use wgan_gp or "
                             "dcgan with conditional=yes")


# WGAN-GP's presets, less their class conditioning (the one-hot inputs are this family's own).
PRESETS = {name: {k: v for k, v in p.items() if k != "conditional"}
           for name, p in WGAN_PRESETS.items()}


@register("cgan", config=CGANConfig, taxonomy="implicit", modality="image",
          summary="conditional WGAN-GP: one-hot label into G's code and D's channels",
          showcase="genzoo.viz.gan:showcase")
class ConditionalGAN(WGANGP):
    presets = PRESETS

    def __init__(self, config: CGANConfig, data: DataInfo):
        if data.num_classes < 2:
            raise GenzooError("cgan: needs labelled data with at least 2 classes (image "
                              "sub-folders, or a y array), got "
                              f"{data.num_classes or 'no'} class{'es' if data.num_classes != 1 else ''}")
        self.num_labels = data.num_classes
        super().__init__(config, data)

    def one_hot(self, y: Tensor) -> Tensor:
        return F.one_hot(y.long(), self.num_labels).float()

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.G(torch.cat([z, self.one_hot(y).to(z.dtype)], 1))

    def critic(self, x: Tensor, y: Tensor | None = None, eager: bool = False) -> Tensor:
        planes = self.one_hot(y).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return super().critic(torch.cat([x, planes], 1), eager=eager)
