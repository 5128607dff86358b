"""A decoder-only transformer (Vaswani et al. 2017; GPT, Radford et al. 2018, 2019), shared by
the GPT language model and the priors over VQ code sequences.

Tokens are embedded and added to learned position embeddings, h_0 = W_e[x] + W_p; each block
applies causal multi-head self-attention (position t attends only to positions <= t) and a
GELU MLP, each in a residual branch with layer norm before it (pre-norm, GPT-2) or after it
(post-norm, the original transformer); a final projection onto the vocabulary, tied to W_e
(Press & Wolf 2017) or not, gives the logits of p(x_t+1 | x_<=t). With a :class:`KVCache` per
block, positions can be fed a few at a time (generation). A block's ``attention`` may replace
the default attention (the music transformer's relative attention).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.nn.attention import MultiHeadAttention


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 norm: str = "pre", bias: bool = True, attention: nn.Module | None = None):
        super().__init__()
        self.pre = norm == "pre"
        self.ln_1 = nn.LayerNorm(d, bias=bias)
        self.attn = attention or MultiHeadAttention(d, n_head, dropout, causal=True, bias=bias)
        self.ln_2 = nn.LayerNorm(d, bias=bias)
        hidden = int(mlp_ratio * d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden, bias=bias), nn.GELU(),
                                 nn.Linear(hidden, d, bias=bias), nn.Dropout(dropout))

    def forward(self, h, cache=None):
        if self.pre:
            h = h + self.attn(self.ln_1(h), cache=cache)
            return h + self.mlp(self.ln_2(h))
        h = self.ln_1(h + self.attn(h, cache=cache))
        return self.ln_2(h + self.mlp(h))


class Transformer(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, V): embeddings, blocks, final norm,
    (tied) projection. ``context`` is the number of positions (the size of W_p)."""

    def __init__(self, V: int, context: int, n_layer: int, n_head: int, n_embd: int,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, norm: str = "pre",
                 bias: bool = True, tie_weights: bool = True):
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(V, n_embd)               # W_e
        self.wpe = nn.Embedding(context, n_embd)         # W_p
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, mlp_ratio, dropout, norm, bias)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias) if norm == "pre" else nn.Identity()
        self.lm_head = None if tie_weights else nn.Linear(n_embd, V, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():     # GPT-2: residual projections / sqrt(2L)
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def embed(self, idx, pos0: int = 0):
        """h_0 = W_e[x] + W_p[pos0 .. pos0 + T - 1]."""
        pos = torch.arange(pos0, pos0 + idx.shape[1], device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def transform(self, h, caches=None):
        """Embedded inputs (B, T, d) -> next-token logits (B, T, V)."""
        for i, block in enumerate(self.blocks):
            h = block(h, None if caches is None else caches[i])
        h = self.ln_f(h)
        return self.lm_head(h) if self.lm_head is not None else F.linear(h, self.wte.weight)

    def forward(self, idx, pos0: int = 0, caches=None):
        return self.transform(self.embed(idx, pos0), caches)


def decay_groups(params, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on weight matrices (and embeddings) only, never on
    biases, norms or gains (GPT-2's practice)."""
    params = list(params)
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
