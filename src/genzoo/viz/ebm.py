"""What an energy-based model shows once trained (Foster, ch. 7).

Langevin chains from uniform noise to images: one row per chain, one column per recorded
step (0, 1, 3, 10, 30, ... up to the sampling length), with the mean energy along the way;
samples drawn from the replay buffer next to samples made fresh from noise; and the energies
of real images, of the model's samples and of noise, as histograms.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.viz.grid import grid, save_grid, save_png, to_uint8
from genzoo.viz.plots import plt, save_figure


def chain_steps(total: int) -> list[int]:
    """0, 1, 3, 10, 30, 100, ... (1-3-10 progression) up to and including ``total``."""
    steps, k = [0], 1
    while k < total:
        steps.append(k)
        k = k * 3 if str(k)[0] == "1" else k * 10 // 3
    return steps + [total]


def _energy_plot(mean_energy: np.ndarray, hists: dict[str, np.ndarray], path: Path) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    a.plot(np.arange(1, len(mean_energy) + 1), mean_energy)
    a.set_xscale("log")
    a.set_xlabel("Langevin step")
    a.set_ylabel("mean energy")
    a.set_title("energy along the chains from noise")
    every = np.concatenate(list(hists.values()))
    bins = np.linspace(every.min(), every.max() + 1e-6, 41)     # shared bins, densities
    for name, e in hists.items():
        b.hist(e, bins=bins, alpha=0.5, label=name, density=True)
    b.set_xlabel("energy E(x)")
    b.legend()
    b.set_title("energies")
    save_figure(fig, path)
    return path


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    dev = model.device
    files = []

    steps = chain_steps(model.config.sample_steps)
    start = model._uniform(8, generator)
    _, snaps, energy = model.langevin(start, steps[-1], generator, record=steps)
    frames = torch.stack(snaps, 1).flatten(0, 1)          # row = chain, column = step
    files.append(save_png(grid(to_uint8((frames + 1) / 2), nrow=len(steps)),
                          out / "langevin_chain.png", scale=2))

    fresh = model.sample(64, generator=generator)
    buffered = model.from_buffer(64, generator)
    files.append(save_grid(buffered, out / "buffer_samples.png", nrow=8))
    files.append(save_grid(fresh, out / "fresh_samples.png", nrow=8))

    n = min(len(data), 256)
    real = data.batch(torch.arange(n, device=data.x.device))["x"].to(dev) * 2 - 1
    hists = {"real (held out)": model.energy(real),
             "fresh samples": model.energy(fresh * 2 - 1),
             "buffer samples": model.energy(buffered * 2 - 1),
             "uniform noise": model.energy(model._uniform(n, generator))}
    files.append(_energy_plot(energy.cpu().numpy(),
                              {k: v.float().cpu().numpy() for k, v in hists.items()},
                              out / "energies.png"))
    return files
