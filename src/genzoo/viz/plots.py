"""Matplotlib figures written straight to PNG (headless backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
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
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
    else:
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, s=3, alpha=0.8, cmap="tab10")
        handles, _ = sc.legend_elements()
        ax.legend(handles, names or [str(i) for i in range(len(handles))],
                  fontsize=7, markerscale=0.8, loc="best")
    if title:
        ax.set_title(title)
    save_figure(fig, path)
    return path
