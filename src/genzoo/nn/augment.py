"""Differentiable augmentation for GANs on small data sets.

A discriminator trained on a few thousand images memorises them, and its feedback to the
generator becomes useless (the GAN collapses or copies). DiffAugment (Zhao et al. 2020)
applies the same random, differentiable transformations T to every image D sees, real and
generated, in D's and G's updates alike: D(T(x)) and D(T(G(z))). Because T is differentiable,
G still gets its gradient; because T is applied to both, G is not pushed to produce
augmented-looking images. The policy "color,translation,cutout": random brightness
(+U(-0.5, 0.5)), saturation (x U(0, 2)) and contrast (x U(0.5, 1.5)); a shift by up to 1/8 of
the side (zeros shifted in); a blanked square of half the side.

ADA (Karras et al. 2020, "Training GANs with Limited Data") applies each transformation with a
probability p, adjusted as training goes: r_t = E[sign(D(x_real))] measures how sure D is of
the reals (0: not at all, 1: overfitting); every few D updates p moves up when r_t is above a
target (0.6) and down otherwise, fast enough to go from 0 to 1 in ``kimg`` thousand images.
Here ADA's controller drives DiffAugment's transformations (ADA's own pipeline has 18).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def brightness(x: Tensor) -> Tensor:
    return x + (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: Tensor) -> Tensor:
    mean = x.mean(1, keepdim=True)
    return (x - mean) * (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by its own (dy, dx), each at most ratio * side pixels; zeros come in.
    Written as a gather (not grid_sample) so that it is differentiable twice."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy          # source row, (n, h, 1)
    cols = torch.arange(w, device=x.device)[None, None, :] - dx          # source col, (n, 1, w)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).to(x.dtype)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).flatten(1)  # (n, h * w)
    out = x.flatten(2).gather(2, index[:, None].expand(n, c, h * w)).view(n, c, h, w)
    return out * inside[:, None]


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Blank a square of ratio * side at a random place in each image (it may stick out)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device) - cw // 2
    r = torch.arange(h, device=x.device)[None, :, None]
    q = torch.arange(w, device=x.device)[None, None, :]
    hole = (r >= top) & (r < top + ch) & (q >= left) & (q < left + cw)
    return x * (~hole).to(x.dtype)[:, None]


POLICIES = {"color": (brightness, saturation, contrast), "translation": (translation,),
            "cutout": (cutout,)}


class Augment(nn.Module):
    """T(x) for images in [-1, 1]: every transformation of ``policy`` applied to each image
    with probability p (p = 1: DiffAugment; ``adaptive``: ADA's p, starting at 0).

    Its state (p and the running sums of the controller) are buffers, saved in checkpoints."""

    def __init__(self, policy: str = "color,translation,cutout", adaptive: bool = False,
                 target: float = 0.6, kimg: float = 500.0, interval: int = 4):
        super().__init__()
        names = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in names if p not in POLICIES]
        if unknown or not names:
            raise ValueError(f"augment policy {policy!r}: use some of {', '.join(POLICIES)}")
        self.ops = [op for p in names for op in POLICIES[p]]
        self.adaptive, self.target, self.kimg, self.interval = adaptive, target, kimg, interval
        self.register_buffer("p", torch.tensor(0.0 if adaptive else 1.0))
        self.register_buffer("signs", torch.tensor(0.0))       # sum of sign(D(x_real)) ...
        self.register_buffer("seen", torch.tensor(0.0))        # ... over this many reals
        self.register_buffer("updates", torch.tensor(0))       # D updates since the last move

    def forward(self, x: Tensor) -> Tensor:
        """T(x) in training; the identity in eval mode (held-out scores see plain images)."""
        p = float(self.p)
        if p <= 0 or not self.training:
            return x
        for op in self.ops:
            if p >= 1:
                x = op(x)
            else:
                chosen = torch.rand(len(x), 1, 1, 1, device=x.device) < p
                x = torch.where(chosen, op(x), x)
        return x

    @torch.no_grad()
    def observe(self, d_real: Tensor) -> None:
        """After one D update: count the signs of D's real logits; every ``interval`` updates
        move p by sign(r_t - target) * (images seen) / (kimg * 1000), r_t = E[sign D(x)]."""
        if not self.adaptive:
            return
        self.signs += d_real.detach().float().sign().sum()
        self.seen += len(d_real)
        self.updates += 1
        if int(self.updates) >= self.interval:
            r_t = self.signs / self.seen
            step = torch.sign(r_t - self.target) * self.seen / (self.kimg * 1000)
            self.p.copy_((self.p + step).clamp(0, 1))
            self.signs.zero_(), self.seen.zero_(), self.updates.zero_()
