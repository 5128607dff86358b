"""Where genzoo keeps what it computes once: ``$GENZOO_CACHE`` (default ``~/.cache/genzoo``),
and the content hash that names cached things by what they hold, not by a file's name."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


def cache_dir() -> Path:
    return Path(os.environ.get("GENZOO_CACHE") or Path.home() / ".cache" / "genzoo").expanduser()


class ContentHash:
    """SHA-256 of a tensor's dtype, shape and bytes, its parts (along the first axis) given in
    order: a tensor too large to hold whole hashes as it would whole."""

    def __init__(self, dtype: torch.dtype, shape: tuple[int, ...]):
        self.h = hashlib.sha256(f"{dtype}{tuple(shape)}".encode())

    def update(self, part: torch.Tensor) -> None:
        self.h.update(part.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def content_hash(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    h = ContentHash(x.dtype, tuple(x.shape))
    h.update(x)
    return h.hexdigest()
