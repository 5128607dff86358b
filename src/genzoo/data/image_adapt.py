"""Images as uint8 tensors (N, C, H, W): size and channel adaptation, arrays made images,
and the in-memory image dataset. Every image reader ends here (data/images.py and its kin), and
families may call :func:`adapt_images` too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genzoo.data import DataOptions
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError

_RESIZE_MODES = ("auto", "pad", "resize", "crop")


def adapt_images(x, image_size: int | None = None, resize: str = "auto",
                 channels: int | None = None) -> tuple[torch.Tensor, str | None]:
    """Adapt a uint8 batch (N, C, H, W) (tensor or array) to ``channels`` and a square side.

    Channels: grey <-> RGB (ITU-R 601 luma, as Pillow); a 4th (alpha) channel is dropped.
    ``resize``: ``pad`` centres the image in zeros, ``crop`` centre-crops, ``resize``
    centre-crops to a square (nothing is stretched) and resizes with antialiased bicubic
    filtering, ``auto`` pads a square image up to 25% smaller than the target (MNIST
    28 -> 32, the classic recipe) and resizes otherwise. Returns ``(x, note)``; ``note`` is
    a sentence for the run log, or None when nothing changed.
    """
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"adapt_images wants uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    if resize not in _RESIZE_MODES:
        raise GenzooError(f"data.resize={resize!r}: must be one of {', '.join(_RESIZE_MODES)}")
    if channels not in (None, 1, 3):
        raise GenzooError(f"data.channels={channels}: must be 1 (grey) or 3 (RGB)")
    notes = []
    if x.shape[1] in (2, 4):
        x = x[:, :x.shape[1] - 1]
        notes.append("dropped the alpha channel")
    if channels is not None and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
            notes.append("grey -> RGB")
        else:
            x = _chunked(_luma, x)
            notes.append("RGB -> grey")
    h, w = x.shape[2:]
    s = image_size
    if s is not None and (h, w) != (s, s):
        size = f"{w}x{h} -> {s}x{s}"
        if resize == "pad" or (resize == "auto" and h == w and s - h <= s / 4 and h < s):
            if h > s or w > s:
                raise GenzooError(f"cannot pad {w}x{h} images to {s}x{s}: they are larger; "
                                  "use --set data.resize=crop or resize")
            top, left = (s - h) // 2, (s - w) // 2
            x = F.pad(x, (left, s - w - left, top, s - h - top))
            rule = (" (the recipe's rule; override with --set data.resize=resize)"
                    if resize == "auto" else "")
            notes.append(f"padded {size} with zeros{rule}")
        elif resize == "crop":
            if h < s or w < s:
                raise GenzooError(f"cannot crop {w}x{h} images to {s}x{s}: they are smaller; "
                                  "use --set data.resize=pad or resize")
            x = _center_crop(x, s)
            notes.append(f"centre-cropped {size}")
        else:
            x = _center_crop(x, min(h, w))
            x = _chunked(lambda b: _resize(b, s), x)
            crop = "centre-cropped to a square and " if h != w else ""
            rule = " (override with --set data.resize=pad or crop)" if resize == "auto" else ""
            notes.append(f"{crop}resized {size}{rule}")
    return x, "; ".join(notes) or None


def _chunked(fn, x: torch.Tensor, n: int = 2048) -> torch.Tensor:
    """fn over slices of the batch, so float copies of a large set never exist at once."""
    return torch.cat([fn(x[i:i + n]) for i in range(0, len(x), n)])


def _luma(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.to(torch.int32).unbind(1)
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).to(torch.uint8)[:, None]


def _center_crop(x: torch.Tensor, s: int) -> torch.Tensor:
    top, left = (x.shape[2] - s) // 2, (x.shape[3] - s) // 2
    return x[:, :, top:top + s, left:left + s]


def _resize(x: torch.Tensor, s: int) -> torch.Tensor:
    # antialias=True makes downsampling average over the covered area (no aliasing)
    y = F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False, antialias=True)
    return y.round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------- building the dataset

def image_dataset(x, source: str, options: DataOptions, y=None, class_names=None,
                  meta: dict | None = None) -> TensorDataset:
    """A TensorDataset from uint8 images (N, C, H, W), adapted to ``options``."""
    x, note = adapt_images(x, options.image_size, options.resize, options.channels)
    x = x.contiguous()
    meta = dict(meta or {})
    if note:
        meta.setdefault("notes", []).append(note)
    if y is not None:
        y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    return TensorDataset(x=x, modality="image", source=source, y=y,
                         class_names=class_names, meta=meta)


def to_uint8_images(a: np.ndarray, where: str) -> np.ndarray:
    """An array of images as uint8 (N, C, H, W); float data in [0,1] or [0,255] is scaled."""
    given = a.shape
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] in (1, 3, 4) and a.shape[3] not in (1, 3, 4):
        pass                                   # already (N, C, H, W)
    elif a.ndim == 4 and a.shape[3] in (1, 3, 4):
        a = a.transpose(0, 3, 1, 2)
    else:
        raise GenzooError(f"{where}: array of shape {a.shape} is not images "
                          "(N,H,W), (N,H,W,C) or (N,C,H,W) with C = 1, 3 or 4")
    if a.shape[0] == 0:
        raise GenzooError(f"{where}: no images in it (an array of shape {given})")
    if 0 in a.shape[2:]:
        raise GenzooError(f"{where}: images of size {a.shape[3]}x{a.shape[2]}: nothing to learn")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a, dtype=np.uint8) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise GenzooError(f"{where}: array of dtype {a.dtype} is not images")
    if a.size and not np.isfinite(a).all():
        raise GenzooError(f"{where}: the images contain NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    scale = 255.0 if np.issubdtype(a.dtype, np.floating) and hi <= 1.0 + 1e-3 else 1.0
    if lo < -1e-3 or hi > 255.0 + 1e-3:
        raise GenzooError(f"{where}: values range over [{lo:g}, {hi:g}]; images must be "
                          "in [0, 1] or [0, 255] (rescale them, e.g. (x + 1) / 2 for [-1, 1])")
    return np.ascontiguousarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8))


def _labels_array(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    ok = y.ndim == 1 and (np.issubdtype(y.dtype, np.integer)
                          or (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)))
    if not ok or (y.size and y.min() < 0):
        raise GenzooError(f"{where}: labels must be non-negative integers, one per image "
                          f"(got {y.dtype} of shape {y.shape})")
    if len(y) != n:
        raise GenzooError(f"{where}: {len(y)} labels for {n} images")
    return y.astype(np.int64)
