"""Drawing tokens one at a time from p(x_t | x_<t), for any autoregressive model of tokens.

Sampling reshapes p(x_t | x_<t) first: a temperature tau divides the logits (tau < 1
sharpens, tau -> 0 is greedy), top-k keeps the k likeliest tokens (Fan et al. 2018), top-p
the smallest set whose probability reaches p (nucleus sampling, Holtzman et al. 2020). The
text families' base class (genzoo.models.next_token) samples with these.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError

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
                  top_p: float | None = None, pad: int | None = tk.PAD) -> Tensor:
    """Logits (B, V) reshaped by temperature, top-k and top-p; removed tokens get -inf.
    Token ``pad`` (padding in text; None where every index is a real token, as VQ codes)
    is never drawn."""
    logits = logits.float().clone()
    if pad is not None:
        logits[:, pad] = float("-inf")
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
                top_p: float | None = None, pad: int | None = tk.PAD) -> Tensor:
    """One token per row of ``logits`` (B, V) -> (B,)."""
    logits = filter_logits(logits, temperature, top_k, top_p, pad)
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
