"""Autoregressive text: the next-token loss and sampling shared by the LSTM and the GPT.

A language model factorises p(x_1..x_T) = prod_t p(x_t | x_<t); it is trained by maximum
likelihood on next-token prediction (cross-entropy of x_t+1 given x_<=t, padding excluded)
and sampled one token at a time. Sampling reshapes p(x_t | x_<t) first: a temperature
tau divides the logits (tau < 1 sharpens, tau -> 0 is greedy), top-k keeps the k likeliest
tokens (Fan et al. 2018), top-p the smallest set whose probability reaches p (nucleus
sampling, Holtzman et al. 2020).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.models.base import Family

# step(new_tokens (B, t), state | None) -> (logits of the last position (B, V), state)
Step = Callable[[Tensor, object], tuple[Tensor, object]]


def check_sampling(temperature: float, top_k: int | None, top_p: float | None,
                   max_tokens: int) -> None:
    if temperature < 0:
        raise GenzooError(f"--temperature {temperature}: must be >= 0 (0 = greedy)")
    if top_k is not None and top_k < 1:
        raise GenzooError(f"--top-k {top_k}: must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise GenzooError(f"--top-p {top_p}: must be in (0, 1]")
    if max_tokens < 0:
        raise GenzooError(f"--max-tokens {max_tokens}: must be >= 0")


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Tensor:
    """Logits (B, V) reshaped by temperature, top-k and top-p; removed tokens get -inf."""
    logits = logits.float().clone()
    logits[:, tk.PAD] = float("-inf")               # padding is never a next token
    logits = logits / max(temperature, 1e-8)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(-1, descending=True)
        p = sorted_logits.softmax(-1)
        before = p.cumsum(-1) - p                   # probability of the likelier tokens
        remove = before >= top_p                    # the first token always stays
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return logits


def sample_next(logits: Tensor, generator: torch.Generator | None = None,
                temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> Tensor:
    """One token per row of ``logits`` (B, V) -> (B,)."""
    logits = filter_logits(logits, temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate(step: Step, start: Tensor, max_tokens: int, generator=None,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             end_id: int = tk.END) -> Tensor:
    """Up to ``max_tokens`` new tokens (B, <= max_tokens) after ``start`` (B, t0). A row
    that has drawn ``end_id`` keeps ``end_id``; the loop stops once every row has."""
    logits, state = step(start, None)
    done = torch.zeros(start.shape[0], dtype=torch.bool, device=start.device)
    out = []
    for i in range(max_tokens):
        nxt = sample_next(logits, generator, temperature, top_k, top_p).masked_fill(done, end_id)
        out.append(nxt)
        done |= nxt == end_id
        if bool(done.all()) or i + 1 == max_tokens:
            break
        logits, state = step(nxt[:, None], state)
    return torch.stack(out, 1) if out else start[:, :0]


class NextTokenModel(Family):
    """A text family: subclasses give ``logits(idx)`` (B, T) -> (B, T, V) for training and
    ``step`` (see :data:`Step`) for generation; the loss, sampling and prompts live here."""

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
