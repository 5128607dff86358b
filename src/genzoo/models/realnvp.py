"""RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP").

A normalizing flow: an invertible map f from data x to a latent z with a standard normal
prior, built from affine coupling layers whose Jacobian log-determinant is a cheap sum, so the
likelihood is exact: log p(x) = log N(f(x); 0, I) + log|det df/dx|. Sampling runs the flow
backwards, x = g(z) = f^-1(z) with z ~ N(0, I).

One family serves two kinds of data, chosen by the data's modality:
- points (N, D), e.g. two moons: standardised (mean and std of the first batch, log-det
  counted), then couplings with alternating masks whose scale net ends in tanh and whose
  translation net is linear (Foster, "Generative Deep Learning", ch. 6); reports the held-out
  negative log-likelihood in nats (val/nll).
- images (C, H, W): the paper's multiscale architecture. Pixels are dequantised, x = (k + u)/256,
  and mapped to logit space, y = logit(alpha + (1 - 2 alpha) x), whose log-det is counted;
  each scale applies 3 checkerboard couplings, squeezes (C, H, W) -> (4C, H/2, W/2), applies 3
  channel couplings and factors out half of the channels as latents; the last scale applies 4
  checkerboard couplings. Reports held-out bits per dimension (val/bpd).
Left out of the paper's recipe: batch normalisation (as a flow layer and in the conditioners)
and weight normalisation; instead each conditioner's last layer starts at zero, so every
coupling starts as the identity and training starts from log N(f(x)) of the plain transform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Likelihood, Objective, SampleOption
from genzoo.nn.coupling import (AffineCoupling, ConvScaleTranslate, FlowSequence,
                                MLPScaleTranslate, alternating_mask, channel_mask,
                                checkerboard_mask, squeeze, unsqueeze)
from genzoo.nn.likelihood import bits_per_dim, dequantize
from genzoo.registry import register


@dataclass
class RealNVPConfig:
    # points (D-dimensional vectors)
    coupling_layers: int = 6        # affine couplings, masks alternating between them
    hidden: int = 256               # units per hidden layer of the s and t MLPs
    depth: int = 4                  # hidden layers per MLP
    # images
    scales: int = 2                 # levels of the multiscale architecture (squeezes = scales - 1)
    features: int = 32              # channels of the residual conditioner nets
    res_blocks: int = 4             # residual blocks per conditioner
    alpha: float = 0.05             # logit transform margin: logit(alpha + (1 - 2 alpha) x)
    # optimisation (Adam; the paper's L2 of 5e-5 on the weights)
    lr: float = 1e-3
    weight_decay: float = 5e-5

    def validate(self):
        if self.coupling_layers < 2:
            raise ValueError(f"coupling_layers must be >= 2, got {self.coupling_layers}")
        if self.hidden < 1 or self.depth < 1 or self.features < 1 or self.res_blocks < 0:
            raise ValueError("hidden, depth and features must be >= 1, res_blocks >= 0")
        if self.scales < 1:
            raise ValueError(f"scales must be >= 1, got {self.scales}")
        if not 0 <= self.alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {self.alpha}")


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) per example, summed over all dimensions."""
    return (-0.5 * (z.pow(2) + math.log(2 * math.pi))).flatten(1).sum(1)


class Scale(nn.Module):
    """One level of the multiscale flow on (C, H, W); the output keeps the input's layout
    (factored-out latents are unsqueezed back into place), so z can be drawn as an image."""

    def __init__(self, c: int, h: int, w: int, cfg: RealNVPConfig, levels: int):
        super().__init__()
        st = lambda ch: ConvScaleTranslate(ch, cfg.features, cfg.res_blocks)  # noqa: E731
        last = levels == 1
        self.checker = FlowSequence([AffineCoupling(checkerboard_mask(h, w, i % 2), st(c))
                                     for i in range(4 if last else 3)])
        self.channel = None if last else FlowSequence(
            [AffineCoupling(channel_mask(4 * c, i % 2), st(4 * c)) for i in range(3)])
        self.next = None if last else Scale(2 * c, h // 2, w // 2, cfg, levels - 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, logdet = self.checker(x)
        if self.next is None:
            return x, logdet
        x, ld = self.channel(squeeze(x))
        z, h = x.chunk(2, dim=1)            # z is factored out; h goes on to the next scale
        h, ld_next = self.next(h)
        return unsqueeze(torch.cat([z, h], 1)), logdet + ld + ld_next

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.next is None:
            return self.checker.inverse(y)
        z, h = squeeze(y).chunk(2, dim=1)
        h, ld_next = self.next.inverse(h)
        x, ld = self.channel.inverse(torch.cat([z, h], 1))
        x, logdet = self.checker.inverse(unsqueeze(x))
        return x, logdet + ld + ld_next


class Standardize(nn.Module):
    """Points: x -> (x - mu) / sigma, log-det -sum log sigma. mu and sigma are set from the first
    training batch (the data-dependent initialisation of Glow's actnorm), so that a .csv in any
    units meets couplings made for unit scale; samples come back in data units."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sigma", torch.ones(dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def initialise(self, x: Tensor) -> None:
        if not self.initialised and len(x) > 1:
            self.mu.copy_(x.mean(0))
            self.sigma.copy_(x.std(0).clamp_min(1e-6))
            self.initialised.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = -torch.log(self.sigma).sum().expand(x.shape[0])
        return (x - self.mu) / self.sigma, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = torch.log(self.sigma).sum().expand(y.shape[0])
        return y * self.sigma + self.mu, logdet


class LogitTransform(nn.Module):
    """x in [0, 1] -> y = logit(alpha + (1 - 2 alpha) x), and its log-det."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        logdet = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, logdet.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(y)
        x = (p - self.alpha) / (1 - 2 * self.alpha)
        logdet = torch.log(p) + torch.log1p(-p) - math.log(1 - 2 * self.alpha)
        return x, logdet.flatten(1).sum(1)


PRESETS = {
    # Image conditioners an eighth of the default's cost, for CPU runs of minutes.
    "small": dict(features=16, res_blocks=2),
    # The paper's CIFAR-10 conditioners: 8 residual blocks of 64 feature maps.
    "paper_cifar": dict(features=64, res_blocks=8),
    # A few-millisecond flow (points or images) for the contract test and pipeline smoke runs.
    "tiny": dict(coupling_layers=2, hidden=16, depth=1, scales=2, features=8, res_blocks=1),
}


@register("realnvp", config=RealNVPConfig, taxonomy="explicit-tractable", modality="points/image",
          summary="RealNVP flow: affine couplings, exact log-likelihood (2-d points or multiscale images)",
          showcase="genzoo.viz.flow:showcase")
class RealNVP(Family):
    train_defaults = {"batch_size": 64, "steps": 5000, "eval_every": 250}
    presets = PRESETS
    sample_options = (
        SampleOption("temperature", float, 1.0, "scales the prior's standard deviation (< 1: "
                     "more typical samples)"),)

    def __init__(self, config: RealNVPConfig, data: DataInfo):
        super().__init__(config, data)
        shape = tuple(data.shape)
        self.dims = math.prod(shape)
        if data.modality == "points":
            if len(shape) != 1 or shape[0] < 2:
                raise GenzooError(f"realnvp: points must be vectors of 2 or more numbers, got shape {shape}")
            self.pre = Standardize(shape[0])
            self.flow = FlowSequence([
                AffineCoupling(alternating_mask(shape[0], i % 2),
                               MLPScaleTranslate(shape[0], config.hidden, config.depth))
                for i in range(config.coupling_layers)])
        elif data.modality == "image":
            c, h, w = shape
            k = 2 ** (config.scales - 1)
            if h % k or w % k:
                raise GenzooError(f"realnvp: image size {h}x{w} must be divisible by {k} for "
                                  f"scales={config.scales} (use --image-size, or --set scales=...)")
            self.pre = LogitTransform(config.alpha)
            self.flow = Scale(c, h, w, config, config.scales)
        else:
            raise GenzooError(f"realnvp: models points or images, not {data.modality!r} data")

    @property
    def is_image(self) -> bool:
        return self.data.modality == "image"

    # -- the flow: f (data -> z) and g = f^-1 ----------------------------------------------
    def f(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) and log|det df/dx| per example (images: x dequantised, in [0, 1])."""
        x, logdet = self.pre(x)
        z, ld = self.flow(x)
        return z, logdet + ld

    def g(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """x = f^-1(z) and log|det dg/dz| per example."""
        x, logdet = self.flow.inverse(z)
        x, ld = self.pre.inverse(x)
        return x, logdet + ld

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p(x) in nats per example: log N(f(x); 0, I) + log|det df/dx|."""
        z, logdet = self.f(x.float())
        return standard_normal_log_prob(z) + logdet

    # -- training and evaluation -----------------------------------------------------------
    def loss(self, batch: dict) -> dict:
        x = batch["x"]
        if self.is_image:
            bpd = bits_per_dim(self.log_prob(dequantize(x)), self.dims).mean()
            return {"loss": bpd, "bpd": bpd}
        if self.training:
            self.pre.initialise(x)
        nll = -self.log_prob(x).mean()
        return {"loss": nll, "nll": nll}

    def objectives(self):
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr,
                          weight_decay=self.config.weight_decay)]

    def evaluate(self, batch: dict) -> dict:
        return self.loss(batch)     # held-out bpd (images) or NLL in nats (points)

    def likelihood(self, held_out):
        """Images: bits/dim of the density of dequantised 8-bit images, a bound on the discrete
        likelihood (Theis et al. 2016); points: the exact NLL in nats per point."""
        if self.is_image:
            return Likelihood(held_out["bpd"], "bits/dim", 256, exact=False)
        return Likelihood(held_out["nll"], "nats", 0, exact=True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """x = g(z), z ~ N(0, temperature^2 I); images clipped to [0, 1]."""
        z = temperature * torch.randn((n, *self.data.shape), generator=generator,
                                      device=self.device)
        x, _ = self.g(z)
        return x.clamp(0, 1) if self.is_image else x
