"""Matplotlib figures written straight to PNG (headless backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import textwrap  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path: str | Path, **savefig) -> Path:
    """Lay out, write and close a figure (closing matters: pyplot keeps every open one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, **savefig)
    plt.close(fig)
    return path


def scatter(points: np.ndarray, path: str | Path, labels: np.ndarray | None = None,
            title: str | None = None, names: list[str] | None = None) -> Path:
    """2-d points (N, 2), coloured by integer label when given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    size = max(3.0, min(16.0, 3000 / max(len(points), 1)))     # few points: bigger dots
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.6)
    else:
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, s=size, alpha=0.8, cmap="tab10")
        handles, _ = sc.legend_elements()
        ax.legend(handles, names or [str(i) for i in range(len(handles))],
                  fontsize=7, markerscale=0.8, loc="best")
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=10)
    save_figure(fig, path)
    return path


def titled_image(image: np.ndarray, path: str | Path, title: str, scale: int = 1,
                 row_labels: list[str] | None = None, cell: int | None = None,
                 pad: int = 2) -> Path:
    """A uint8 (H, W, C) picture (a grid) at ``scale`` screen pixels per pixel, under a wrapped
    ``title``; ``row_labels`` are written left of the grid rows (``cell`` high, ``pad`` apart)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = image.shape[0] * scale, image.shape[1] * scale
    label_w = 130 if row_labels else 0
    fig_w = max(w + label_w + 20, 420)
    lines = textwrap.wrap(title, max(30, int(fig_w / 7.2))) if title else []
    title_h = 16 * len(lines) + (14 if lines else 4)
    fig = plt.figure(figsize=(fig_w / 100, (h + title_h + 6) / 100), dpi=100)
    left = (fig_w - w - label_w) / 2 + label_w
    ax = fig.add_axes([left / fig_w, 6 / (h + title_h + 6), w / fig_w, h / (h + title_h + 6)])
    shown = image[..., 0] if image.shape[-1] == 1 else image
    ax.imshow(shown, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if lines:
        fig.text(0.5, 1 - 6 / (h + title_h + 6), "\n".join(lines), ha="center", va="top",
                 fontsize=10)
    for i, label in enumerate(row_labels or []):
        y = pad + i * ((cell or 0) + pad) + (cell or 0) / 2
        ax.text(-6, y, label, ha="right", va="center", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
