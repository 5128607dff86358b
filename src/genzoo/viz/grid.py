"""Image grids as PNG files (no torchvision)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images float in [0, 1] (N, C, H, W) -> uint8 (N, H, W, C)."""
    x = x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 2, value: int = 255) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (rows*H', cols*W', C) image with ``pad`` pixels between."""
    n, h, w, c = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    out = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), value, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write a uint8 (H, W, C) image; ``scale`` enlarges small images with nearest pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path


def readable_scale(g: np.ndarray, cell: int, longest: int = 1400, target: int = 96) -> int:
    """How many times to enlarge a grid of ``cell``-pixel images (nearest pixels) so that each
    image is about ``target`` pixels (8x8 digits: 8 times) while the longer side stays within
    ``longest``."""
    return max(1, min(8, longest // max(g.shape[:2]), target // cell))


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None,
              title: str | None = None, row_labels: list[str] | None = None) -> Path:
    """Images float in [0, 1] (N, C, H, W) -> a PNG grid, enlarged so small images stay visible;
    with a ``title`` (and labels at the left of the rows) it is drawn as a titled figure."""
    g = grid(to_uint8(x), nrow)
    scale = readable_scale(g, x.shape[2])
    if title is None and row_labels is None:
        return save_png(g, path, scale)
    from genzoo.viz.plots import titled_image
    return titled_image(g, path, title or "", scale, row_labels, cell=x.shape[2])
