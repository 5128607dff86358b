"""Variational autoencoder (Kingma & Welling 2014), with the beta weighting of Foster's recipe.

The encoder outputs a Gaussian posterior q(z|x) = N(mu, diag(exp(log_var))); a code is drawn
with the reparameterisation trick z = mu + sigma * eps, eps ~ N(0, I), so gradients flow through
mu and sigma; the decoder gives p(x|z). Training minimises beta * reconstruction + KL(q(z|x) ||
N(0, I)), the reconstruction being a per-pixel mean of BCE or squared error. The ELBO reported
is the unweighted one with a normalised likelihood (continuous Bernoulli for BCE, Gaussian for
MSE), so its bits per dimension can be compared with other families; the importance-weighted
bound of Burda et al. (2016) tightens it with K posterior samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genzoo.models.autoencoder import AutoencoderConfig, ConvLatentModel
from genzoo.models.base import Likelihood
from genzoo.nn.likelihood import bits_per_dim, dequantize
from genzoo.registry import register


@dataclass
class VAEConfig(AutoencoderConfig):
    beta: float = 500.0             # weight of the per-pixel-mean reconstruction term
    reconstruction: str = "bce"     # bce | mse | cb (continuous Bernoulli: BCE + its log-normaliser)
    dequantize: bool = False        # train on (k + u) / 256, as a density model must (see below)
    lr: float = 5e-4                # Adam: the book's VAE (its autoencoder keeps Keras' 1e-3)

    def validate(self):
        super().validate()
        if self.reconstruction not in ("bce", "mse", "cb"):
            raise ValueError(f"reconstruction must be bce, mse or cb, got {self.reconstruction!r}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


PRESETS = {
    # The deeper variant for colour faces: 4 conv layers of 128, batch norm, LeakyReLU, z = 200.
    "celeba": dict(widths=[128, 128, 128, 128], batch_norm=True, activation="leaky_relu",
                   latent_dim=200, beta=2000.0, reconstruction="mse", image_size=64,
                   lr=5e-4),
    # What the same step budget reaches on 32x32 grey images: more room in z, and the loss
    # that is exactly the negative ELBO (a normalised likelihood, beta = D = 32 * 32).
    # Dequantised training: a density fitted to exact pixel values can pile up on them (the
    # zeros of a padded border) and then give the bins around them almost nothing.
    "strong": dict(widths=[32, 64, 128], latent_dim=16, reconstruction="cb", beta=1024.0,
                   dequantize=True, lr=1e-3),
    # V of a world model (Ha & Schmidhuber 2018): 64x64 RGB frames, stride-2 layers of
    # 32/64/128/256 to z = 32, the summed squared error (beta = 64 * 64 * 3) + KL, Adam(1e-4).
    "world-models": dict(widths=[32, 64, 128, 256], latent_dim=32, image_size=64,
                         reconstruction="mse", beta=12288.0, lr=1e-4, **{"train.batch_size": 100}),
    # A few-millisecond model for the contract test and pipeline smoke runs.
    "tiny": dict(widths=[8, 16], latent_dim=2, image_size=8),
}


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, I)) per example, summed over latent dims."""
    return -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(-1)


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) with
    lambda = sigmoid(l): C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) = l / tanh(l / 2)."""
    small = logits.abs() < 1e-3
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = torch.log(safe / torch.tanh(safe / 2))
    return torch.where(small, math.log(2) + logits.pow(2) / 12, exact)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] of the continuous Bernoulli: lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda))
    = sigmoid(l) / tanh(l / 2) - 1 / l, which tends to 1/2 + l/12 as l -> 0."""
    small = logits.abs() < 1e-3
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1 / safe
    return torch.where(small, 0.5 + logits / 12, exact)


@register("vae", config=VAEConfig, taxonomy="explicit-approximate", modality="image",
          summary="variational autoencoder: Gaussian posterior, reparameterisation, ELBO",
          showcase="genzoo.viz.latent:showcase")
class VAE(ConvLatentModel):
    code_size = 2
    presets = PRESETS

    def posterior(self, x):
        """q(z|x) as (mu, log_var)."""
        mu, log_var = self.head(self.encoder(x)).chunk(2, dim=-1)
        return mu, log_var

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        """Codes -> images: the decoder's mean (lambda for BCE/MSE, the CB mean for cb)."""
        logits = self.decoder(z)
        if self.config.reconstruction == "cb":
            return continuous_bernoulli_mean(logits)
        return torch.sigmoid(logits)

    def reparameterize(self, mu, log_var, generator=None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * log_var) * eps

    def reconstruction_error(self, logits, x):
        """Per-example mean over pixels of the training reconstruction loss."""
        if self.config.reconstruction == "mse":
            err = (torch.sigmoid(logits) - x).pow(2)
        else:
            err = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            if self.config.reconstruction == "cb":
                err = err - continuous_bernoulli_log_norm(logits)
        return err.flatten(1).mean(1)

    def loss(self, batch):
        x = batch["x"]
        if self.training and self.config.dequantize:
            x = dequantize(x)
        mu, log_var = self.posterior(x)
        z = self.reparameterize(mu, log_var)
        recon = self.reconstruction_error(self.decoder(z), x).mean()
        kl = kl_standard_normal(mu, log_var).mean()
        return {"loss": self.config.beta * recon + kl, "reconstruction": recon, "kl": kl}

    # -- likelihood --------------------------------------------------------------------------
    def log_likelihood(self, logits, x):
        """log p(x|z) per example, normalised on [0, 1]^D.

        BCE and CB: continuous Bernoulli. MSE: N(x; sigmoid(logits), s^2 I) with the s^2 = D / (2 beta)
        that makes beta * mean squared error its negative log-density up to a constant.
        """
        if self.config.reconstruction != "mse":
            ll = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
            ll = ll + continuous_bernoulli_log_norm(logits)
        else:
            var = x[0].numel() / (2 * self.config.beta)
            ll = -0.5 * ((torch.sigmoid(logits) - x).pow(2) / var + math.log(2 * math.pi * var))
        return ll.flatten(1).sum(1)

    def elbo(self, x, generator=None):
        """ELBO per example in nats: E_q[log p(x|z)] - KL(q || p), one sample of z."""
        mu, log_var = self.posterior(x)
        z = self.reparameterize(mu, log_var, generator)
        return self.log_likelihood(self.decoder(z), x) - kl_standard_normal(mu, log_var)

    def iw_bound(self, x, k: int = 64, generator=None):
        """Importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x) per example, nats."""
        mu, log_var = self.posterior(x)
        terms = []
        for _ in range(k):
            z = self.reparameterize(mu, log_var, generator)
            log_q = (-0.5 * ((z - mu).pow(2) / log_var.exp() + log_var + math.log(2 * math.pi))).sum(-1)
            log_pz = (-0.5 * (z.pow(2) + math.log(2 * math.pi))).sum(-1)
            terms.append(self.log_likelihood(self.decoder(z), x) + log_pz - log_q)
        return torch.logsumexp(torch.stack(terms), 0) - math.log(k)

    def evaluate(self, batch):
        """Held-out: the training loss on the data as training sees it (raw pixels, or
        dequantised when ``dequantize``), and the ELBO in bits/dim, a density over 256 levels,
        on dequantised pixels (k + u) / 256 always."""
        x = batch["x"]
        out = self.loss({"x": dequantize(x) if self.config.dequantize else x})
        x = dequantize(x)
        out["elbo_bpd"] = bits_per_dim(self.elbo(x), x[0].numel()).mean()
        return out

    def likelihood(self, held_out):
        """-ELBO of dequantised 8-bit images in bits/dim: a bound on the negative log-likelihood."""
        return Likelihood(held_out["elbo_bpd"], "bits/dim", 256, exact=False)

    def prior(self, n, generator=None):
        """z ~ p(z) = N(0, I)."""
        return torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.decode(self.prior(n, generator))
