"""Captions as the multimodal families read them: one of an image's captions, prompts, and a
transformer text encoder (Radford et al. 2021, sec. 2.4).

A caption is ``END w_1 .. w_n END`` padded with ``PAD`` (data/captions.py); an image may have
several, of which training takes one at random each time it sees the image (:func:`pick`).
The encoder embeds tokens and adds learned positions, runs causal pre-norm transformer blocks
(GPT's, from nn/transformer.py) and a final layer norm: the states (B, L, d) of every token
are what a U-Net cross-attends to (with the padding masked), and the state at the closing END
token, which under causal attention has read the whole caption, is the caption's vector
(CLIP's [EOS] token).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.data import captions as C
from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.nn.attention import MultiHeadAttention
from genzoo.nn.transformer import Block


def pick(captions: Tensor) -> Tensor:
    """(B, K, L) captions -> (B, L): one of each image's real captions, drawn uniformly."""
    if captions.dim() == 2:
        return captions
    real = (captions[:, :, 0] != tk.PAD).float()
    k = torch.multinomial(real, 1)[:, 0]
    return captions[torch.arange(len(captions), device=captions.device), k]


def first(captions: Tensor) -> Tensor:
    """(B, K, L) -> (B, L): each image's first caption (a fixed choice, for measuring)."""
    return captions[:, 0] if captions.dim() == 3 else captions


def prompts(texts: list[str], tokenizer: tk.Tokenizer, context: int) -> Tensor:
    """Texts -> (B, L) caption tokens as the data's captions were made."""
    return C.encode([[t] for t in texts], tokenizer, context)[:, 0]


def translate(tokens: Tensor, source: tk.Tokenizer, target: tk.Tokenizer, context: int) -> Tensor:
    """Caption tokens of one tokenizer -> the same captions in another's tokens."""
    texts = [source.decode(row.tolist()) for row in tokens.cpu()]
    return prompts(texts, target, context).to(tokens.device)


def same_tokenizer(a: dict, b: dict) -> bool:
    return a.get("kind") == b.get("kind") and a.get("tokens") == b.get("tokens") \
        and a.get("merges") == b.get("merges")


def encoder_block(width: int, heads: int, mlp_ratio: float = 4.0) -> Block:
    """A pre-norm transformer block whose tokens all see each other (a ViT's)."""
    return Block(width, heads, mlp_ratio=mlp_ratio,
                 attention=MultiHeadAttention(width, heads, causal=False))


class TextTransformer(nn.Module):
    """Token ids (B, L) -> (states (B, L, d), mask (B, L), pooled (B, d)); see the docstring."""

    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.context, self.width = context, width
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(context, width) * 0.01)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio=mlp_ratio) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width)
        nn.init.normal_(self.token.weight, std=0.02)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, L = tokens.shape
        if L > self.context:
            raise GenzooError(f"captions of {L} tokens, more than the text encoder's context "
                              f"{self.context} (set data.context={self.context})")
        h = self.token(tokens) + self.position[:L]
        for block in self.blocks:
            h = block(h)
        h = self.ln_final(h)
        mask = tokens != tk.PAD
        end = mask.sum(1).clamp(min=1) - 1                # the closing END token
        return h, mask, h[torch.arange(B, device=h.device), end]
