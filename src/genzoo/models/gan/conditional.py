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
from genzoo.models.base import DataInfo, SampleOption
from genzoo.models.gan.wgan_gp import PRESETS, WGANGP, WGANGPConfig
from genzoo.registry import register


@dataclass
class CGANConfig(WGANGPConfig):
    pass


@register("cgan", config=CGANConfig, taxonomy="implicit", modality="image",
          summary="conditional WGAN-GP: one-hot label into G's code and D's channels",
          showcase="genzoo.viz.gan:showcase")
class ConditionalGAN(WGANGP):
    presets = PRESETS
    sample_options = (
        SampleOption("label", int, None, "class of every sample, a name or an index (default: "
                     "cycle through the classes)", kind="label"),)

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

    def labels(self, batch: dict) -> Tensor:
        if "y" not in batch:
            raise GenzooError("cgan: the batch has no labels 'y'")
        return batch["y"]

    def label_tensor(self, n: int, label: int | Tensor | None) -> Tensor:
        """Class indices for n samples: ``label`` for all, per item, or cycling when None."""
        k = self.num_labels
        if label is None:
            return torch.arange(n, device=self.device) % k
        y = torch.as_tensor(label, device=self.device).long()
        if y.dim() == 0:
            y = y.expand(n)
        if len(y) != n or y.min() < 0 or y.max() >= k:
            raise GenzooError(f"cgan: label {label if y.numel() == 1 else 'tensor'} is not "
                              f"{n} class indices in 0..{k - 1}")
        return y

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               label: int | Tensor | None = None) -> Tensor:
        """n images of class ``label`` (an index; None cycles through the classes)."""
        y = self.label_tensor(n, label)
        return self.to_images(self.generate(self.prior(n, generator), y))

    @torch.no_grad()
    def class_grid(self, columns: int, generator: torch.Generator | None = None) -> Tensor:
        """One row per class, the same ``columns`` codes z in every row: (K * columns, C, H, W).

        Down a column only the label changes, so what stays (pose, thickness, colour) is what
        z encodes, and what changes is what the label does."""
        z = self.prior(columns, generator).repeat(self.num_labels, 1)
        y = torch.arange(self.num_labels, device=self.device).repeat_interleave(columns)
        return self.to_images(self.generate(z, y))
