"""The base of the autoregressive text families (the LSTM and the GPT).

A language model factorises p(x_1..x_T) = prod_t p(x_t | x_<t); it is trained by maximum
likelihood on next-token prediction (cross-entropy of x_t+1 given x_<=t, padding excluded)
and sampled one token at a time (genzoo.nn.sampling: temperature, top-k, top-p), after a
prompt. Subclasses give the network; the loss, the held-out likelihood, the sampling and the
prompts live here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.models.base import Family, Likelihood, SampleOption
from genzoo.nn.sampling import check_sampling, filter_logits, generate


class NextTokenModel(Family):
    """A text family: subclasses give ``logits(idx)`` (B, T) -> (B, T, V) for training and
    ``step`` (see :data:`Step`) for generation; the loss, sampling and prompts live here."""

    sample_options = (
        SampleOption("prompt", str, None, "text the samples continue", kind="prompt"),
        SampleOption("max_tokens", int, 200, "most new tokens per sample"),
        SampleOption("temperature", float, 1.0, "divides the logits (< 1 sharper, 0 greedy)"),
        SampleOption("top_k", int, None, "draw from the k likeliest next tokens only"),
        SampleOption("top_p", float, None, "draw from the likeliest next tokens whose "
                     "probabilities add up to p (nucleus sampling)"),
    )

    def __init__(self, config, data):
        super().__init__(config, data)
        if data.modality != "text" or "tokenizer" not in data.meta:
            raise GenzooError(f"{type(self).__name__.lower()} models text, not {data.modality} "
                              f"data (give a .txt, .csv/.jsonl with a template, or a folder of .txt)")
        self.tokenizer = tk.from_dict(data.meta["tokenizer"])
        self.V = self.tokenizer.vocab_size

    # -- training -------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean cross-entropy (nats) of each real next token given the ones before it."""
        x = batch["x"]
        inputs, targets = x[:, :-1], x[:, 1:]
        logits = self.logits(inputs)
        nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
        real = batch["mask"][:, 1:] if "mask" in batch else torch.ones_like(targets, dtype=torch.bool)
        real = real.flatten().float()
        return {"loss": (nll * real).sum() / real.sum().clamp_min(1)}

    def evaluate(self, batch):
        out = self.loss(batch)
        name = "bits_per_char" if self.tokenizer.kind == "char" else "bits_per_token"
        out[name] = out["loss"] / math.log(2)
        if self.tokenizer.kind != "char":
            out["perplexity"] = out["loss"].exp()
        return out

    def likelihood(self, held_out):
        """Exact bits per token (per character for a character model) over the vocabulary."""
        unit = "bits/char" if self.tokenizer.kind == "char" else "bits/token"
        return Likelihood(held_out["loss"] / math.log(2), unit, self.V, exact=True)

    # -- sampling -------------------------------------------------------------------------
    def prompt_ids(self, prompt: str | None) -> list[int]:
        """Where generation starts: END (a document's start), then the prompt's tokens. In a
        packed corpus, where END is rare, an empty prompt starts from a newline instead."""
        packed = self.data.meta.get("packed", False)
        ids = self.tokenizer.encode(prompt) if prompt else []
        if packed and ids:
            return ids
        if packed:
            nl = self.tokenizer.encode("\n")
            return nl if len(nl) == 1 and nl[0] != tk.UNK else [tk.END]
        return [tk.END] + ids

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, prompt: str | None = None,
               max_tokens: int = 200, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None) -> list[str]:
        """``n`` texts, each the prompt and what follows it (until END or ``max_tokens``)."""
        check_sampling(temperature, top_k, top_p, max_tokens)
        ids = self.prompt_ids(prompt)
        start = torch.tensor(ids, device=self.device).expand(n, -1)
        new = generate(self.step, start, max_tokens, generator, temperature, top_k, top_p)
        shown = ids if prompt else []
        texts = []
        for row in new.tolist():
            row = row[:row.index(tk.END)] if tk.END in row else row
            texts.append(self.tokenizer.decode(shown + row))
        return texts

    @torch.no_grad()
    def next_token_probs(self, prompt: str | None, temperature: float = 1.0) -> Tensor:
        """p(next token | prompt) at ``temperature``, a (V,) vector."""
        start = torch.tensor(self.prompt_ids(prompt), device=self.device)[None]
        logits, _ = self.step(start, None)
        return filter_logits(logits, temperature)[0].softmax(-1)
