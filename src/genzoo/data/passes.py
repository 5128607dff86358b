"""One pass over a whole dataset in bounded memory: in order, a batch at a time.

Evaluation (the features of the reference and training items) and derived data (items passed
through a trained run's ``derive()``) read every item of a dataset once. A dataset held in
memory (:class:`~genzoo.data.dataset.TensorDataset`) hands out index batches of its tensors; a
streamed one (:class:`~genzoo.data.streaming.StreamingDataset`) is read ahead by its DataLoader
workers, so only a few batches are ever decoded at once, whatever the dataset's size.

What caches are keyed by, the content hash of each field (:func:`fields_hash`), is computed in
the same pass over the items as stored (uint8 images), chunk by chunk, and is the same for the
same items held in memory or streamed.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from genzoo.data.cache import ContentHash, content_hash

CHUNK = 1024            # items read at a time where only their bytes are wanted


def streamed(ds) -> bool:
    return getattr(ds, "streamed", False)


def _chunks(n: int, size: int) -> list[Tensor]:
    return [torch.arange(s, min(n, s + size)) for s in range(0, n, size)]


def batches(ds, batch_size: int = 256, limit: int | None = None) -> Iterator[dict[str, Tensor]]:
    """The first ``limit`` items (all: None) of ``ds`` as the family sees them (images float in
    [0, 1]), ``batch_size`` at a time, in order, on the dataset's device."""
    n = len(ds) if limit is None else min(limit, len(ds))
    if streamed(ds):
        for _, batch in ds.loader(_chunks(n, batch_size)):
            yield batch
    else:
        for idx in _chunks(n, batch_size):
            yield ds.batch(idx.to(ds.x.device))


def labels(ds) -> Tensor | None:
    """The class label of each item of ``ds`` (a streamed set holds its source's)."""
    if ds.y is None or not streamed(ds):
        return ds.y
    return ds.y[torch.as_tensor(ds.index)]


def stored(ds, chunk: int | None = None) -> Iterator[dict[str, Tensor]]:
    """Every field of every item as stored (uint8 images), labels ``y`` with them, ``chunk``
    items (default CHUNK) at a time, in order."""
    y, chunk = labels(ds), chunk or CHUNK
    if streamed(ds):
        parts = ds.read_ahead(_chunks(len(ds), chunk))
    else:
        parts = ((idx, {"x": ds.x[idx], **{k: v[idx] for k, v in ds.items.items()}})
                 for idx in (i.to(ds.x.device) for i in _chunks(len(ds), chunk)))
    for idx, fields in parts:
        yield {**fields, **({"y": y[idx.to(y.device)]} if y is not None else {})}


def fields_hash(ds) -> dict[str, str]:
    """:func:`~genzoo.data.cache.content_hash` of each field of the whole dataset (``x``, the
    other fields, ``y``), as stored: equal for the same items in memory or streamed."""
    if not streamed(ds):
        y = {"y": ds.y} if ds.y is not None else {}
        return {k: content_hash(v) for k, v in {"x": ds.x, **ds.items, **y}.items()}
    hashes: dict[str, ContentHash] = {}
    for part in stored(ds):
        for k, v in part.items():
            if k not in hashes:
                hashes[k] = ContentHash(v.dtype, (len(ds), *v.shape[1:]))
            hashes[k].update(v)
    return {k: h.hexdigest() for k, h in hashes.items()}


def gather(ds, names) -> dict[str, Tensor]:
    """The fields ``names`` of every item, as stored, each as one tensor (the fields alone are
    held whole: e.g. the captions of a streamed image set, never its images)."""
    names = list(names)
    if not names:
        return {}
    if not streamed(ds):
        return {k: ds.items[k] for k in names}
    parts: dict[str, list[Tensor]] = {k: [] for k in names}
    for part in stored(ds):
        for k in names:
            parts[k].append(part[k])
    return {k: torch.cat(v) for k, v in parts.items()}
