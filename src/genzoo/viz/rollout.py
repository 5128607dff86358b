"""Sequences of frames (rollouts: played, dreamed, reconstructed) as picture strips and videos.

What a world model (Ha and Schmidhuber 2018) shows: real frames, V's reconstructions and M's
dream from the same start. A strip shows rows of sequences with one frame every few steps; a
video plays the sequences side by side, one video frame per step: a GIF (Pillow, no codec
needed) and, beside it, an MP4 (H.264 through PyAV, the optional ``av`` package of
``genzoo[world]``; without it one line says so and the GIF stands alone). ``genzoo sample`` of
a world model writes them all.
"""
from __future__ import annotations

import functools
import sys
from fractions import Fraction
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


def _steps(rows: list[torch.Tensor], scale: int) -> list[np.ndarray]:
    """The sequences side by side, one uint8 (H, W, C) picture per step, enlarged ``scale``
    times pixel by pixel."""
    x = _uint8(rows)
    return [grid(x[:, t], nrow=len(x)).repeat(scale, 0).repeat(scale, 1) for t in range(x.shape[1])]


def save_gif(rows: list[torch.Tensor], path: str | Path, ms: int = 80, scale: int = 2) -> Path:
    """The sequences side by side, played in time (one GIF frame per step)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(g[..., 0] if g.shape[-1] == 1 else g) for g in _steps(rows, scale)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path


@functools.cache
def _pyav():
    """The ``av`` module, or None after saying once, in one line, that MP4 needs it."""
    try:
        import av
    except ImportError:
        print("genzoo: no MP4 videos: PyAV is not installed (pip install 'genzoo[world]'); "
              "writing GIFs only", file=sys.stderr)
        return None
    return av


def save_mp4(rows: list[torch.Tensor], path: str | Path, ms: int = 80, scale: int = 2
             ) -> Path | None:
    """The sequences side by side as an H.264 MP4 (yuv420p, so any player opens it; sides
    padded white to even sizes), one video frame per step of ``ms`` milliseconds. None, with
    one line said once, when PyAV is not installed."""
    av = _pyav()
    if av is None:
        return None
    steps = _steps(rows, scale)
    H, W, C = steps[0].shape
    pad = ((0, H % 2), (0, W % 2), (0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    try:
        with av.open(str(tmp), mode="w") as out:
            stream = out.add_stream(codec, rate=Fraction(1000, ms))
            stream.width, stream.height, stream.pix_fmt = W + W % 2, H + H % 2, "yuv420p"
            for g in steps:
                rgb = np.pad(np.broadcast_to(g, (H, W, 3)), pad, constant_values=255)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(stream.encode())                   # flush the frames the encoder holds
        tmp.replace(path)                              # a video is whole or absent
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_videos(rows: list[torch.Tensor], path: str | Path, ms: int = 80, scale: int = 2
                ) -> list[Path]:
    """``path`` (.gif) and, where PyAV is installed, the same video beside it as .mp4."""
    path = Path(path)
    mp4 = save_mp4(rows, path.with_suffix(".mp4"), ms, scale)
    return [save_gif(rows, path, ms, scale)] + ([mp4] if mp4 else [])


@writer("rollout")
def _rollouts(x, info: DataInfo, stem: Path, **extra) -> list[Path]:
    """Samples (n, T, C, H, W): STEM.png (a strip per sequence), STEM.gif and STEM.mp4 (the
    first 8 played side by side; MP4 with PyAV) and STEM.npz (x: uint8 n, T, H, W, C)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    rows = list(x.detach().cpu())
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, x=_uint8(rows), **{k: np.asarray(v) for k, v in extra.items()})
    return [save_strip(rows[:16], stem.with_suffix(".png")),
            *save_videos(rows[:8], stem.with_suffix(".gif")), npz]
