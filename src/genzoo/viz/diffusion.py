"""What a trained diffusion model shows (Ho et al. 2020; Song et al. 2021).

- ``reverse_process.png``: noise turning into images; for each seed a row of x_t at evenly
  spaced steps of the sampler, and under it a row of the network's guess of x_0 at that step.
- ``steps.png``: the same starting noise sampled with 1, 2, 5, 10, 20 and 100 steps, one column
  each; the first rows with deterministic DDIM, the last with DPM-Solver++(2M).
- ``interpolation.png``: spherical interpolation between two noise images (slerp keeps the
  norm a Gaussian sample has; a straight line would pass through too-quiet noise), decoded by
  the deterministic DPM-Solver++ (20 steps): a deterministic map gives nearby images for
  nearby noise.
- conditional models: ``classes.png`` one row per class, ``guidance.png`` the same noise per
  row under guidance scales 0 (unconditional), 1 (conditional), and stronger.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genzoo.viz.grid import save_grid

STEPS = (1, 2, 5, 10, 20, 100)
GUIDANCE = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)


def slerp(z0: torch.Tensor, z1: torch.Tensor, a: float) -> torch.Tensor:
    """Spherical interpolation, per item: sin((1-a) theta)/sin(theta) z0 + sin(a theta)/sin(theta) z1."""
    f0, f1 = z0.flatten(1), z1.flatten(1)
    cos = (f0 * f1).sum(1) / (f0.norm(dim=1) * f1.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))[:, None]
    out = (torch.sin((1 - a) * theta) * f0 + torch.sin(a * theta) * f1) / torch.sin(theta)
    return out.view_as(z0)


def _noise(model, n, generator):
    return torch.randn(n, *model.data.shape, generator=generator, device=model.device)


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    files = []
    label = 0 if model.num_classes else None

    # the reverse process: x_t and the x0 guess at 10 evenly spaced steps of 50
    seeds, steps, cols = 4, 50, 10
    record: list = []
    model.sample(seeds, generator, sampler="ddim", steps=steps, eta=0.0, label=label,
                 noise=_noise(model, seeds, generator), record=record)
    pick = torch.linspace(0, steps - 1, cols).round().long().tolist()
    rows = []
    for i in range(seeds):
        for key in ("x", "x0"):
            rows += [model.denormalise(record[k][key][i:i + 1]).clamp(0, 1) for k in pick]
    files.append(save_grid(torch.cat(rows), out / "reverse_process.png", nrow=cols))

    # the same seeds with more and more steps
    z = _noise(model, 4, generator)
    tiles = []
    for sampler in ("ddim", "dpm++2m"):
        cols_ = [model.sample(len(z), sampler=sampler, steps=k, label=label, noise=z) for k in STEPS]
        tiles += [c[i:i + 1] for i in range(len(z)) for c in cols_]
    files.append(save_grid(torch.cat(tiles), out / "steps.png", nrow=len(STEPS)))

    # slerp between pairs of noise images
    pairs, n_interp = 3, 10
    z0, z1 = _noise(model, pairs, generator), _noise(model, pairs, generator)
    path = torch.stack([slerp(z0, z1, a) for a in torch.linspace(0, 1, n_interp).tolist()], 1)
    x = model.sample(pairs * n_interp, sampler="dpm++2m", steps=20, label=label,
                     noise=path.flatten(0, 1))
    files.append(save_grid(x, out / "interpolation.png", nrow=n_interp))

    if model.num_classes:
        k = min(model.num_classes, 10)
        per = 8
        y = torch.arange(k, device=model.device).repeat_interleave(per)
        x = model.sample(k * per, generator, sampler="dpm++2m", steps=20, label=y)
        files.append(save_grid(x, out / "classes.png", nrow=per))
        z = _noise(model, k, generator)
        y = torch.arange(k, device=model.device)
        cols_ = [model.sample(k, sampler="dpm++2m", steps=20, label=y, guidance=w, noise=z)
                 for w in GUIDANCE]
        x = torch.stack(cols_, 1).flatten(0, 1)
        files.append(save_grid(x, out / "guidance.png", nrow=len(GUIDANCE)))
    return files
