"""DCGAN (Radford, Metz & Chintala 2016) playing the GAN game of Goodfellow et al. (2014);
the recipe of Foster's "Generative Deep Learning", ch. 4.

The discriminator D(x) = sigmoid(logit) is a binary classifier trained by cross-entropy to say
1 for real images and 0 for generated ones: it maximises log D(x) + log(1 - D(G(z))). The
generator is trained with the non-saturating loss -log D(G(z)) (same fixed point, strong
gradients early on). Noisy or smoothed targets for D (Salimans et al. 2016) keep it from
becoming too sure of itself, which would starve G of gradient.

``loss=hinge`` plays the hinge game of SAGAN and BigGAN instead: D minimises
E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], G minimises -E[D(G(z))]. The ``sagan`` preset
puts the whole toolkit together (Zhang et al. 2019, with BigGAN's additions): spectral
normalisation in both networks, self-attention, the hinge loss, two time-scales
(D 4e-4, G 1e-4, Adam betas (0, 0.9)), class-conditional batch norm and a projection
discriminator when the data is labelled, orthogonal regularisation; sample with --truncation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genzoo.models.gan.adversarial import GANConfig, ImageGAN
from genzoo.nn.gan import hinge_losses
from genzoo.registry import register


@dataclass
class DCGANConfig(GANConfig):
    k: int = 1                       # discriminator updates per generator update (Goodfellow's k)
    label_noise: float = 0.1         # real targets ~ U(1 - noise, 1), fake ~ U(0, noise); 0 = off
    label_smoothing: float = 0.0     # one-sided: real targets scaled by (1 - smoothing)
    loss: str = "bce"                # bce (the targets above) | hinge (no targets: they are unused)

    def validate(self):
        super().validate()
        if self.loss not in ("bce", "hinge"):
            raise ValueError(f"loss must be bce or hinge, got {self.loss!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 0 <= self.label_noise < 0.5 or not 0 <= self.label_smoothing < 0.5:
            raise ValueError("label_noise and label_smoothing must be in [0, 0.5)")


PRESETS = {
    # Radford et al.'s discriminator: no dropout, hard 0/1 targets.
    "paper": dict(d_dropout=0.0, label_noise=0.0),
    # The 32x32 variant for CIFAR-10-sized data (one layer fewer on each side).
    "small": dict(image_size=32),
    # SAGAN with BigGAN's additions, at 32x32 (attention on the 16x16 features).
    "sagan": dict(image_size=32, loss="hinge", spectral_norm="both", attention_at=16,
                  conditional="auto", ortho_reg=1e-4, d_batch_norm=False, d_dropout=0.0,
                  lr=1e-4, d_lr=4e-4, beta1=0.0, beta2=0.9, label_noise=0.0),
    # A few-millisecond pair for the contract test and pipeline smoke runs (conditioned on the
    # labels where the data has them, so that --label is exercised).
    "tiny": dict(image_size=8, z_dim=8, g_width=8, d_width=8, conditional="auto"),
}


@register("dcgan", config=DCGANConfig, taxonomy="implicit", modality="image",
          summary="deep convolutional GAN: BCE discriminator vs non-saturating generator",
          showcase="genzoo.viz.gan:showcase")
class DCGAN(ImageGAN):
    presets = PRESETS

    @property
    def critic_steps(self) -> int:
        return self.config.k

    def targets(self, n: int, real: bool) -> torch.Tensor:
        """D's targets: 1 for real, 0 for fake, made noisy or smoothed as configured."""
        cfg = self.config
        t = torch.full((n,), 1.0 if real else 0.0, device=self.device)
        if cfg.label_noise > 0:
            u = torch.rand(n, device=self.device) * cfg.label_noise
            t = t - u if real else t + u
        if real and cfg.label_smoothing > 0:
            t = t * (1 - cfg.label_smoothing)
        return t

    def readout(self, score):
        """D(x) = sigmoid(logit): the probability that x is real; a hinge critic's score as is."""
        if self.config.loss == "hinge":
            return score.detach().float()
        return torch.sigmoid(score.detach().float())

    def critic_loss(self, batch):
        x, y = self.real(batch), self.labels(batch)
        x_tilde = self.fakes(len(x), y)
        logit_real = self.critic(x, y).float()
        logit_fake = self.critic(x_tilde.detach(), y).float()
        if self.config.loss == "hinge":
            loss_real, loss_fake = hinge_losses(logit_real, logit_fake)
        else:
            loss_real = F.binary_cross_entropy_with_logits(logit_real, self.targets(len(x), True))
            loss_fake = F.binary_cross_entropy_with_logits(logit_fake, self.targets(len(x), False))
        return {"loss": loss_real + loss_fake, "loss_real": loss_real, "loss_fake": loss_fake,
                "d_real": self.readout(logit_real).mean(),      # D(x)
                "d_fake": self.readout(logit_fake).mean(),      # D(G(z))
                **self.diversity(x, x_tilde)}

    def generator_loss(self, batch):
        y = self.labels(batch)
        logit = self.critic(self.fakes(len(batch["x"]), y), y).float()
        if self.config.loss == "hinge":
            loss = -logit.mean()
        else:
            loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))  # -log D(G(z))
        return {"loss": loss, "d_fake": self.readout(logit).mean()}
