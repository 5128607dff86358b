"""Multi-head scaled dot-product attention (Vaswani et al. 2017), with a key-value cache.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V,   one such map per head,

with Q from the sequence x and K, V from x itself (self-attention) or from a ``context``
(cross-attention, e.g. a U-Net attending to a text). ``causal=True`` masks the future, so
position t only sees positions <= t (GPT). The product goes through torch's
``scaled_dot_product_attention`` (flash / memory-efficient kernels where the device has them).

The cache: when generating one token at a time, the keys and values of earlier positions do
not change, so a :class:`KVCache` keeps them and each new token costs one query against the
cached keys instead of a pass over the whole context. Images use it with tokens = pixels:
``x.flatten(2).transpose(1, 2)`` makes (B, H*W, C).

Padding: a batch of texts of different lengths is padded to one length; ``mask`` (B, S), True
at the real keys, keeps every query from attending to the padding (its weight there is 0).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KVCache:
    """Keys and values (B, heads, S, d) of the positions seen so far, in preallocated buffers."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.k = self.v = None
        self.length = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.k is None:
            shape = (*k.shape[:2], self.capacity, k.shape[3])
            self.k = k.new_empty(shape)
            self.v = v.new_empty(shape)
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache full ({end} > {self.capacity} positions)")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0, causal: bool = False,
                 bias: bool = True, context_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by the number of heads {heads}")
        self.heads, self.d_k, self.causal, self.dropout = heads, dim // heads, causal, dropout
        self.q = nn.Linear(dim, dim, bias=bias)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.keep_weights = False           # set True to keep the last attention maps
        self.weights: Tensor | None = None  # (B, heads, T, S) when kept

    def _split(self, t: Tensor) -> Tensor:                  # (B, T, dim) -> (B, heads, T, d_k)
        return t.unflatten(-1, (self.heads, self.d_k)).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor | None = None,
                cache: KVCache | None = None, mask: Tensor | None = None) -> Tensor:
        """x: (B, T, dim) -> (B, T, dim). With a cache, x holds only the new positions.
        ``mask`` (B, S) bool: the keys that may be attended (False: padding)."""
        Q = self._split(self.q(x))
        K, V = (self._split(t) for t in self.kv(x if context is None else context).chunk(2, -1))
        past = 0
        if cache is not None:
            past = cache.length
            K, V = cache.append(K, V)
        T, S = Q.shape[2], K.shape[2]
        keys, mask, is_causal = mask, None, False
        if self.causal and T > 1:
            if past == 0 and T == S:
                is_causal = True
            else:                       # new queries at positions past..past+T-1
                mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)
        if keys is not None:            # padding: (B, S) -> (B, 1, 1, S), with any causal mask
            if is_causal:
                mask, is_causal = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(), False
            pad = keys[:, None, None, :].bool()
            mask = pad if mask is None else pad & mask
        if self.keep_weights:
            self.weights = attention_weights(Q, K, mask if mask is not None or not is_causal
                                             else torch.ones(T, S, dtype=torch.bool,
                                                             device=x.device).tril())
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        return self.resid_dropout(self.out(y.transpose(1, 2).flatten(2)))


def attention_weights(Q: Tensor, K: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(Q K^T / sqrt(d_k)) written out, for looking at (SDPA does not return it)."""
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1).detach()
