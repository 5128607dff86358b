"""Langevin dynamics: sampling from p(x) proportional to exp(-E(x)) with gradients of E.

Stochastic gradient Langevin dynamics (Welling & Teh 2011) moves samples downhill on the
energy with added Gaussian noise, x_{k+1} = x_k - (eps / 2) grad E(x_k) + sqrt(eps) w_k; as the
step shrinks and the steps grow, the chain's distribution tends to p. Energy-based models
(Du & Mordatch 2019, "Implicit generation and generalization in energy-based models") decouple
the step size from the noise scale and clip the gradient, which trades exactness for short,
stable chains:

    x <- clip(x + noise * w),   w ~ N(0, I)
    x <- clip(x - step_size * clip(grad_x E(x), -grad_clip, grad_clip))

with x kept in the data's range. Works with any energy function (a module or a plain callable
from a batch (N, ...) to energies (N,)).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor


def energy_grad(energy: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """grad_x E(x) and E(x) for a batch, without touching any parameter's .grad."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        e = energy(x)
        (grad,) = torch.autograd.grad(e.sum(), x)
    return grad, e.detach()


def langevin(energy: Callable[[Tensor], Tensor], x: Tensor, steps: int, step_size: float,
             noise: float, grad_clip: float = 0.0, bounds: tuple[float, float] | None = (-1.0, 1.0),
             generator: torch.Generator | None = None, record: Iterable[int] = ()
             ) -> tuple[Tensor, list[Tensor], Tensor]:
    """Run ``steps`` Langevin steps from ``x``.

    Returns (x_final, snapshots, energies): ``snapshots`` holds x after each step named in
    ``record`` (0 = the start); ``energies`` (steps,) the mean energy before each step's move.
    ``grad_clip`` 0 means no clipping; ``bounds`` None means an unbounded space.
    """
    def clip(v):
        return v.clamp(*bounds) if bounds is not None else v

    record = set(record)
    x = x.detach()
    snapshots = [x.clone()] if 0 in record else []
    energies = []
    for k in range(1, steps + 1):
        w = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = clip(x + noise * w)
        grad, e = energy_grad(energy, x)
        if grad_clip > 0:
            grad = grad.clamp(-grad_clip, grad_clip)
        x = clip(x - step_size * grad.to(x.dtype))
        energies.append(e.float().mean())
        if k in record:
            snapshots.append(x.clone())
    return x, snapshots, torch.stack(energies) if energies else torch.zeros(0)
