"""The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022, sec. 3 and app. G).

Stage one of a latent diffusion model: an encoder maps an image x (H x W) to a diagonal
Gaussian q(z|x) = N(mu, sigma^2) over a latent map z of z_channels x H/f x W/f, f = 4 or 8;
a decoder maps z back. The loss is the per-image L1 (or L2) reconstruction error plus a very
small KL term, kl_weight * KL(q(z|x) || N(0, I)) with kl_weight = 1e-6: enough to keep the
latent space from drifting to arbitrary scales, too little to blur the images (the paper's
"KL-reg."). The diffusion model then works on z, a 16 to 64 times smaller space.

The latent scale factor: a diffusion model expects data of unit variance, so stage two works
on z * scale, with scale = 1 / std(z) (the paper measures it on a first batch). Here the mean
and second moment of the training batches' posterior means are kept as running averages
(the plain mean of the first 10 batches, then momentum 0.1, like batch norm's statistics), and :meth:`derive` hands on the posterior means
times 1 / std (the paper's second stage draws z from q(z|x) each step instead; with the tiny
KL weight the two differ by little once trained). Not carried over: the perceptual (LPIPS) and patch-GAN losses the paper adds for
sharpness; attention in the bottleneck.

Residual blocks are DDPM's (nn/residual.py); each level but the last halves the side with a
stride-2 convolution, and the decoder doubles it with nearest up-sampling and a convolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.nn.residual import ResidualBlock, group_norm
from genzoo.registry import register


@dataclass
class KLAutoencoderConfig:
    widths: tuple[int, ...] = (32, 64, 128)   # channels per level (the paper: 128, 256, 512)
    blocks: int = 1                           # residual blocks per level
    z_channels: int = 4                       # channels of the latent map
    kl_weight: float = 1e-6                   # weight of KL(q(z|x) || N(0, I)): the paper's
    loss: str = "l1"                          # reconstruction: l1 | l2 (summed per image)
    image_size: int = 32                      # the recipe's side; data is adapted to it
    lr: float = 3e-4                          # Adam with the paper's betas (0.5, 0.9)
    betas: tuple[float, float] = (0.5, 0.9)

    @property
    def downsample(self) -> int:
        """f: each level but the last halves the side."""
        return 2 ** (len(self.widths) - 1)

    def validate(self):
        if len(self.widths) < 1 or min(self.widths) < 1 or self.blocks < 1 or self.z_channels < 1:
            raise ValueError("widths, blocks and z_channels must be positive")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} must divide by the downsampling "
                             f"{self.downsample} (2^(levels - 1))")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"loss must be l1 or l2, got {self.loss!r}")


PRESETS = {
    "f4": dict(widths=[32, 64, 128]),
    "f8": dict(widths=[32, 64, 128, 128]),
    # A few-millisecond model for the contract test and pipeline smoke runs.
    "tiny": dict(widths=[8, 16], z_channels=2, image_size=8),
}


class Encoder(nn.Module):
    """x (N, C, H, W) in [-1, 1] -> (mu, log_var), each (N, z, H/f, W/f)."""

    def __init__(self, channels: int, widths: tuple[int, ...], blocks: int, z: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1)]
        c = widths[0]
        for i, w in enumerate(widths):
            for _ in range(blocks):
                layers.append(ResidualBlock(c, w))
                c = w
            if i + 1 < len(widths):
                layers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        layers += [ResidualBlock(c, c), group_norm(c), nn.SiLU(), nn.Conv2d(c, 2 * z, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.net(x).chunk(2, dim=1)
        return mu, log_var.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """z (N, z, H/f, W/f) -> x_hat (N, C, H, W) in about [-1, 1]."""

    def __init__(self, channels: int, widths: tuple[int, ...], blocks: int, z: int):
        super().__init__()
        c = widths[-1]
        layers: list[nn.Module] = [nn.Conv2d(z, c, 3, padding=1), ResidualBlock(c, c)]
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(blocks):
                layers.append(ResidualBlock(c, w))
                c = w
            if i > 0:
                layers += [nn.Upsample(scale_factor=2.0, mode="nearest"),
                           nn.Conv2d(c, c, 3, padding=1)]
        layers += [group_norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


@register("kl_autoencoder", config=KLAutoencoderConfig, taxonomy="explicit-approximate",
          modality="image", summary="latent diffusion's first stage: KL-regularised conv "
                                    "autoencoder to a latent map (f = 4 or 8), latents scaled "
                                    "to unit variance", showcase="genzoo.viz.multimodal:kl_showcase")
class KLAutoencoder(Family):
    train_defaults = {"batch_size": 64, "steps": 5000, "sample_every": 1000, "sample_n": 16,
                      "eval_every": 250, "checkpoint_every": 1000}
    presets = PRESETS
    derived_modality = "latent"

    def __init__(self, config: KLAutoencoderConfig, data: DataInfo):
        super().__init__(config, data)
        c = config
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"kl_autoencoder: needs images (C, H, W), got {data.modality} "
                              f"{tuple(data.shape)}")
        channels, h, w = data.shape
        if h % c.downsample or w % c.downsample:
            raise GenzooError(f"kl_autoencoder: image side {h}x{w} must divide by the "
                              f"downsampling {c.downsample}")
        self.encoder = Encoder(channels, tuple(c.widths), c.blocks, c.z_channels)
        self.decoder = Decoder(channels, tuple(c.widths), c.blocks, c.z_channels)
        # running moments of the latents, for the scale factor (see the module docstring)
        self.register_buffer("z_mean", torch.zeros(()))
        self.register_buffer("z_sq", torch.ones(()))
        self.register_buffer("z_seen", torch.zeros((), dtype=torch.long))

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.config.downsample
        return (self.config.z_channels, self.data.shape[1] // f, self.data.shape[2] // f)

    @property
    def scale(self) -> Tensor:
        """1 / std(z), from the running moments."""
        return (self.z_sq - self.z_mean ** 2).clamp(min=1e-8).rsqrt()

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [0, 1] -> (mu, log_var) of q(z|x)."""
        return self.encoder(x * 2 - 1)

    def decode(self, z: Tensor) -> Tensor:
        """Latents (unscaled) -> images in [0, 1]."""
        return ((self.decoder(z).float() + 1) / 2).clamp(0, 1)

    def loss(self, batch):
        x = batch["x"] * 2 - 1
        mu, log_var = self.encoder(x)
        z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
        if self.training:       # of the posterior means: what derive() hands on
            with torch.no_grad():     # an average over the first 10 batches, then momentum 0.1
                w = max(0.1, 1.0 / float(self.z_seen + 1))
                self.z_mean.lerp_(mu.float().mean(), w)
                self.z_sq.lerp_(mu.float().pow(2).mean(), w)
                self.z_seen.add_(1)
        x_hat = self.decoder(z).float()
        err = (x_hat - x).abs() if self.config.loss == "l1" else (x_hat - x).pow(2)
        rec = err.flatten(1).sum(1).mean()
        mu, log_var = mu.float(), log_var.float()
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).flatten(1).sum(1).mean()
        return {"loss": rec + self.config.kl_weight * kl, "kl": kl,
                "mae": (x_hat - x).abs().mean() / 2}           # per pixel, on the [0, 1] scale

    def objectives(self):
        return [Objective("autoencoder", self.loss, list(self.parameters()), lr=self.config.lr,
                          betas=tuple(self.config.betas))]

    # -- what the next stage stands on ----------------------------------------------------
    @torch.no_grad()
    def derive(self, batch):
        """Images -> the posterior means scaled to unit variance; other fields pass through."""
        x = batch["x"]
        if tuple(x.shape[1:]) != tuple(self.data.shape):
            raise GenzooError(f"kl_autoencoder: the data's images are {tuple(x.shape[1:])}, but "
                              f"this first stage was trained on {tuple(self.data.shape)} (set "
                              f"data.image_size={self.data.shape[1]} and data.channels="
                              f"{self.data.shape[0]})")
        mu, _ = self.encode(x)
        out = {k: v for k, v in batch.items() if k not in ("x", "y")}
        return {"x": (mu.float() * self.scale), **out}

    def derived_meta(self) -> dict:
        return {"latent_scale": float(self.scale), "downsample": self.config.downsample,
                "image_shape": list(self.data.shape)}

    def decode_latents(self, z: Tensor) -> Tensor:
        """Scaled latents (what derive() gave) -> images in [0, 1]."""
        return self.decode(z / self.scale)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n, generator=None):
        """Unit Gaussian latents (after the scale) decoded: not a generative model on its own
        (the KL weight is tiny), but what the latent space looks like where stage two starts."""
        z = torch.randn(n, *self.latent_shape, generator=generator, device=self.device)
        return self.decode_latents(z + self.z_mean * self.scale)
