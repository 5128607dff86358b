"""ProGAN (Karras, Aila, Laine & Lehtinen 2018): progressive growing of GANs.

Training starts at 4x4 and adds a resolution at a time up to the data's size: the networks
first learn the large-scale structure and then ever finer detail, each stage an easier problem
than the whole. A new resolution is faded in over a number of *images shown* (the schedule
counts real images, not steps, so batch size does not change it): the new layers' output is
blended with the upsampled output of the level before by alpha, 0 -> 1 (the networks are in
genzoo.nn.progressive), and the reals shown to D are blended the same way. Minibatch standard
deviation, an equalised learning rate and pixel-wise feature normalisation keep the game
stable without batch norm. The loss is WGAN-GP's, with a small drift term
eps_drift E[D(x)^2] that keeps the critic's scores near zero; one critic step per generator
step, Adam(0.001, 0, 0.99), an EMA of the generator for sampling.

The count of images shown is a buffer of the model, saved in every checkpoint, so a run
resumed mid fade-in or across a change of resolution continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genzoo.models.base import DataInfo
from genzoo.models.gan.adversarial import AdversarialFamily
from genzoo.nn.gan import gradient_penalty, halvings
from genzoo.nn.progressive import (ProgressiveDiscriminator, ProgressiveGenerator, downsample,
                                   schedule, upsample)
from genzoo.registry import register


@dataclass
class ProGANConfig:
    image_size: int = 64             # the last resolution: 4 * 2^k
    z_dim: int = 512
    channel_base: int = 16384        # channels at side r: min(channel_max, channel_base / r)
    channel_max: int = 512
    images_per_phase: int = 800_000  # real images shown per fade-in and per stabilisation
    lambda_gp: float = 10.0          # WGAN-GP
    drift: float = 0.001             # eps_drift E[D(x)^2]
    mbstd_group: int = 4
    lr: float = 0.001                # Adam, both players
    beta1: float = 0.0
    beta2: float = 0.99

    def validate(self):
        try:
            halvings(self.image_size)
        except ValueError as e:
            raise ValueError(f"image_size: {e}") from None
        if min(self.z_dim, self.channel_base, self.channel_max, self.images_per_phase,
               self.mbstd_group) < 1:
            raise ValueError("z_dim, channel_base, channel_max, images_per_phase and "
                             "mbstd_group must be >= 1")
        if self.lambda_gp < 0 or self.drift < 0:
            raise ValueError("lambda_gp and drift must be >= 0")


PRESETS = {
    # A small network and a short schedule for CPUs: 32x32, 64 channels, 20k images a phase
    # (4x4 -> 32x32 in 140k images: about 4,400 steps at batch 32).
    "cpu": dict(image_size=32, z_dim=128, channel_base=2048, channel_max=64,
                images_per_phase=20_000, **{"train.batch_size": 32}),
    # A few-millisecond pair for the contract test and pipeline smoke runs: it reaches 8x8 and
    # fades in within its first steps.
    "tiny": dict(image_size=8, z_dim=8, channel_base=32, channel_max=8, images_per_phase=12),
}


@register("progan", config=ProGANConfig, taxonomy="implicit", modality="image",
          summary="progressive growing GAN: 4x4 to full size with fade-in, WGAN-GP + drift, "
                  "equalised lr, pixel norm, minibatch stddev", showcase="genzoo.viz.progan:showcase")
class ProGAN(AdversarialFamily):
    presets = PRESETS
    train_defaults = {"batch_size": 16, "steps": 10000, "ema_decay": 0.999, "sample_every": 250,
                      "log_every": 10, "precision": "auto"}     # bf16 1.9x (advanced_gans.md)
    ema_networks = ("G",)
    sample_options = ()

    def __init__(self, config: ProGANConfig, data: DataInfo):
        super().__init__(config, data)
        c, side, _ = data.shape
        self.G = ProgressiveGenerator(config.z_dim, c, side, config.channel_base,
                                      config.channel_max)
        self.D = ProgressiveDiscriminator(c, side, config.channel_base, config.channel_max,
                                          config.mbstd_group)
        self.register_buffer("shown", torch.zeros((), dtype=torch.int64))   # real images shown

    # -- the schedule ------------------------------------------------------------------------
    @property
    def max_level(self) -> int:
        return self.G.max_level

    def stage(self) -> tuple[int, float]:
        """(level, alpha) now: side 4 * 2^level, alpha < 1 while that level fades in."""
        return schedule(int(self.shown), self.config.images_per_phase, self.max_level)

    def side(self, level: int) -> int:
        return 4 * 2 ** level

    # -- the players at the current stage ----------------------------------------------------
    def real(self, batch: dict) -> Tensor:
        """The reals at the current resolution, in [-1, 1], faded like G's output."""
        level, alpha = self.stage()
        x = batch["x"] * 2 - 1
        x = downsample(x, x.shape[-1] // self.side(level))
        if level > 0 and alpha < 1:
            x = alpha * x + (1 - alpha) * upsample(downsample(x))
        return x

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.G(z, *self.stage())

    def critic(self, x: Tensor, y: Tensor | None = None, eager: bool = False) -> Tensor:
        return (self.D.forward if eager else self.D)(x, *self.stage())

    # -- the game ----------------------------------------------------------------------------
    def critic_loss(self, batch):
        level, alpha = self.stage()
        x = self.real(batch)
        x_tilde = self.fakes(len(x)).detach()
        d_real, d_fake = self.critic(x).float(), self.critic(x_tilde).float()
        gp = gradient_penalty(lambda x_hat: self.critic(x_hat, eager=True), x, x_tilde)
        drift = d_real.square().mean()
        cfg = self.config
        with torch.no_grad():
            self.shown += len(x)                    # the schedule counts the reals D has seen
        return {"loss": d_fake.mean() - d_real.mean() + cfg.lambda_gp * gp + cfg.drift * drift,
                "wasserstein": (d_real.mean() - d_fake.mean()).detach(),
                "gradient_penalty": gp.detach(), "drift": drift.detach(),
                "resolution": x.new_tensor(float(self.side(level))),
                "alpha": x.new_tensor(alpha), **self.diversity(x, x_tilde)}

    def generator_loss(self, batch):
        d_fake = self.critic(self.fakes(len(batch["x"]))).float().mean()
        return {"loss": -d_fake, "d_fake": d_fake.detach()}

    # -- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample_at(self, n: int, level: int, alpha: float = 1.0,
                  generator: torch.Generator | None = None, z: Tensor | None = None) -> Tensor:
        """n images from the generator's level ``level`` (its side 4 * 2^level), enlarged to
        the data's side by repeating pixels; in [0, 1]."""
        z = self.prior(n, generator) if z is None else z
        x = self.G(z, level, alpha)
        return self.to_images(upsample(x, self.data.shape[-1] // x.shape[-1]))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images at the resolution reached so far, enlarged to the data's side."""
        return self.sample_at(n, *self.stage(), generator=generator)
