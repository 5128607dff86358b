"""Where genzoo keeps what it computes once: ``$GENZOO_CACHE`` (default ``~/.cache/genzoo``),
and the content hash that names cached things by what they hold, not by a file's name."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


def cache_dir() -> Path:
    return Path(os.environ.get("GENZOO_CACHE") or Path.home() / ".cache" / "genzoo").expanduser()


def content_hash(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
