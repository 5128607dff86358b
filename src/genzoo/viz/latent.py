"""What a latent-variable image model shows once trained (Foster, ch. 3).

Reconstructions under their originals; the codes of the data as a scatter coloured by label; a
grid of images decoded over the latent plane; samples; interpolation between two encoded
images; latent arithmetic: the direction (mean code of a class) - (mean code of the rest),
added to codes in steps. Each picture is titled with what it shows and the training step.

The pictures are made from the held-out images; when fewer than ``MIN_ITEMS`` are held out
(a tiny folder, ``data.holdout=1``) the training images serve instead, and the titles say so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.viz.grid import save_grid
from genzoo.viz.plots import scatter

MIN_ITEMS = 32


def _codes(model, x, bs=256):
    return torch.cat([model.encode(x[i:i + bs]) for i in range(0, len(x), bs)])


def _plane(z: torch.Tensor) -> tuple[np.ndarray, str]:
    """2-d view of codes: the codes themselves, or their first two principal components."""
    if z.shape[1] == 2:
        return z.cpu().numpy(), "latent space"
    if len(z) < 3:
        return z[:, :2].cpu().numpy(), f"latent space ({z.shape[1]}-d, first two coordinates)"
    zc = z - z.mean(0)
    _, _, v = torch.pca_lowrank(zc, q=2, center=False)
    return (zc @ v).cpu().numpy(), f"latent space ({z.shape[1]}-d, first two principal components)"


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None, train=None,
             step: int | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    at = f" (step {step})" if step is not None else ""
    which = "held-out"
    if len(data) < MIN_ITEMS and train is not None and train is not data:
        which = f"training (only {len(data)} held out)"
        data = train
    dev = model.device
    n = min(len(data), 2000)
    b = data.batch(torch.arange(n, device=data.x.device))
    x = b["x"].to(dev)
    y = b.get("y")
    files = []

    k = min(16, n)  # reconstructions: originals on top, reconstructions below
    rec = model.reconstruct(x[:k])
    files.append(save_grid(torch.cat([x[:k], rec]), out / "reconstructions.png", nrow=k,
                           row_labels=["image", "reconstructed"],
                           title=f"Reconstructions{at}: {k} {which} images, each encoded and "
                                 "decoded again"))

    z = _codes(model, x)
    pts, title = _plane(z)
    names = data.class_names
    files.append(scatter(pts, out / "latent_scatter.png",
                         labels=y.cpu().numpy() if y is not None else None,
                         title=f"{title[0].upper()}{title[1:]}{at}: codes of {n} {which} images"
                               + (", coloured by class" if y is not None else ""),
                         names=names))

    if z.shape[1] == 2:     # decode a grid over the plane the codes occupy
        lo, hi = torch.quantile(z, 0.01, 0), torch.quantile(z, 0.99, 0)
        side = 15
        u = torch.linspace(0, 1, side, device=dev)
        gy, gx = torch.meshgrid(u, u, indexing="ij")
        zz = torch.stack([lo[0] + gx.flatten() * (hi[0] - lo[0]),
                          hi[1] - gy.flatten() * (hi[1] - lo[1])], 1)
        files.append(save_grid(model.decode(zz), out / "latent_grid.png", nrow=side,
                               title=f"The latent plane decoded{at}: a {side}x{side} grid of "
                                     "codes over where the data's codes lie (z1 left to right, "
                                     "z2 bottom to top), each decoded to an image"))

    files.append(save_grid(model.sample(64, generator=generator), out / "samples.png", nrow=8,
                           title=f"64 samples{at}: random codes decoded to images"))

    pairs = min(4, n // 2)
    if pairs:
        steps = torch.linspace(0, 1, 10, device=dev)[:, None]
        rows = [model.decode(z[2 * i] + steps * (z[2 * i + 1] - z[2 * i])) for i in range(pairs)]
        files.append(save_grid(torch.cat(rows), out / "interpolation.png", nrow=10,
                               title=f"Interpolation{at}: each row decodes 10 evenly spaced "
                                     f"codes on the line from the code of one {which} image "
                                     "(left) to that of another (right)"))

    if y is not None and len(torch.unique(y)) > 1:
        files.append(_arithmetic(model, y.to(dev), z, names, out, at))
    return files


def _arithmetic(model, y, z, names, out: Path, at: str) -> Path:
    """For each of up to 4 classes c: the code of an image not in c plus t * (mean_c - mean_rest),
    t = 0 (the image itself, decoded) to 3, left to right."""
    rows, labels = [], []
    alphas = torch.linspace(0, 3, 8, device=z.device)[:, None]
    for c in torch.unique(y)[:4]:
        direction = z[y == c].mean(0) - z[y != c].mean(0)
        i = int((y != c).nonzero()[0, 0])
        rows.append(model.decode(z[i] + alphas * direction))
        name = names[int(c)] if names else str(int(c))
        start = names[int(y[i])] if names else str(int(y[i]))
        labels.append(f"a {start}, toward {name}")
    return save_grid(torch.cat(rows), out / "latent_arithmetic.png", nrow=8, row_labels=labels,
                     title=f"Latent arithmetic{at}: each row starts from the code of an image of "
                           "another class and adds t times the direction of class c (the mean "
                           "code of c minus the mean code of the rest), t = 0 to 3 from left "
                           "to right: the image turns into a c")
