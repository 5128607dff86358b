"""What a StyleGAN2 shows once trained (Karras et al. 2019, 2020).

- ``samples.png``: 64 samples; ``memorisation.png/json``: samples beside their nearest training
  images (the GAN chapter's check); ``curves.png``: the losses, the regularisers, the collapse
  indicator and ADA's p, from metrics.jsonl.
- ``style_mixing.png``: three grids. In each, the images in the top row (sources B) lend some
  of their styles to the images in the left column (sources A): the coarse styles (the lowest
  resolutions: pose, shape), the middle ones, or the fine ones (colour, texture); the rest
  stays A's. The same noise is used down each column.
- ``truncation.png``: each row one code, the columns psi = 0 (the mean image, the same in
  every row) to 1 (no truncation).
- ``interpolation.png``: between pairs of codes, spherically in z (top rows) and linearly in w
  (bottom rows); w is the space the paper finds the better behaved.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.viz.diffusion import slerp
from genzoo.viz.gan import curves_if_logged, samples_and_memorisation
from genzoo.viz.grid import to_uint8
from genzoo.viz.plots import plt, save_figure

PANELS = [("losses", ["critic/loss", "generator/loss"]),
          ("lazy regularisers", ["r1/r1", "path_length/path_length", "path_length/pl_mean"]),
          ("collapse indicator: spread of samples / of real images",
           ["critic/spread_ratio", "val/spread_ratio"]),
          ("augmentation probability p", ["critic/augment_p"])]


def style_bands(num_ws: int) -> dict[str, tuple[int, int]]:
    """The ws layers of the coarse, middle and fine styles, by resolution as in the paper
    (coarse: 4-8, middle: 16-32, fine: the rest), shrunk for small images so that each band
    that can exist does. Resolution level b reads ws 2b and 2b + 1."""
    levels = num_ws // 2
    coarse = 1 if levels < 4 else 2
    middle = min(2, max(0, levels - coarse - 1))
    bounds = {"coarse": (0, coarse), "middle": (coarse, coarse + middle),
              "fine": (coarse + middle, levels)}
    return {k: (2 * a, 2 * b) for k, (a, b) in bounds.items() if b > a}


def _seeded(model, seed: int) -> torch.Generator:
    return torch.Generator(model.device).manual_seed(seed)


def _panel(ax, rows: list[np.ndarray], title: str, row_names=None, col_names=None) -> None:
    """A table of uint8 images (each list item one row, (k, H, W, C)) on one axis."""
    h, w, c = rows[0].shape[1:]
    ncol = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + 2), ncol * (w + 2), c), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            canvas[i * (h + 2):i * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = img
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([j * (w + 2) + w / 2 for j in range(len(col_names or []))], col_names or [],
                  fontsize=7)
    ax.set_yticks([i * (h + 2) + h / 2 for i in range(len(row_names or []))], row_names or [],
                  fontsize=7)
    ax.set_title(title, fontsize=9)


@torch.no_grad()
def style_mixing(model, path: Path, generator=None, n_a: int = 4, n_b: int = 5) -> Path:
    """Sources A down the left, B along the top; each band's grid swaps that band of styles."""
    w_a = model.styles(model.prior(n_a, generator))
    w_b = model.styles(model.prior(n_b, generator))
    L = model.G.num_ws
    row = lambda ws: to_uint8(model.synthesize(ws, _seeded(model, 1)))   # noqa: E731
    top = [np.full_like(row(w_b[:1])[0], 255)[None], row(w_b)]
    bands = style_bands(L)
    fig, axes = plt.subplots(1, len(bands), figsize=(3.2 * len(bands), 3.0), dpi=110,
                             squeeze=False)
    for ax, (name, (a, b)) in zip(axes[0], bands.items()):
        rows = [np.concatenate(top)]
        for i in range(n_a):
            ws = model.G.broadcast(w_a[i:i + 1].expand(n_b, -1)).clone()
            ws[:, a:b] = w_b[:, None]                   # B's styles on layers a..b-1
            rows.append(np.concatenate([row(w_a[i:i + 1]), row(ws)]))
        _panel(ax, rows, f"{name} styles (layers {a}-{b - 1}) from the top row")
    return save_figure(fig, path)


@torch.no_grad()
def truncation(model, path: Path, generator=None, rows: int = 6, steps: int = 9) -> Path:
    z = model.prior(rows, generator)
    psis = torch.linspace(0, 1, steps).tolist()
    cols = [to_uint8(model.synthesize(model.styles(z, psi), _seeded(model, 2))) for psi in psis]
    fig, ax = plt.subplots(figsize=(0.8 * steps + 1, 0.8 * rows + 0.6), dpi=110)
    _panel(ax, [np.stack([c[i] for c in cols]) for i in range(rows)],
           "truncation w = w_avg + psi (w - w_avg)", col_names=[f"{p:.2f}" for p in psis])
    ax.set_xlabel("psi", fontsize=8)
    return save_figure(fig, path)


@torch.no_grad()
def interpolation(model, path: Path, generator=None, pairs: int = 3, steps: int = 8) -> Path:
    z0, z1 = model.prior(pairs, generator), model.prior(pairs, generator)
    w0, w1 = model.styles(z0), model.styles(z1)
    ts = torch.linspace(0, 1, steps).tolist()
    in_z = [to_uint8(model.synthesize(model.styles(slerp(z0, z1, t)), _seeded(model, 3)))
            for t in ts]
    in_w = [to_uint8(model.synthesize(torch.lerp(w0, w1, t), _seeded(model, 3))) for t in ts]
    rows = [np.stack([c[i] for c in in_z]) for i in range(pairs)]
    rows += [np.stack([c[i] for c in in_w]) for i in range(pairs)]
    fig, ax = plt.subplots(figsize=(0.8 * steps + 1.2, 0.8 * 2 * pairs + 0.6), dpi=110)
    _panel(ax, rows, "interpolation between the same pairs", row_names=["z"] * pairs + ["w"] * pairs)
    return save_figure(fig, path)


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None,
             train=None) -> list[Path]:
    out, files = samples_and_memorisation(model, data, out, generator, train)
    files.append(style_mixing(model, out / "style_mixing.png", generator))
    files.append(truncation(model, out / "truncation.png", generator))
    files.append(interpolation(model, out / "interpolation.png", generator))
    return files + curves_if_logged(out, PANELS)
