"""Mixture density networks (Bishop 1994): a network's output read as a mixture of Gaussians.

For each of D output dimensions a layer gives K mixture weights pi_k (a softmax of logits), means
mu_k and standard deviations sigma_k = exp(log_sigma_k), so

    p(y_d | h) = sum_k pi_dk N(y_d; mu_dk, sigma_dk^2),

independently per dimension given h (the world model's M: Ha and Schmidhuber 2018, after Graves
2013). Training minimises -log p with a log-sum-exp over the components. Sampling at a
temperature tau (the paper's knob of uncertainty) divides the logits by tau and scales each
sigma by sqrt(tau): tau < 1 sharpens the choice of component and narrows it, tau -> 0 gives the
most likely component's mean; tau > 1 makes the dream wilder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class Mixture:
    """Per-dimension Gaussian mixtures: log_pi, mu, log_sigma each (..., D, K)."""
    log_pi: Tensor
    mu: Tensor
    log_sigma: Tensor

    def log_prob(self, y: Tensor) -> Tensor:
        """log p(y_d) for y (..., D): (..., D) (sum over the last dim for the joint)."""
        y = y.unsqueeze(-1)
        log_normal = -0.5 * ((y - self.mu) / self.log_sigma.exp()).pow(2) - self.log_sigma \
            - LOG_SQRT_2PI
        return torch.logsumexp(self.log_pi + log_normal, dim=-1)

    def sample(self, tau: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """y (..., D) drawn at temperature ``tau``; tau = 0 gives the top component's mean."""
        if tau <= 0:
            k = self.log_pi.argmax(-1, keepdim=True)
            return self.mu.gather(-1, k).squeeze(-1)
        probs = torch.softmax(self.log_pi / tau, dim=-1)
        K = probs.shape[-1]
        k = torch.multinomial(probs.reshape(-1, K), 1, generator=generator).view(*probs.shape[:-1], 1)
        mu, log_sigma = self.mu.gather(-1, k).squeeze(-1), self.log_sigma.gather(-1, k).squeeze(-1)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + log_sigma.exp() * math.sqrt(tau) * eps


class MixtureDensity(nn.Module):
    """h (..., F) -> a :class:`Mixture` of ``components`` Gaussians for each of ``dim`` outputs."""

    def __init__(self, in_features: int, dim: int, components: int):
        super().__init__()
        self.dim, self.components = dim, components
        self.proj = nn.Linear(in_features, 3 * dim * components)

    def forward(self, h: Tensor) -> Mixture:
        out = self.proj(h).view(*h.shape[:-1], self.dim, 3 * self.components)
        logits, mu, log_sigma = out.split(self.components, dim=-1)
        return Mixture(torch.log_softmax(logits, dim=-1), mu, log_sigma)
