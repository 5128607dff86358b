"""Code maps (the codebook indices of a VQ model, (N, h, w) int64) written as samples:
``STEM.npz`` holds them as they are, ``STEM.png`` draws each map with one fixed colour per
code index, so that structure and repetition show even without the decoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.models.base import DataInfo
from genzoo.viz.grid import grid, save_png
from genzoo.viz.samples import writer


def palette(K: int) -> np.ndarray:
    """K fixed colours (uint8, K x 3), the same for every run."""
    return np.random.default_rng(0).integers(0, 256, (K, 3), dtype=np.uint8)


@writer("codes")
def _codes(x, info: DataInfo, stem: Path, **extra) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    k = torch.as_tensor(x).long().cpu()
    shape = tuple(info.meta.get("code_shape") or k.shape[1:])
    k = k.reshape(len(k), *shape).numpy()
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, x=k, **{n: np.asarray(v) for n, v in extra.items()})
    K = int(info.meta.get("codebook_size") or k.max() + 1)
    g = grid(palette(K)[k.clip(0, K - 1)])
    return [save_png(g, stem.with_suffix(".png"), max(1, min(16, 512 // max(g.shape[:2])))), npz]
