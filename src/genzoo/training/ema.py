"""Exponential moving average of a model's weights, used for sampling.

theta_ema <- d * theta_ema + (1 - d) * theta, with the warm-up d_t = min(d, (1 + t) / (10 + t))
so that early averages are not dominated by the random initialisation. Only parameters are
averaged: buffers (batch-norm statistics, data statistics, a replay buffer of samples) are
state, not weights, and the averaged model uses the live ones.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


class EMA:
    """The average of ``model``'s trained parameters, or of the named sub-networks' only
    (``networks``: attribute names, e.g. a GAN's generator). Frozen parameters have none."""

    def __init__(self, model: nn.Module, decay: float, networks: tuple[str, ...] = ()):
        self.model = model
        self.decay = decay
        self.updates = 0
        prefixes = tuple(n + "." for n in networks)
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()
                       if p.requires_grad and (not prefixes or k.startswith(prefixes))}
        if networks and not self.shadow:
            raise ValueError(f"EMA: no trainable parameters under {', '.join(networks)}")

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        params = dict(self.model.named_parameters())
        keys = list(self.shadow)
        torch._foreach_lerp_([self.shadow[k] for k in keys], [params[k].detach() for k in keys], 1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)
        self.updates = updates

    @contextlib.contextmanager
    def applied(self):
        """Temporarily put the averaged weights into the model."""
        state = self.model.state_dict()
        backup = {k: state[k].clone() for k in self.shadow}
        self.model.load_state_dict(self.shadow, strict=False)
        try:
            yield self.model
        finally:
            self.model.load_state_dict(backup, strict=False)
