"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning").

An encoder maps an image x to a map z_e(x) of D-dimensional vectors (two 4x4 stride-2
convolutions take 32x32 to 8x8); each vector is replaced by its nearest codebook vector e_k
(genzoo.nn.quantize: straight-through gradients, codebook and commitment losses, or an EMA
codebook; dead codes restarted), and a mirrored decoder maps z_q back to an image. The loss is
reconstruction + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2. The prior over the code maps is
uniform while the autoencoder trains; a second stage (``vq_prior``) then fits an
autoregressive prior to the codes of the training images, and sampling it decodes through here.

The paper's CIFAR-10 recipe is the default: encoder and decoder of 256 channels with two
residual blocks ("ReLU, 3x3 conv, ReLU, 1x1 conv") each, Adam at 2e-4, batch 128. The paper
uses K = 512 codes (its ImageNet model) and an 8x8x10 latent field for CIFAR-10; here the latent
is one 8x8 map of D = 64 vectors with K = 512 (as the authors' Sonnet example), so that a prior
sees 64 codes per image. The reconstruction term is the squared error divided by the data's
variance (a Gaussian log-likelihood whose scale follows the data, as in that example), measured
once on the first training batch, so beta = 0.25 weighs the same on any data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective, SampleOption
from genzoo.nn.conv import StridedDecoder, StridedEncoder
from genzoo.nn.quantize import Quantized, VectorQuantizer
from genzoo.registry import register


@dataclass
class VQVAEConfig:
    image_size: int = 32            # the recipe's side; data is adapted to it
    hidden: int = 256               # channels of the strided convolutions and residual stream
    residual_hidden: int = 256      # channels inside a residual block
    residual_blocks: int = 2
    downsamples: int = 2            # stride-2 layers: the code map is image_size / 2^downsamples
    codebook_size: int = 512        # K
    code_dim: int = 64              # D
    beta: float = 0.25              # commitment weight
    ema: bool = False               # EMA codebook (appendix A.1) instead of the codebook loss
    ema_decay: float = 0.99         # gamma of the EMA codebook and of the usage counts
    restart_threshold: float = 1.0  # restart codes used < this many times per batch (EMA); 0 = never
    lr: float = 2e-4                # Adam, betas (0.9, 0.999)

    def validate(self):
        if min(self.hidden, self.residual_hidden, self.code_dim) < 1 or self.residual_blocks < 0:
            raise ValueError("hidden, residual_hidden and code_dim must be >= 1, "
                             "residual_blocks >= 0")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        if self.downsamples < 0 or self.image_size % 2 ** self.downsamples:
            raise ValueError(f"image_size {self.image_size} must be divisible by "
                             f"2^{self.downsamples} (one halving per downsampling layer)")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.beta < 0 or self.restart_threshold < 0:
            raise ValueError("beta and restart_threshold must be >= 0")


PRESETS = {
    # a few-second model for smoke runs and the contract test
    "tiny": dict(image_size=16, hidden=16, residual_hidden=8, residual_blocks=1,
                 codebook_size=32, code_dim=8),
    # the widths, lr and batch of the authors' Sonnet example (128 channels, 32 inside the
    # residual blocks; Adam 3e-4, batch 32): about 5x fewer operations per image than the
    # paper's 256, and 4x more updates per image seen, for CPU budgets
    "small": {"hidden": 128, "residual_hidden": 32, "lr": 3e-4, "train.batch_size": 32},
    # the same with the EMA codebook of the paper's appendix
    "small-ema": {"hidden": 128, "residual_hidden": 32, "lr": 3e-4, "ema": True,
                  "train.batch_size": 32},
}

CODES = ("frequency", "uniform")


@register("vqvae", config=VQVAEConfig, taxonomy="explicit-approximate", modality="image",
          summary="VQ-VAE: discrete code maps, straight-through codebook; prior: vq_prior",
          showcase="genzoo.viz.vq:showcase")
class VQVAE(Family):
    presets = PRESETS
    train_defaults = {"batch_size": 128, "steps": 5000, "eval_every": 500, "sample_every": 1000}
    sample_options = (
        SampleOption("codes", str, "frequency", "draw each code independently, from the "
                     "codebook's usage frequencies in training or uniformly (a learned prior "
                     "over code maps is the vq_prior family)", choices=CODES),)
    derived_modality = "codes"

    def __init__(self, config: VQVAEConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"vqvae: needs images (C, H, W), got {data.modality} {data.shape}")
        C, H, W = data.shape
        n = 2 ** config.downsamples
        if H % n or W % n:
            raise GenzooError(f"vqvae: images of {H}x{W} do not halve {config.downsamples} times "
                              f"(set image_size to a multiple of {n})")
        self.code_shape = (H // n, W // n)
        self.encoder, self.decoder = self.networks(config, C)
        self.quantizer = VectorQuantizer(config.codebook_size, config.code_dim, config.beta,
                                         config.ema, config.ema_decay,
                                         restart_threshold=config.restart_threshold)
        # Var[x] of the data, measured on the first training batch (0 = not yet)
        self.register_buffer("data_variance", torch.zeros(()))

    def networks(self, c: VQVAEConfig, channels: int):
        """(encoder, decoder): images -> (N, D, h, w) -> images. A subclass (VQ-GAN) may build
        others; the decoder should expose ``last_layer``."""
        return (StridedEncoder(channels, c.code_dim, c.hidden, c.downsamples, c.residual_hidden,
                               c.residual_blocks),
                StridedDecoder(c.code_dim, channels, c.hidden, c.downsamples, c.residual_hidden,
                               c.residual_blocks))

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- the autoencoder -----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> z_e (N, D, h, w); the networks see x - 1/2."""
        return self.encoder(x - 0.5)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q (N, D, h, w) -> the reconstruction x_hat, unclamped (the loss sees it raw)."""
        return self.decoder(z_q) + 0.5

    def autoencode(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        q = self.quantizer(self.encode(x))
        return self.decode(q.z_q), q

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> code indices (N, h, w) int64."""
        return self.quantizer.nearest(self.encode(x))

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (N, h, w) -> images in [0, 1]."""
        return self.decode(self.quantizer.lookup(codes)).float().clamp(0, 1)

    # -- training ------------------------------------------------------------------------
    def variance(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.data_variance == 0:
            self.data_variance.fill_(float(x.float().var()))
        return self.data_variance if self.data_variance > 0 else x.float().var()

    def loss(self, batch):
        x = batch["x"]
        x_hat, q = self.autoencode(x)
        mse = F.mse_loss(x_hat.float(), x)
        recon = mse / self.variance(x)
        return {"loss": recon + q.loss, "recon": recon, "recon_mse": mse, **q.logs()}

    def objectives(self):
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr)]

    @torch.no_grad()
    def evaluate(self, batch):
        """Held-out reconstruction error (squared, per pixel; divided by the data variance;
        as PSNR in dB of the clamped images) and the codebook's perplexity on the batch."""
        x = batch["x"]
        x_hat, q = self.autoencode(x)
        mse = F.mse_loss(x_hat.float(), x)
        clamped = F.mse_loss(x_hat.float().clamp(0, 1), x)
        return {"loss": mse / self.variance(x) + q.loss, "recon_mse": mse,
                "recon_nmse": mse / self.variance(x),
                "psnr": 10 * torch.log10(1 / clamped.clamp_min(1e-10)),
                "perplexity": q.perplexity, "usage": q.usage}

    # -- sampling ------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               codes: str = "frequency") -> torch.Tensor:
        """Images decoded from code maps whose codes are drawn independently: from the codes'
        usage in training (each code's running count N_i) or uniformly. Without a learned prior
        these lack the codes' spatial structure (that is the second stage's job)."""
        if codes not in CODES:
            raise GenzooError(f"vqvae: codes must be one of {', '.join(CODES)}, got {codes!r}")
        K = self.config.codebook_size
        p = self.quantizer.cluster_size.float() if codes == "frequency" else None
        if p is None or p.sum() <= 0:
            p = torch.ones(K, device=self.device)
        h, w = self.code_shape
        k = torch.multinomial(p, n * h * w, replacement=True, generator=generator)
        return self.decode_codes(k.view(n, h, w))

    # -- data derived from this run (what a prior trains on) -----------------------------
    def derive(self, batch):
        return {"x": self.encode_codes(batch["x"])}

    def derived_meta(self) -> dict:
        return {"codebook_size": self.config.codebook_size, "code_shape": list(self.code_shape)}
