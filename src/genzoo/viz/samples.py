"""Write a batch of samples in the form that suits its modality.

Images: ``STEM.png`` (a grid) and ``STEM.npz`` (``x``: uint8 N,H,W,C). Points: a scatter plot
and the raw array. Other modalities register their writer with :func:`writer`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np

from genzoo.models.base import DataInfo
from genzoo.viz.grid import save_grid, to_uint8

_WRITERS: dict[str, Callable] = {}


def writer(modality: str):
    def deco(fn):
        _WRITERS[modality] = fn
        return fn
    return deco


@writer("image")
def _images(x, info: DataInfo, stem: Path, **extra) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, x=to_uint8(x), **{k: np.asarray(v) for k, v in extra.items()})
    return [save_grid(x, stem.with_suffix(".png"), title=_over_training(stem, len(x))), npz]


def _over_training(stem: Path, n: int) -> str | None:
    """The title of a grid drawn during training (``step_00000500``); None for other grids."""
    m = re.fullmatch(r"step_(\d+)", stem.name)
    return (f"{n} samples at step {int(m.group(1))}, drawn with the same seed at every step "
            "to watch training") if m else None


@writer("points")
def _points(x, info: DataInfo, stem: Path, **extra) -> list[Path]:
    from genzoo.viz.plots import scatter
    stem.parent.mkdir(parents=True, exist_ok=True)
    x = x.detach().cpu().numpy()
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, x=x, **{k: np.asarray(v) for k, v in extra.items()})
    return [scatter(x, stem.with_suffix(".png")), npz]


def save_samples(x, info: DataInfo, stem: str | Path, **extra) -> list[Path]:
    """Write samples ``x`` of data like ``info`` next to ``stem``; returns the files written."""
    stem = Path(stem)
    if stem.suffix in (".png", ".npz", ".txt"):
        stem = stem.with_suffix("")
    if info.modality not in _WRITERS:
        import importlib
        try:   # a modality module may register its writer on import
            importlib.import_module(f"genzoo.viz.{info.modality}")
        except ModuleNotFoundError:
            pass
    return _WRITERS[info.modality](x, info, stem, **extra)
