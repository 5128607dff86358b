"""Sequences of frames (rollouts: played, dreamed, reconstructed) as picture strips and GIFs.

A strip shows rows of sequences with one frame every few steps; a GIF plays the sequences side
by side (Pillow, no video codec needed). ``genzoo sample`` of a world model writes both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genzoo.models.base import DataInfo
from genzoo.viz.grid import grid, save_png, to_uint8
from genzoo.viz.samples import writer


def _uint8(rows: list[torch.Tensor]) -> np.ndarray:
    """Rows of sequences float (T, C, H, W) in [0, 1] -> uint8 (R, T, H, W, C), cut to the
    shortest row; smaller frames (a small V's) are enlarged to the largest, pixel by pixel."""
    T = min(len(r) for r in rows)
    C, H, W = (max(r.shape[i] for r in rows) for i in (1, 2, 3))
    fit = [F.interpolate(r[:T].float(), size=(H, W), mode="nearest") for r in rows]
    return np.stack([to_uint8(r.expand(-1, C, -1, -1)) for r in fit])


def save_strip(rows: list[torch.Tensor], path: str | Path, columns: int = 16) -> Path:
    """One row per sequence, ``columns`` frames evenly spaced over time."""
    x = _uint8(rows)
    cols = np.unique(np.linspace(0, x.shape[1] - 1, min(columns, x.shape[1])).round().astype(int))
    g = grid(x[:, cols].reshape(-1, *x.shape[2:]), nrow=len(cols))
    return save_png(g, path, scale=max(1, min(4, 1024 // g.shape[1])))


def save_gif(rows: list[torch.Tensor], path: str | Path, ms: int = 80, scale: int = 2) -> Path:
    """The sequences side by side, played in time (one GIF frame per step)."""
    x = _uint8(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = []
    for t in range(x.shape[1]):
        g = grid(x[:, t], nrow=len(x))
        img = Image.fromarray(g[..., 0] if g.shape[-1] == 1 else g)
        images.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path


@writer("rollout")
def _rollouts(x, info: DataInfo, stem: Path, **extra) -> list[Path]:
    """Samples (n, T, C, H, W): STEM.png (a strip per sequence), STEM.gif (the first 8 played
    side by side) and STEM.npz (x: uint8 n, T, H, W, C)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    rows = list(x.detach().cpu())
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, x=_uint8(rows), **{k: np.asarray(v) for k, v in extra.items()})
    return [save_strip(rows[:16], stem.with_suffix(".png")),
            save_gif(rows[:8], stem.with_suffix(".gif")), npz]
