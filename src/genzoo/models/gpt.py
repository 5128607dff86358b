"""GPT: a decoder-only transformer language model (Radford et al. 2018, 2019; Vaswani et al.
2017; the small recipe of Foster's "Generative Deep Learning", ch. 9).

Tokens are embedded and added to learned position embeddings, h_0 = W_e[x] + W_p; each block
applies causal multi-head self-attention (position t attends only to positions <= t) and a
GELU MLP, each in a residual branch with layer norm before it (pre-norm, GPT-2) or after it
(post-norm, the original transformer); a final projection onto the vocabulary, tied to W_e
(Press & Wolf 2017), gives p(x_t+1 | x_<=t). Generation keeps the keys and values of past
positions in a cache, so each new token costs one position rather than the whole context.
The network itself is :class:`genzoo.nn.transformer.Transformer`, shared with the VQ priors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genzoo.errors import GenzooError
from genzoo.models.base import Objective
from genzoo.models.next_token import NextTokenModel
from genzoo.nn.attention import KVCache
from genzoo.nn.transformer import Transformer, decay_groups
from genzoo.registry import register


@dataclass
class GPTConfig:
    n_layer: int = 1                # transformer blocks
    n_head: int = 2                 # attention heads per block
    n_embd: int = 256               # width d_model (each head has n_embd / n_head)
    mlp_ratio: float = 1.0          # MLP hidden width / n_embd (Foster: 256 -> 1; GPT-2: 4)
    context: int = 80               # block size: positions the model sees at once
    dropout: float = 0.1            # on embeddings, attention maps and residual branches
    norm: str = "pre"               # pre (GPT-2) | post (Vaswani et al.)
    bias: bool = True               # biases in linear layers and layer norms
    tie_weights: bool = True        # output projection = token embedding matrix (transposed)
    tokenizer: str = "word"         # the recipe's data.tokenizer: char | word | bpe
    lr: float = 1e-3                # AdamW peak lr (warm-up then cosine decay: train_defaults)
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.1       # on weight matrices only, never biases, norms or gains

    def validate(self):
        if min(self.n_layer, self.n_head, self.n_embd, self.context) < 1:
            raise ValueError("n_layer, n_head, n_embd and context must be >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} must be divisible by n_head {self.n_head}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be pre or post, got {self.norm!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


PRESETS = {
    # nanoGPT's character-level Shakespeare (Karpathy): about 10.7M parameters.
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, mlp_ratio=4.0, context=256,
                             dropout=0.2, tokenizer="char"),
    # a CPU-sized character model: 4 blocks of 128 over 128 positions (~0.8M parameters);
    # small enough for a 3x higher peak lr (val loss 1.90 vs 2.09 at 1e-3 after 600 steps).
    "small-char": dict(n_layer=4, n_head=4, n_embd=128, mlp_ratio=4.0, context=128,
                       dropout=0.0, tokenizer="char", lr=3e-3),
    # A few-millisecond model for the contract test and pipeline smoke runs.
    "tiny": dict(n_layer=1, n_head=2, n_embd=16, mlp_ratio=1.0, context=16, dropout=0.0,
                 tokenizer="char"),
}


@register("gpt", config=GPTConfig, taxonomy="explicit-tractable", modality="text",
          summary="decoder-only transformer: causal self-attention, next-token likelihood",
          showcase="genzoo.viz.text:showcase")
class GPT(NextTokenModel):
    presets = PRESETS
    train_defaults = {"batch_size": 64, "steps": 5000, "lr_schedule": "cosine",
                      "warmup_steps": 100, "min_lr_ratio": 0.1, "grad_clip": 1.0,
                      "eval_every": 250, "eval_batches": 8, "sample_every": 1000,
                      "sample_n": 4, "checkpoint_every": 1000}

    def __init__(self, config: GPTConfig, data):
        super().__init__(config, data)
        c = config
        if data.shape[0] - 1 > c.context:
            raise GenzooError(f"gpt: the data windows hold {data.shape[0] - 1} tokens, more than "
                              f"the model's context {c.context} (set context={data.shape[0] - 1} "
                              f"or data.context={c.context})")
        self.net = Transformer(self.V, c.context, c.n_layer, c.n_head, c.n_embd, c.mlp_ratio,
                               c.dropout, c.norm, c.bias, c.tie_weights)

    @classmethod
    def data_defaults(cls, config):
        return {"tokenizer": config.tokenizer, "context": config.context}

    # -- the network (one module, so that train.compile=true compiles all of it) --------------
    def embed(self, idx, pos0: int = 0):
        return self.net.embed(idx, pos0)

    def transform(self, h, caches=None):
        return self.net.transform(h, caches)

    def logits(self, idx):
        return self.net(idx)

    # -- training ------------------------------------------------------------------------
    def objectives(self):
        c = self.config
        groups = decay_groups(self.parameters(), c.weight_decay)
        return [Objective("nll", self.loss, groups, lr=c.lr, betas=tuple(c.betas),
                          weight_decay=c.weight_decay, optimizer="adamw")]

    # -- generation ----------------------------------------------------------------------
    use_cache = True     # False: recompute the whole window for every token (for comparison)

    def step(self, new, state):
        """Logits after ``new`` tokens. The model sees a window of at most ``context`` tokens;
        when it overflows, the oldest quarter is dropped and the window is encoded afresh
        (absolute positions shift), so the cache is rebuilt once per context/4 tokens.
        Cached and uncached generation follow the same windows and give the same tokens."""
        T = self.config.context
        window = new if state is None else torch.cat([state["window"], new], 1)
        fresh = state is None or window.shape[1] > T or not self.use_cache
        if window.shape[1] > T:
            window = window[:, -max(1, (3 * T) // 4):] if state is not None else window[:, -T:]
        if fresh:
            caches = [KVCache(T) for _ in self.net.blocks] if self.use_cache else None
            logits = self.net.forward(window, 0, caches)     # .forward: eager, even if compiled
        else:
            caches = state["caches"]
            logits = self.net.forward(new, window.shape[1] - new.shape[1], caches)
        return logits[:, -1], {"window": window, "caches": caches}

    def attention_maps(self, prompt: str | None):
        """(tokens, maps): the prompt's tokens and per block the (heads, T, T) attention."""
        ids = self.prompt_ids(prompt)[-self.config.context:]
        blocks = self.net.blocks
        for b in blocks:
            b.attn.keep_weights = True
        try:
            with torch.no_grad():
                self.net.forward(torch.tensor(ids, device=self.device)[None])
            maps = [b.attn.weights[0].float().cpu() for b in blocks]
        finally:
            for b in blocks:
                b.attn.keep_weights, b.attn.weights = False, None
        return [self.tokenizer.token_str(i) for i in ids], maps
