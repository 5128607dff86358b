"""The transformer block (Vaswani et al. 2017), as GPT and the music transformer use it.

Causal multi-head self-attention and a GELU MLP, each in a residual branch with layer norm
before it (pre-norm, GPT-2: h + f(LN(h))) or after it (post-norm, the original transformer and
Foster's blocks: LN(h + f(h))). Attribute names are those of GPT checkpoints (ln_1, attn,
ln_2, mlp). ``attention`` replaces the default attention (e.g. relative attention).
"""
from __future__ import annotations

from torch import nn

from genzoo.nn.attention import MultiHeadAttention


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, dropout: float = 0.0, mlp_ratio: float = 4.0,
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
