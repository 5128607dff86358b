"""Log-likelihoods of 8-bit data in bits per dimension.

A model with a continuous density p on [0, 1]^D assigns the 8-bit image k (levels 0..255) the
probability of its bin, P(k) = integral of p over [k/256, (k+1)/256)^D. With uniform
dequantisation x = (k + u) / 256, u ~ U[0,1)^D, Jensen gives
    log P(k) >= E_u[log p(x)] - D log 256,
so -log2 p(x)/D + 8 (x dequantised) is an upper bound on the model's bits per dimension
(Theis et al. 2016, "A note on the evaluation of generative models").
"""
from __future__ import annotations

import math

import torch


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images in [0, 1] stored as k/255 -> (k + u)/256 with u ~ U[0, 1)."""
    k = (x * 255).round()
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (k + u) / 256


def bits_per_dim(log_p: torch.Tensor, dims: int, levels: int = 256, continuous: bool = True) -> torch.Tensor:
    """Bits per dimension from log-likelihoods in nats (one per example).

    ``continuous``: ``log_p`` is a density of dequantised data in [0, 1]^D, so each dimension
    pays log(levels) for the bin width; otherwise ``log_p`` is already a discrete log-prob.
    """
    nats = -log_p / dims
    if continuous:
        nats = nats + math.log(levels)
    return nats / math.log(2)
