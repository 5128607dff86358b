"""Vector quantisation (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete
Representation Learning", the VQ-VAE).

The encoder's output z_e(x) is a map of D-dimensional vectors; each vector is replaced by the
nearest of K codebook vectors e_1..e_K, k = argmin_j ||z_e - e_j||^2 and z_q = e_k. The argmin
has no gradient, so the straight-through estimator copies the decoder's gradient at z_q onto
z_e (z_q = z_e + sg[e_k - z_e]: the forward value is e_k, the backward is the identity). Two
more terms train what the reconstruction cannot reach:

    codebook loss     ||sg[z_e] - e||^2          moves the codes towards the encoder outputs
    commitment loss   beta ||z_e - sg[e]||^2     keeps the encoder near its codes (beta = 0.25)

EMA codebook (the paper's appendix A.1): instead of the codebook loss, each code becomes the
running mean of the encoder outputs assigned to it. With n_i the outputs assigned to code i in a
batch and s_i their sum, N_i <- g N_i + (1 - g) n_i, m_i <- g m_i + (1 - g) s_i, e_i = m_i / N_i,
g = 0.99. The counts are Laplace-smoothed, N_i' = (N_i + eps) / (N + K eps) * N with N = sum N_i,
so a code without assignments never divides by zero (as the authors' Sonnet code does).

Dead codes: a code the encoder stops choosing gets no gradient and no EMA update, so it never
returns, and a codebook can collapse to a handful of codes. N_i (tracked in both modes, with the
same decay g) is the code's expected assignments per batch; a code whose N_i falls below
``restart_threshold`` is moved onto an encoder output of the batch drawn at random (the codebook
reset of Dhariwal et al. 2020, Jukebox), from the torch RNG, so training stays deterministic.

The perplexity exp(-sum_i p_i log p_i) of a batch's code frequencies p counts the codes in
effective use: K when all are used equally, 1 when the codebook has collapsed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Quantized:
    """What the quantiser returns for a map z_e (N, D, h, w)."""
    z_q: Tensor                 # (N, D, h, w): e_k forward, the identity backward (to z_e)
    codes: Tensor               # (N, h, w) int64: k at every position
    codebook_loss: Tensor       # ||sg[z_e] - e||^2 (zero with an EMA codebook)
    commitment_loss: Tensor     # beta ||z_e - sg[e]||^2
    perplexity: Tensor          # exp(H) of this batch's code frequencies
    usage: Tensor               # fraction of the K codes used in this batch
    restarts: Tensor            # dead codes moved onto encoder outputs at this call

    @property
    def loss(self) -> Tensor:
        return self.codebook_loss + self.commitment_loss

    def logs(self) -> dict[str, Tensor]:
        return {"codebook": self.codebook_loss, "commitment": self.commitment_loss,
                "perplexity": self.perplexity, "usage": self.usage, "restarts": self.restarts}


def perplexity(counts: Tensor) -> Tensor:
    """exp of the entropy (nats) of the frequencies ``counts`` (K,), with 0 log 0 = 0."""
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-torch.special.xlogy(p, p).sum())


class VectorQuantizer(nn.Module):
    """z_e (N, D, h, w) -> :class:`Quantized`. In training mode it also updates the EMA codebook
    (if ``ema``), the usage counts and restarts dead codes; in eval mode it changes nothing."""

    def __init__(self, K: int, D: int, beta: float = 0.25, ema: bool = False,
                 decay: float = 0.99, eps: float = 1e-5, restart_threshold: float = 1.0):
        super().__init__()
        if K < 2 or D < 1:
            raise ValueError(f"the codebook needs K >= 2 codes of D >= 1 dimensions, got {K}, {D}")
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.K, self.D, self.beta, self.ema = K, D, beta, ema
        self.decay, self.eps, self.restart_threshold = decay, eps, restart_threshold
        e = torch.empty(K, D).uniform_(-1 / K, 1 / K)
        if ema:                 # moved by the running means, not by gradients
            self.register_buffer("codebook", e)
            self.register_buffer("cluster_sum", e.clone())        # m_i
        else:
            self.codebook = nn.Parameter(e)
        # N_i: assignments per batch (an EMA); starts at 1, so m_i / N_i is the initial codebook
        self.register_buffer("cluster_size", torch.ones(K))

    @torch.no_grad()
    def set_codebook(self, e: Tensor) -> None:
        """Replace the codes (K, D); the EMA sums follow, so that m_i / N_i = e_i."""
        self.codebook.copy_(e)
        if self.ema:
            self.cluster_sum.copy_(e * self.cluster_size[:, None])

    def distances(self, flat: Tensor) -> Tensor:
        """||z - e_j||^2 for rows z of ``flat`` (M, D) and every code: (M, K), in float32."""
        e = self.codebook.float()
        return (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)).clamp_min(0)

    def nearest(self, z_e: Tensor, allowed: Tensor | None = None) -> Tensor:
        """The code index at every position of z_e (N, D, h, w): (N, h, w) int64; ``allowed``
        (a boolean mask over the K codes) restricts the choice to those codes."""
        flat = z_e.movedim(1, -1).reshape(-1, self.D).float()
        with torch.autocast(z_e.device.type, enabled=False):
            d = self.distances(flat)
            if allowed is not None:
                d = d.masked_fill(~allowed, float("inf"))
            k = d.argmin(1)
        return k.view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, codes: Tensor) -> Tensor:
        """Code indices (N, h, w) -> their vectors e_k as a map (N, D, h, w)."""
        return F.embedding(codes, self.codebook).movedim(-1, 1)

    def forward(self, z_e: Tensor) -> Quantized:
        with torch.autocast(z_e.device.type, enabled=False):
            z = z_e.movedim(1, -1).float()                      # (N, h, w, D)
            flat = z.reshape(-1, self.D)
            k = self.distances(flat).argmin(1)
            e_k = F.embedding(k, self.codebook.float())          # gradient reaches e only
            if self.ema:
                codebook_loss = flat.new_zeros(())
            else:
                codebook_loss = F.mse_loss(e_k, flat.detach())
            commitment_loss = self.beta * F.mse_loss(flat, e_k.detach())
            z_q = flat + (e_k - flat).detach()                   # straight-through
            counts = torch.bincount(k, minlength=self.K).float()
            restarts = flat.new_zeros(())
            if self.training:
                with torch.no_grad():
                    self.update(flat.detach(), k, counts)
                    restarts = self.restart_dead(flat.detach())
        return Quantized(z_q.view_as(z).movedim(-1, 1), k.view(z.shape[:-1]), codebook_loss,
                         commitment_loss, perplexity(counts), (counts > 0).float().mean(),
                         restarts)

    @torch.no_grad()
    def update(self, flat: Tensor, k: Tensor, counts: Tensor) -> None:
        """One step of the running counts N (both modes) and of the EMA codebook (A.1)."""
        g = self.decay
        self.cluster_size.mul_(g).add_(counts, alpha=1 - g)
        if not self.ema:
            return
        sums = torch.zeros_like(self.cluster_sum).index_add_(0, k, flat)      # s_i
        self.cluster_sum.mul_(g).add_(sums, alpha=1 - g)
        N = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (N + self.K * self.eps) * N
        self.codebook.copy_(self.cluster_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead(self, flat: Tensor) -> Tensor:
        """Move every code with N_i < threshold onto a random row of ``flat``; their counts
        restart at the threshold. Returns how many codes were moved."""
        if self.restart_threshold <= 0:
            return flat.new_zeros(())
        dead = self.cluster_size < self.restart_threshold
        n = int(dead.sum())
        if n:
            pick = torch.randint(len(flat), (n,), device=flat.device)
            new = flat[pick].to(self.codebook.dtype)
            self.codebook.data[dead] = new
            self.cluster_size[dead] = self.restart_threshold
            if self.ema:
                self.cluster_sum[dead] = new * self.restart_threshold
        return flat.new_tensor(float(n))

    def extra_repr(self) -> str:
        return (f"K={self.K}, D={self.D}, beta={self.beta}, ema={self.ema}, "
                f"restart_threshold={self.restart_threshold}")
