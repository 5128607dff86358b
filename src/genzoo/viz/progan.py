"""What a ProGAN shows once trained (Karras et al. 2018).

- ``samples.png``: 64 samples at the resolution reached; ``memorisation.png/json``: samples
  beside their nearest training images (the GAN chapter's check).
- ``growth.png``: one row per resolution reached, the same codes z in every column: each row
  is the generator's output at that level (its own toRGB layer), enlarged to the full side.
  The lower levels stopped being shown to D when the next one faded in, but they still lay
  out the coarse structure the higher ones refine.
- ``curves.png``: the losses, the critic's view (Wasserstein estimate, gradient penalty,
  drift), the collapse indicator, and the schedule (resolution and alpha) against the step.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genzoo.viz.gan import curves_if_logged, samples_and_memorisation
from genzoo.viz.grid import grid, to_uint8
from genzoo.viz.plots import plt, save_figure

PANELS = [("losses", ["critic/loss", "generator/loss"]),
          ("the critic's view", ["critic/wasserstein", "critic/gradient_penalty", "critic/drift"]),
          ("collapse indicator: spread of samples / of real images",
           ["critic/spread_ratio", "val/spread_ratio"]),
          ("the schedule: resolution and fade-in alpha", ["critic/resolution", "critic/alpha"])]


@torch.no_grad()
def growth(model, path: Path, generator=None, columns: int = 8) -> Path:
    """One row per level reached (4x4 up), the same z in every row."""
    level, _ = model.stage()
    z = model.prior(columns, generator)
    rows = [to_uint8(model.sample_at(columns, l, z=z)) for l in range(level + 1)]
    c = rows[0].shape[3]
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.9 * columns, 1.0 * len(rows) + 0.3),
                             dpi=110, squeeze=False)
    for l, (ax, row) in enumerate(zip(axes[:, 0], rows)):
        strip = grid(row, nrow=columns)
        ax.imshow(strip[..., 0] if c == 1 else strip, cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([strip.shape[0] / 2], [f"{model.side(l)}x{model.side(l)}"], fontsize=8)
    axes[0, 0].set_title("one row per resolution reached, the same z in each column", fontsize=9)
    return save_figure(fig, path)


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None,
             train=None) -> list[Path]:
    out, files = samples_and_memorisation(model, data, out, generator, train)
    files.append(growth(model, out / "growth.png", generator))
    return files + curves_if_logged(out, PANELS)
