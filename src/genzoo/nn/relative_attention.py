"""Causal self-attention with relative positions (Shaw et al. 2018; Huang et al. 2018, Music
Transformer), with the memory-efficient "skewing".

Each head also learns an embedding E_r of every distance from -(L-1) to 0, and position i's
attention logit for position j gains q_i . E_r[j - i]:

    Attention = softmax((Q K^T + S_rel) / sqrt(D_h)) V,   S_rel[i, j] = q_i . E_r[j - i].

Shaw et al. gather an (L, L, D_h) tensor of embeddings to form S_rel; Huang et al. compute
Q E_r^T (L x L: row i, column r = distance r - (L-1)) and *skew* it: pad a zero column on the
left, read the (L, L+1) matrix as (L+1, L), drop the first row. Row i then holds
q_i . E_r[j - i] at column j for every j <= i (the rest is masked by causality), in O(L D_h)
memory instead of O(L^2 D_h).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def skew(rel: Tensor) -> Tensor:
    """(..., L, L) with rel[i, r] = q_i . E_r[r - (L-1)] -> S_rel with S_rel[i, j] =
    rel[i, j - i + L - 1] for j <= i (entries above the diagonal are meaningless)."""
    L = rel.shape[-1]
    padded = F.pad(rel, (1, 0))                                   # (..., L, L + 1)
    return padded.reshape(*rel.shape[:-2], L + 1, L)[..., 1:, :]


class RelativeSelfAttention(nn.Module):
    """Causal multi-head self-attention over at most ``max_len`` positions; the projections
    are named as in :class:`~genzoo.nn.attention.MultiHeadAttention` (q, kv, out)."""

    def __init__(self, dim: int, heads: int, max_len: int, dropout: float = 0.0,
                 bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by the number of heads {heads}")
        self.heads, self.d_k, self.max_len, self.dropout = heads, dim // heads, max_len, dropout
        self.q = nn.Linear(dim, dim, bias=bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)
        self.E_r = nn.Parameter(torch.randn(heads, max_len, self.d_k) * 0.02)   # distance -(L-1)..0
        self.resid_dropout = nn.Dropout(dropout)

    def _split(self, t: Tensor) -> Tensor:                  # (B, T, dim) -> (B, heads, T, d_k)
        return t.unflatten(-1, (self.heads, self.d_k)).transpose(1, 2)

    def forward(self, x: Tensor, cache=None) -> Tensor:
        if cache is not None:
            raise ValueError("relative attention keeps no key-value cache; encode the window")
        L = x.shape[1]
        if L > self.max_len:
            raise ValueError(f"{L} positions, more than the {self.max_len} relative attention knows")
        Q = self._split(self.q(x))
        K, V = (self._split(t) for t in self.kv(x).chunk(2, -1))
        S_rel = skew(Q @ self.E_r[:, self.max_len - L:].transpose(-2, -1))
        scores = (Q @ K.transpose(-2, -1) + S_rel) / math.sqrt(self.d_k)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        weights = F.dropout(weights, self.dropout, self.training)
        return self.resid_dropout(self.out((weights @ V).transpose(1, 2).flatten(2)))
