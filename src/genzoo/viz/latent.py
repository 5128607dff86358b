"""What a latent-variable image model shows once trained (Foster, ch. 3).

Reconstructions next to originals; the codes of the data as a scatter coloured by label; a
grid of images decoded over the latent plane; samples; interpolation between two encoded
images; latent arithmetic: the direction (mean code of a class) - (mean code of the rest),
added to codes in steps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.viz.grid import grid, save_grid, save_png, to_uint8
from genzoo.viz.plots import scatter


def _codes(model, x, bs=256):
    return torch.cat([model.encode(x[i:i + bs]) for i in range(0, len(x), bs)])


def _plane(z: torch.Tensor) -> tuple[np.ndarray, str]:
    """2-d view of codes: the codes themselves, or their first two principal components."""
    if z.shape[1] == 2:
        return z.cpu().numpy(), "latent space"
    zc = z - z.mean(0)
    _, _, v = torch.pca_lowrank(zc, q=2, center=False)
    return (zc @ v).cpu().numpy(), f"latent space ({z.shape[1]}-d, first two principal components)"


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    dev = model.device
    n = min(len(data), 2000)
    b = data.batch(torch.arange(n, device=data.x.device))
    x = b["x"].to(dev)
    y = b.get("y")
    files = []

    k = min(16, n)  # reconstructions: originals on top, reconstructions below
    rec = model.reconstruct(x[:k])
    files.append(save_grid(torch.cat([x[:k], rec]), out / "reconstructions.png", nrow=k))

    z = _codes(model, x)
    pts, title = _plane(z)
    names = data.class_names
    files.append(scatter(pts, out / "latent_scatter.png",
                         labels=y.cpu().numpy() if y is not None else None, title=title,
                         names=names))

    if z.shape[1] == 2:     # decode a grid over the plane the codes occupy
        lo, hi = torch.quantile(z, 0.01, 0), torch.quantile(z, 0.99, 0)
        side = 15
        u = torch.linspace(0, 1, side, device=dev)
        gy, gx = torch.meshgrid(u, u, indexing="ij")
        zz = torch.stack([lo[0] + gx.flatten() * (hi[0] - lo[0]),
                          hi[1] - gy.flatten() * (hi[1] - lo[1])], 1)
        files.append(save_grid(model.decode(zz), out / "latent_grid.png", nrow=side))

    files.append(save_grid(model.sample(64, generator=generator), out / "samples.png"))

    steps = torch.linspace(0, 1, 10, device=dev)[:, None]   # interpolation, 4 pairs
    rows = [model.decode(z[2 * i] + steps * (z[2 * i + 1] - z[2 * i])) for i in range(min(4, n // 2))]
    files.append(save_grid(torch.cat(rows), out / "interpolation.png", nrow=10))

    if y is not None and len(torch.unique(y)) > 1:
        files.append(_arithmetic(model, x, y.to(dev), z, names, out))
    return files


def _arithmetic(model, x, y, z, names, out: Path) -> Path:
    """For each of up to 4 classes c: codes of images not in c plus t * (mean_c - mean_rest)."""
    rows = []
    alphas = torch.linspace(0, 3, 8, device=z.device)[:, None]
    for c in torch.unique(y)[:4]:
        direction = z[y == c].mean(0) - z[y != c].mean(0)
        start = z[(y != c).nonzero()[0, 0]]
        rows.append(model.decode(start + alphas * direction))
    g = grid(to_uint8(torch.cat(rows)), nrow=8)
    scale = max(1, min(4, 256 // max(g.shape[:2])))
    return save_png(g, out / "latent_arithmetic.png", scale)
