"""Noise schedules: how much signal is left at each noise level t in [0, 1].

Forward noising (Ho et al. 2020, eq. 4) is q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I) with
alpha_t = sqrt(alpha_bar(t)) and sigma_t = sqrt(1 - alpha_bar(t)), so x_t = alpha_t x_0 +
sigma_t eps. A schedule is just the function alpha_bar(t), decreasing from about 1 (clean) at
t = 0 to about 0 (pure noise) at t = 1:

- ``linear`` (DDPM): beta_i rising linearly from 1e-4 to 0.02 over T = 1000 steps,
  alpha_bar_i = prod_{j<=i} (1 - beta_j); in continuous time its limit, the VP SDE of Song et
  al. (2021): log alpha_bar(t) = -(beta_0 T t + (beta_1 - beta_0) T t^2 / 2).
- ``cosine`` (Nichol & Dhariwal 2021): alpha_bar(t) = f(t)/f(0), f(t) = cos^2((t+s)/(1+s) pi/2),
  s = 0.008. Discrete: beta_i = 1 - alpha_bar(i/T) / alpha_bar((i-1)/T) from that curve, each
  clipped at 0.999 (so the last steps still add noise); continuous: alpha_bar clamped >= 1e-5.
- ``offset_cosine`` (the continuous-time DDIM of Song et al. 2021 as in Chollet's Keras
  example): the signal rate alpha_t = cos(phi) and noise rate sigma_t = sin(phi), with phi
  moving linearly from arccos(0.95) to arccos(0.02), so even t = 0 keeps a little noise.

``discrete=True`` restricts training to the T grid points t = i/T, i = 1..T, with alpha_bar
from the product of (1 - beta_i) (linearly interpolated in log alpha_bar between grid points,
so that any sampler may ask any t); ``discrete=False`` uses the closed forms above and trains
on t ~ U(0, 1).
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("linear", "cosine", "offset_cosine")


class Schedule:
    def __init__(self, kind: str = "linear", discrete: bool = True, T: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02, cosine_s: float = 0.008,
                 max_signal: float = 0.95, min_signal: float = 0.02):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        self.kind, self.discrete, self.T = kind, discrete, T
        self.beta_start, self.beta_end, self.s = beta_start, beta_end, cosine_s
        self.phi_start, self.phi_end = math.acos(max_signal), math.acos(min_signal)
        if discrete:
            i = torch.arange(T + 1, dtype=torch.float64)
            if kind == "linear":
                beta = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
            else:   # beta_i = 1 - alpha_bar(i/T) / alpha_bar((i-1)/T) of the unclamped
                ab = self._curve(i / T)     # curve, clipped at 0.999 (Nichol & Dhariwal)
                beta = (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
            self.beta = beta                                # beta_1..beta_T, float64
            log_ab = torch.cat([torch.zeros(1, dtype=torch.float64),
                                torch.cumsum(torch.log1p(-beta), 0)])
            if kind == "offset_cosine":     # keep the offset: alpha_bar(0) = max_signal^2
                log_ab = log_ab + 2 * math.log(max_signal)
            self.log_alpha_bar_table = log_ab.float()       # index i = 0..T

    def _curve(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar(t) in closed form, as the formulas give it (cosine: 0 at t = 1)."""
        if self.kind == "linear":
            b0, b1 = self.beta_start * self.T, self.beta_end * self.T
            return torch.exp(-(b0 * t + 0.5 * (b1 - b0) * t ** 2))
        if self.kind == "cosine":
            f = lambda u: torch.cos((u + self.s) / (1 + self.s) * math.pi / 2) ** 2
            return f(t) / f(torch.zeros_like(t))
        phi = self.phi_start + t * (self.phi_end - self.phi_start)
        return torch.cos(phi) ** 2

    def _closed_form(self, t: torch.Tensor) -> torch.Tensor:
        """Continuous time: the curve, with the cosine kept >= 1e-5 (sigma_1 / alpha_1 finite)."""
        ab = self._curve(t)
        return ab.clamp(min=1e-5) if self.kind == "cosine" else ab

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar(t) for t (any shape) in [0, 1]."""
        t = t.float().clamp(0, 1)
        if not self.discrete:
            return self._closed_form(t)
        table = self.log_alpha_bar_table.to(t.device)
        u = t * self.T
        lo = u.floor().long().clamp(max=self.T - 1)
        frac = u - lo
        return torch.exp(torch.lerp(table[lo], table[lo + 1], frac))

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) = (sqrt(alpha_bar), sqrt(1 - alpha_bar))."""
        ab = self.alpha_bar(t)
        return ab.sqrt(), (1 - ab).sqrt()

    def sample_t(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training noise levels: i/T with i ~ U{1..T}, or t ~ U(0, 1)."""
        if self.discrete:
            i = torch.randint(1, self.T + 1, (n,), device=device, generator=generator)
            return i.float() / self.T
        return torch.rand(n, device=device, generator=generator)

    def timesteps(self, steps: int) -> torch.Tensor:
        """``steps + 1`` noise levels from 1 down to 0 for a sampler taking ``steps`` steps;
        on the T grid when discrete (evenly spaced, rounded). A sampler's last step goes to
        the clean image itself."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if self.discrete:
            if steps > self.T:
                raise ValueError(f"steps {steps} > the {self.T} steps of a discrete schedule")
            i = torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round()
            return (i / self.T).float()
        return torch.linspace(1, 0, steps + 1)

    def __repr__(self):
        return f"Schedule({self.kind!r}, discrete={self.discrete}, T={self.T})"
