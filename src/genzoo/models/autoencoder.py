"""Autoencoder (Hinton & Salakhutdinov 2006; the convolutional recipe of Foster's
"Generative Deep Learning", ch. 3).

An encoder compresses an image x to a low-dimensional code z = e(x) and a decoder maps it back,
x_hat = d(z); both are trained together to minimise the reconstruction error, here the binary
cross-entropy between x and x_hat per pixel. The 2-d latent of the classic recipe can be drawn.
An autoencoder has no prior over z, so to generate we decode codes drawn from a Gaussian fitted
to the codes of the training images (running moments, kept like batch norm's statistics).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.nn.conv import ConvDecoder, ConvEncoder
from genzoo.registry import register


@dataclass
class AutoencoderConfig:
    latent_dim: int = 2                     # size of z (2 so that the latent space can be drawn)
    widths: tuple[int, ...] = (32, 64, 128)  # encoder channels; the decoder mirrors them
    activation: str = "relu"                # relu | leaky_relu | silu
    batch_norm: bool = False
    image_size: int = 32                    # the recipe's side; data is adapted to it
    lr: float = 1e-3                        # Adam, betas (0.9, 0.999)

    def validate(self):
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        if self.image_size % 2 ** len(self.widths):
            raise ValueError(f"image_size {self.image_size} must be divisible by "
                             f"2^{len(self.widths)} (one halving per encoder layer)")


class ConvLatentModel(Family):
    """Encoder/decoder pair over images; subclasses choose the head and the loss."""
    train_defaults = {"batch_size": 100, "steps": 3000, "precision": "auto"}
    code_size = 1           # the head outputs code_size * latent_dim numbers
    derived_modality = "latent"

    def __init__(self, config: AutoencoderConfig, data: DataInfo):
        super().__init__(config, data)
        shape = tuple(data.shape)
        if data.modality != "image" or len(shape) != 3:
            raise GenzooError(f"{self.family_name}: needs images (C, H, W), got {data.modality} "
                              f"items of shape {shape}")
        self.encoder = ConvEncoder(shape, list(config.widths), config.activation, config.batch_norm)
        self.head = nn.Linear(self.encoder.out_features, self.code_size * config.latent_dim)
        self.decoder = ConvDecoder(config.latent_dim, shape, self.encoder.feature_shape,
                                   list(reversed(config.widths)), config.activation,
                                   config.batch_norm)

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> one point code each (the posterior mean for a VAE)."""
        raise NotImplementedError

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(code, log-variance): a point code has none (a VAE's Gaussian posterior has one)."""
        return self.encode(x), None

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def derive(self, batch: dict) -> dict:
        """Data for a stage built on this model: each image's code ``x`` (and ``log_var`` where
        the posterior has one). Sequences of frames (N, T, C, H, W), a world model's rollouts,
        are coded frame by frame to (N, T, latent) and their other fields pass through; frames
        of another size are resized to the one this model learnt."""
        x = batch["x"]
        lead = x.shape[:-3]
        frames = x.reshape(-1, *x.shape[-3:])
        if frames.shape[-3] != self.data.shape[0]:
            raise ValueError(f"frames have {frames.shape[-3]} channels, the model "
                             f"{self.data.shape[0]}")
        if tuple(frames.shape[-2:]) != tuple(self.data.shape[1:]):
            frames = F.interpolate(frames, size=tuple(self.data.shape[1:]), mode="bicubic",
                                   antialias=True).clamp(0, 1)
        mu, log_var = self.posterior(frames)
        out = {k: v for k, v in batch.items() if k not in ("x", "y")}
        out["x"] = mu.reshape(*lead, -1)
        if log_var is not None:
            out["log_var"] = log_var.reshape(*lead, -1)
        return out

    def derived_meta(self) -> dict:
        return {"latent_dim": self.config.latent_dim, "frame_shape": list(self.data.shape)}

    def loss(self, batch: dict) -> dict:
        raise NotImplementedError

    def objectives(self):
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr)]


@register("autoencoder", config=AutoencoderConfig, taxonomy="implicit", modality="image",
          summary="conv autoencoder with a 2-d code; samples from a Gaussian fitted to the codes",
          showcase="genzoo.viz.latent:showcase")
class Autoencoder(ConvLatentModel):
    presets = {
        # A few-millisecond model for the contract test and pipeline smoke runs.
        "tiny": dict(widths=[8, 16], latent_dim=2, image_size=8),
    }

    def __init__(self, config: AutoencoderConfig, data: DataInfo):
        super().__init__(config, data)
        self.register_buffer("z_mean", torch.zeros(config.latent_dim))
        self.register_buffer("z_var", torch.ones(config.latent_dim))

    def encode(self, x):
        return self.head(self.encoder(x))

    def loss(self, batch):
        x = batch["x"]
        z = self.encode(x)
        if self.training:       # running moments of the codes (momentum 0.1, as batch norm)
            with torch.no_grad():
                self.z_mean.lerp_(z.mean(0).float(), 0.1)
                self.z_var.lerp_(z.var(0).float(), 0.1)
        bce = F.binary_cross_entropy_with_logits(self.decoder(z), x)
        return {"loss": bce, "bce": bce}

    def prior(self, n, generator=None):
        """Codes from the Gaussian fitted to the training codes (running moments)."""
        eps = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.z_mean + self.z_var.sqrt() * eps

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.decode(self.prior(n, generator))
