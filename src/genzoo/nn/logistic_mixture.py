"""The discretised mixture of logistics (Salimans, Karpathy, Chen & Kingma 2017, PixelCNN++).

A sub-pixel value v in 0..255 is put on the grid x = 2 v / 255 - 1 in [-1, 1]; its probability
is the mass a continuous mixture of logistics puts on its bin [x - 1/255, x + 1/255], the two
end bins stretching to -inf and +inf so that the 256 probabilities sum to exactly 1:

    P(x) = sum_k pi_k [sigma((x + 1/255 - mu_k) / s_k) - sigma((x - 1/255 - mu_k) / s_k)].

For colour, the channels of a pixel depend on each other linearly through the means:
mu_G = mu_G' + alpha x_R, mu_B = mu_B' + beta x_R + gamma x_G (coefficients in (-1, 1) by tanh),
and one mixture component k is shared by the three channels. The network outputs, per pixel,
M mixture logits, then M means, M log-scales per channel, then M coefficients per channel
pair: M (1 + 2C + C(C - 1)/2) numbers (3M for grey, 10M for RGB).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LEVELS = 256
MIN_LOG_SCALE = -7.0                # as in the paper: s >= e^-7, far below a bin's width


def num_params(channels: int, mixtures: int) -> int:
    """Numbers per pixel the network must output for ``channels`` colours, M = ``mixtures``."""
    return mixtures * (1 + 2 * channels + channels * (channels - 1) // 2)


def to_grid(x01: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] stored as v/255 -> the grid 2 v / 255 - 1 (exactly the same values)."""
    return x01 * 2 - 1


def split_params(params: torch.Tensor, channels: int, mixtures: int):
    """(N, P, H, W) -> logit_pi (N, M, H, W), mu, log_s (N, C, M, H, W), coeffs (N, C(C-1)/2,
    M, H, W)."""
    n, _, h, w = params.shape
    C, M = channels, mixtures
    logit_pi, mu, log_s, coeffs = params.split([M, C * M, C * M, C * (C - 1) // 2 * M], 1)
    mu = mu.reshape(n, C, M, h, w)
    log_s = log_s.reshape(n, C, M, h, w).clamp(min=MIN_LOG_SCALE)
    coeffs = torch.tanh(coeffs.reshape(n, C * (C - 1) // 2, M, h, w))
    return logit_pi, mu, log_s, coeffs


def conditioned_means(mu: torch.Tensor, coeffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """mu_c + sum_{c' < c} coeff_{c,c'} x_c' for each channel c; x (N, C, H, W) on the grid."""
    C = mu.shape[1]
    means, pair = [], 0
    for c in range(C):
        m = mu[:, c]
        for prev in range(c):
            m = m + coeffs[:, pair] * x[:, prev, None]
            pair += 1
        means.append(m)
    return torch.stack(means, 1)


def discretized_logistic_log_prob(x: torch.Tensor, mu: torch.Tensor,
                                  log_s: torch.Tensor) -> torch.Tensor:
    """log P(x) of one logistic(mu, s) discretised on the 256-level grid, elementwise.

    sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - e^(b - a)), so the log of a bin's mass is
    computed in a stable way everywhere, including deep in the tails.
    """
    half = 1.0 / (LEVELS - 1)
    inv_s = torch.exp(-log_s)
    a = (x - mu + half) * inv_s          # upper edge of the bin
    b = (x - mu - half) * inv_s          # lower edge
    inner = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))
    lowest = F.logsigmoid(a)             # x = -1: all the mass below the upper edge
    highest = F.logsigmoid(-b)           # x = +1: all the mass above the lower edge
    return torch.where(x < -1 + half, lowest, torch.where(x > 1 - half, highest, inner))


def log_prob(params: torch.Tensor, x: torch.Tensor, mixtures: int) -> torch.Tensor:
    """log p(x) per pixel (N, H, W), in nats, of images x (N, C, H, W) on the grid."""
    C = x.shape[1]
    logit_pi, mu, log_s, coeffs = split_params(params.float(), C, mixtures)
    means = conditioned_means(mu, coeffs, x)
    per_channel = discretized_logistic_log_prob(x[:, :, None], means, log_s)   # (N,C,M,H,W)
    joint = per_channel.sum(1) + F.log_softmax(logit_pi, 1)                   # (N,M,H,W)
    return torch.logsumexp(joint, 1)


def sample(params: torch.Tensor, channels: int, mixtures: int, generator=None,
           temperature: float = 1.0) -> torch.Tensor:
    """One draw per pixel, (N, C, H, W) on the grid. A component k ~ softmax(logit_pi / T),
    then channel by channel y = mu + T s log(u / (1 - u)), rounded to the nearest level and
    clipped to [-1, 1]: rounding a continuous logistic draw gives exactly the discretised
    distribution (T = 1)."""
    logit_pi, mu, log_s, coeffs = split_params(params.float(), channels, mixtures)
    n, M, h, w = logit_pi.shape
    probs = F.softmax(logit_pi / temperature, 1).permute(0, 2, 3, 1).reshape(-1, M)
    k = torch.multinomial(probs, 1, generator=generator).view(n, 1, 1, h, w)
    pick = lambda t: t.gather(2, k.expand(n, t.shape[1], 1, h, w))[:, :, 0]   # noqa: E731
    mu, log_s, coeffs = pick(mu), pick(log_s), pick(coeffs)
    x = torch.zeros(n, channels, h, w, device=params.device)
    pair = 0
    for c in range(channels):
        m = mu[:, c]
        for prev in range(c):
            m = m + coeffs[:, pair] * x[:, prev]
            pair += 1
        u = torch.rand(m.shape, generator=generator, device=m.device).clamp(1e-5, 1 - 1e-5)
        y = m + temperature * torch.exp(log_s[:, c]) * (torch.log(u) - torch.log1p(-u))
        x[:, c] = torch.round((y.clamp(-1, 1) + 1) * (LEVELS - 1) / 2) * 2 / (LEVELS - 1) - 1
    return x
