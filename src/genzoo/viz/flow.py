"""What a normalizing flow shows once trained (Foster, ch. 6).

Four panels side by side: the data x, its image f(x) in latent space (which training makes
look like a standard normal), samples z ~ N(0, I), and their images g(z) = f^-1(z) in data
space (which training makes look like the data). Over training: the sample grids the Trainer
wrote from a fixed seed (RUN/samples/step_*.npz), side by side in one picture.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.viz.grid import grid, save_png, to_uint8
from genzoo.viz.plots import plt, save_figure

PANELS = ("data x", "f(x) in z space", "samples z ~ N(0, I)", "g(z) in data space")


def _latent_as_image(z: torch.Tensor) -> torch.Tensor:
    """z ~ N(0, 1) drawn in [0, 1]: 0.5 + z / 6 (three standard deviations to either edge)."""
    return (0.5 + z / 6).clamp(0, 1)


def _points_panels(panels: list[np.ndarray], path: Path) -> Path:
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), dpi=100)
    for ax, pts, title, color in zip(axes, panels, PANELS, ("C0", "C1", "C1", "C0")):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, color=color)
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
    save_figure(fig, path)
    return path


def _over_training(samples_dir: Path, out: Path, image: bool) -> Path | None:
    """The fixed-seed sample grids of the run, in step order (at most 8, evenly spread)."""
    files = sorted(samples_dir.glob("step_*.npz"))
    if not files:
        return None
    files = [files[i] for i in np.linspace(0, len(files) - 1, min(8, len(files))).round().astype(int)]
    files = list(dict.fromkeys(files))
    steps = [int(f.stem.split("_")[1]) for f in files]
    arrays = [np.load(f)["x"] for f in files]
    if image:   # one row of 8 samples per step
        rows = np.concatenate([a[:8] for a in arrays])
        return save_png(grid(rows, nrow=min(8, len(arrays[0]))), out, scale=2)
    fig, axes = plt.subplots(1, len(arrays), figsize=(3 * len(arrays), 3), dpi=100,
                             squeeze=False, sharex=True, sharey=True)
    for ax, pts, step in zip(axes[0], arrays, steps):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, color="C1")
        ax.set_title(f"step {step}")
    save_figure(fig, out)
    return out


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    image = model.data.modality == "image"
    n = min(len(data), 16 if image else 2000)
    x = data.batch(torch.arange(n, device=data.x.device))["x"].to(model.device)
    if image:
        x = (x * 255).round().add(0.5).div(256)     # bin centres: a deterministic dequantisation
    z_data, _ = model.f(x)
    z = torch.randn(z_data.shape, generator=generator, device=model.device)
    x_gen, _ = model.g(z)
    files = []
    if image:
        panels = [x, _latent_as_image(z_data), _latent_as_image(z), x_gen.clamp(0, 1)]
        side = int(np.ceil(np.sqrt(n)))
        tiles = [grid(to_uint8(p), nrow=side) for p in panels]
        gap = np.full((tiles[0].shape[0], 8, tiles[0].shape[2]), 255, np.uint8)
        row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
        files.append(save_png(row, out / "flow_panels.png", scale=2))
    else:
        files.append(_points_panels([p.cpu().numpy() for p in (x, z_data, z, x_gen)],
                                    out / "flow_panels.png"))
    over = _over_training(out.parent / "samples", out / "samples_over_training.png", image)
    if over is not None:
        files.append(over)
    return files
