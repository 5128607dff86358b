"""Reference statistics, cached per dataset and feature space.

Extracting features of thousands of real images costs more than everything else in an
evaluation, and the real images do not change between runs. So the features of a reference
set are stored once in ``$GENZOO_CACHE/reference`` (default ``~/.cache/genzoo``), under a key
made of the SHA-256 of the data's content (its bytes, shape and dtype, not its file name) and
the extractor's fingerprint (its name and, for learned ones, a hash of its weights). A changed
dataset or extractor gets a new key; a stale entry can never be read by mistake.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import torch

from genzoo.data.cache import cache_dir, content_hash  # noqa: F401 (re-exported)
from genzoo.data.passes import fields_hash


def tensors_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over named tensors (e.g. a state dict), in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(content_hash(tensors[k]).encode())
    return h.hexdigest()


def reference_features(x, fingerprint: str,
                       compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, bool]:
    """(features of the reference items ``x``, whether they came from the cache).

    ``x``: a tensor of items, or a dataset (keyed by its items as stored, read a batch at a time
    if it is streamed). ``compute()`` is called only on a miss; its result is written
    atomically (temp + rename).
    """
    from safetensors.torch import load_file, save_file
    content = (content_hash(x) if isinstance(x, torch.Tensor)
               else "dataset:" + fields_hash(x)["x"])
    key = hashlib.sha256(f"{content}|{fingerprint}".encode()).hexdigest()[:32]
    path = cache_dir() / "reference" / f"{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["features"], True
        except Exception:       # a damaged cache entry is recomputed, never trusted
            path.unlink(missing_ok=True)
    features = compute().detach().float().cpu().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"features": features}, str(tmp),
              metadata={"fingerprint": fingerprint, "items": str(len(x))})
    tmp.replace(path)
    return features, False
