"""Classifier-free guidance (Ho & Salimans 2021).

One network learns both eps(x_t, y) and eps(x_t, no label): during training each label is
replaced by the "no label" token with probability p_uncond (about 10%); a text-conditioned
model drops the caption to the empty one the same way. At sampling the two
predictions are mixed, eps_w = eps(x_t) + w (eps(x_t, y) - eps(x_t)): w = 0 is the
unconditional model, w = 1 the conditional one, w > 1 pushes samples further towards what
makes them look like class y (sharper, less varied). The mix is linear, so it may equally be
taken in x0 or v space: the parameterisations are linear in one another at a given x_t.
"""
from __future__ import annotations

import torch


def drop_labels(y: torch.Tensor, p_uncond: float, null) -> torch.Tensor:
    """y with each item (a label, or a caption's row of tokens) replaced by ``null`` (a number,
    or a tensor broadcasting to y) with probability ``p_uncond``."""
    drop = torch.rand(y.shape[:1], device=y.device) < p_uncond
    null = torch.as_tensor(null, dtype=y.dtype, device=y.device)
    return torch.where(drop.view(-1, *[1] * (y.dim() - 1)), null, y)


def guided(out_uncond: torch.Tensor | None, out_cond: torch.Tensor | None, w: float) -> torch.Tensor:
    """The guided prediction out_u + w (out_c - out_u); one of them may be skipped when w is
    0 (only the unconditional is needed) or 1 (only the conditional)."""
    if w == 0:
        return out_uncond
    if w == 1:
        return out_cond
    return out_uncond + w * (out_cond - out_uncond)
