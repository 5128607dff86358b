"""Samplers: from noise x_1 ~ N(0, I) to data, given any trained denoiser.

A sampler sees only ``denoise(x_t, t) -> (x0_hat, eps_hat)`` (the network's guess of the clean
image and of the noise, whatever it was trained to predict) and the schedule's alpha_t, sigma_t;
so any sampler works with any trained network, at any number of steps. Each walks the noise
levels ``schedule.timesteps(steps)`` from t = 1 down, its last step landing on the clean image
(alpha = 1, sigma = 0).

- ``ddpm`` (Ho et al. 2020): ancestral sampling from the posterior q(x_s | x_t, x0_hat), a
  Gaussian with mean (alpha_ts sigma_s^2 x_t + alpha_s sigma_ts^2 x0_hat) / sigma_t^2 and
  variance sigma_ts^2 sigma_s^2 / sigma_t^2, where alpha_ts = alpha_t / alpha_s and
  sigma_ts^2 = sigma_t^2 - alpha_ts^2 sigma_s^2 (Kingma et al. 2021 write it for any s < t).
- ``ddim`` (Song, Meng & Ermon 2021): x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z,
  c = eta sigma_s / sigma_t sqrt(1 - alpha_t^2 / alpha_s^2): eta = 0 is a deterministic map
  (an ODE solver, invertible: :func:`ddim_invert`), eta = 1 is DDPM again.
- ``dpm++2m`` (Lu et al. 2022, DPM-Solver++(2M)): a second-order multistep solver of the
  diffusion ODE in lambda = log(alpha / sigma): x_s = (sigma_s/sigma_t) x_t + alpha_s (1 -
  e^-h) D with h = lambda_s - lambda_t and D = (1 + 1/2r) x0_hat - (1/2r) x0_hat_prev,
  r = h_prev / h (first order, D = x0_hat, on the first and the last step). Good images in
  10-20 steps.
"""
from __future__ import annotations

from typing import Callable

import torch

from genzoo.models.diffusion.schedules import Schedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def levels(schedule: Schedule, steps: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """[(t, alpha_t, sigma_t)] for the steps + 1 levels; the last is the clean image (1, 0)."""
    times = schedule.timesteps(steps)
    alpha, sigma = schedule.alpha_sigma(times)
    alpha[-1], sigma[-1] = 1.0, 0.0
    return list(zip(times, alpha, sigma))


def _noise(x: torch.Tensor, generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def ddpm(denoise: Denoiser, x: torch.Tensor, schedule: Schedule, steps: int,
         generator=None, record: list | None = None, **_) -> torch.Tensor:
    lv = levels(schedule, steps)
    for (t, a_t, sig_t), (_, a_s, sig_s) in zip(lv[:-1], lv[1:]):
        x0, _ = denoise(x, t)
        a_ts = a_t / a_s
        var_ts = sig_t ** 2 - a_ts ** 2 * sig_s ** 2
        mean = (a_ts * sig_s ** 2 * x + a_s * var_ts * x0) / sig_t ** 2
        x = mean + (var_ts * sig_s ** 2 / sig_t ** 2).sqrt() * _noise(x, generator) if sig_s > 0 else mean
        if record is not None:
            record.append({"t": float(t), "x": x, "x0": x0})
    return x


def ddim(denoise: Denoiser, x: torch.Tensor, schedule: Schedule, steps: int,
         generator=None, eta: float = 0.0, record: list | None = None, **_) -> torch.Tensor:
    lv = levels(schedule, steps)
    for (t, a_t, sig_t), (_, a_s, sig_s) in zip(lv[:-1], lv[1:]):
        x0, eps = denoise(x, t)
        c = eta * sig_s / sig_t * (1 - a_t ** 2 / a_s ** 2).clamp(min=0).sqrt()
        x = a_s * x0 + (sig_s ** 2 - c ** 2).clamp(min=0).sqrt() * eps
        if eta > 0 and sig_s > 0:
            x = x + c * _noise(x, generator)
        if record is not None:
            record.append({"t": float(t), "x": x, "x0": x0})
    return x


def ddim_invert(denoise: Denoiser, x0: torch.Tensor, schedule: Schedule, steps: int,
                iterations: int = 8) -> torch.Tensor:
    """The noise x_1 that deterministic DDIM (eta = 0) maps to ``x0``.

    Each DDIM step x_s = alpha_s x0_hat(x_t) + sigma_s eps_hat(x_t) is undone by solving for
    x_t = alpha_t x0_hat + sigma_t eps_hat with x0_hat = (x_s - sigma_s eps_hat) / alpha_s, by
    fixed-point iteration on eps_hat = eps(x_t) (exact at convergence, not the usual one-pass
    approximation).
    """
    lv = levels(schedule, steps)
    x = x0
    for (t, a_t, sig_t), (_, a_s, sig_s) in zip(reversed(lv[:-1]), reversed(lv[1:])):
        x_s = x
        x_t = a_t / a_s * x_s       # a first guess: the signal scaled, no noise added
        for _ in range(iterations):
            _, eps = denoise(x_t, t)
            x_t = a_t * (x_s - sig_s * eps) / a_s + sig_t * eps
        x = x_t
    return x


def dpmpp_2m(denoise: Denoiser, x: torch.Tensor, schedule: Schedule, steps: int,
             generator=None, record: list | None = None, **_) -> torch.Tensor:
    lv = levels(schedule, steps)
    x0_prev, h_prev = None, None
    for (t, a_t, sig_t), (_, a_s, sig_s) in zip(lv[:-1], lv[1:]):
        x0, _ = denoise(x, t)
        if sig_s == 0:                      # the last step: the clean image is x0_hat
            x = x0
        else:
            h = torch.log(a_s / sig_s) - torch.log(a_t / sig_t)
            D = x0
            if x0_prev is not None:
                r = h_prev / h
                D = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = sig_s / sig_t * x + a_s * (1 - torch.exp(-h)) * D
            x0_prev, h_prev = x0, h
        if record is not None:
            record.append({"t": float(t), "x": x, "x0": x0})
    return x


# name -> (function, default steps, one line for --help)
SAMPLERS: dict[str, tuple[Callable, int, str]] = {
    "ddpm": (ddpm, 1000, "ancestral DDPM, stochastic"),
    "ddim": (ddim, 50, "DDIM, deterministic at --eta 0, DDPM-like at --eta 1"),
    "dpm++2m": (dpmpp_2m, 20, "DPM-Solver++(2M), second order, 10-20 steps"),
}
