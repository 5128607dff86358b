"""Data larger than memory: items read from disk as the loop asks for them.

Small datasets live in memory (:class:`TensorDataset`: a batch is an index into one tensor on
the training device, the fast path). A dataset whose decoded size exceeds a share of this
machine's memory (a quarter of what is free, divided among the training processes on it) is
a :class:`StreamingDataset` instead: a *source* reads its items on demand (image files in a
folder or an uncompressed archive, decoded in DataLoader worker processes; the memory-mapped
arrays that ``genzoo data pack`` writes; a packed token stream cut into windows), and the
dataset answers what the loop and the families ask of a TensorDataset (len, shape, classes,
``batch(idx)``, ``split``). ``data.storage`` = auto | memory | stream forces either path.

The order stays the loop's. The Trainer hands :meth:`StreamingDataset.loader` the very index
batches its ``Batches`` will give (a function of seed, epoch and position; under DDP each
rank's shard of them), the workers decode them ahead, in order, and a resumed run starts a
new loader at the saved position: a streamed run resumes exactly, and trains exactly as the
same data held in memory would.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from genzoo.errors import GenzooError

STORAGE = ("auto", "memory", "stream")
SHARE = 4          # in-memory data may take 1/SHARE of the free memory


def available_memory() -> int:
    """Bytes of memory free for new data on this machine (MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def budget() -> int:
    """Bytes one training process may hold in memory as data."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return available_memory() // SHARE // max(1, local)


def streams(storage: str, n_bytes: int) -> bool:
    """Whether data of ``n_bytes`` (decoded) is streamed, as ``data.storage`` says."""
    if storage not in STORAGE:
        raise GenzooError(f"data.storage={storage!r}: must be one of {', '.join(STORAGE)}")
    if storage != "auto":
        return storage == "stream"
    return n_bytes > budget()


def why(n_bytes: int) -> str:
    return (f"{n_bytes / 2**30:.2f} GiB decoded is more than 1/{SHARE} of the free memory "
            f"({budget() / 2**30:.2f} GiB a process)")


def default_workers(wanted: int) -> int:
    """DataLoader workers: as asked, but leaving a core to the training process."""
    return max(0, min(wanted, (os.cpu_count() or 1) - 1))


@dataclass
class Field:
    """One field of a streamed item: its shape, dtype and modality."""
    shape: tuple[int, ...]
    dtype: torch.dtype
    modality: str = "tensor"


@dataclass
class StreamingDataset:
    """Items of ``source`` (``len(source)``; ``source.fetch(positions) -> {"x": ..., field:
    ...}`` in the stored representation, e.g. uint8 images), the positions ``index`` of it,
    labels ``y`` in memory. Batches come out as from a TensorDataset: images float in [0, 1]."""
    source: Any
    modality: str
    source_name: str
    fields: dict[str, Field]                    # "x" and the other fields of an item
    y: Tensor | None = None                     # int64 labels of the source's items
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)
    index: np.ndarray | None = None             # the source's items in this dataset
    workers: int | None = None                  # DataLoader workers; None: the source's own
    device: torch.device = torch.device("cpu")
    streamed = True

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.source))
        if len(self.index) == 0:
            raise GenzooError(f"{self.source_name}: the dataset is empty")

    # -- what a TensorDataset answers -----------------------------------------------------
    @property
    def source_spec(self) -> str:
        return self.source_name

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.fields["x"].shape

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.y.max()) + 1 if self.y is not None else 0

    @property
    def items(self) -> dict[str, Tensor]:
        """The other fields, as storage-free tensors (shape and dtype only) for DataInfo."""
        return {k: torch.empty((0, *f.shape), dtype=f.dtype, device="meta")
                for k, f in self.fields.items() if k != "x"}

    @property
    def x(self) -> "LazyItems":
        return LazyItems(self)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Items ``idx`` read now, in this process (held-out batches, pictures)."""
        idx = torch.as_tensor(idx).cpu()
        return self._finish(self.source.fetch(self.index[idx.numpy()]), idx)

    def to(self, device) -> "StreamingDataset":
        return replace(self, device=torch.device(device))

    def subset(self, idx, source: str | None = None) -> "StreamingDataset":
        idx = np.asarray(torch.as_tensor(idx).cpu())
        return replace(self, index=self.index[idx], source_name=source or self.source_name)

    def head(self, n: int) -> "StreamingDataset":
        return replace(self, index=self.index[:n])

    def split(self, holdout: float | int):
        n = len(self)
        k = int(round(holdout * n)) if 0 < holdout < 1 else int(holdout)
        if k <= 0:
            return self, None
        if k >= n:
            raise GenzooError(f"{self.source_name}: holdout {holdout} leaves no training items "
                              f"(of {n})")
        return (replace(self, index=self.index[:n - k], source_name=f"{self.source_name}[train]"),
                replace(self, index=self.index[n - k:], source_name=f"{self.source_name}[held-out]"))

    # -- the loop's batches, decoded ahead --------------------------------------------------
    def loader(self, batches: Iterable[Tensor]) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """(indices, batch) for each index batch of ``batches``, in order, read ahead by
        DataLoader worker processes."""
        for idx, stored in self.read_ahead(batches):
            yield idx, self._finish(stored, idx)

    def read_ahead(self, batches: Iterable[Tensor]) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """(indices, fields as stored: uint8 images) for each index batch, in order."""
        from torch.utils.data import DataLoader
        workers = self.workers if self.workers is not None else default_workers(
            getattr(self.source, "workers", 1))
        # its own generator: a DataLoader draws its workers' base seed from the global one,
        # which would shift the training noise by when the loader starts (on resume, too)
        # workers forked where the platform can: they share the open memory maps and the
        # source's readers instead of pickling them (spawn, and Python 3.14's forkserver default)
        context = "fork" if workers and "fork" in mp.get_all_start_methods() else None
        loader = DataLoader(_Fetch(self.source, self.index), sampler=batches, batch_size=None,
                            num_workers=workers, pin_memory=self.device.type == "cuda",
                            prefetch_factor=4 if workers else None, multiprocessing_context=context,
                            generator=torch.Generator().manual_seed(0))
        it = iter(loader)
        while True:
            try:
                got = next(it)
            except StopIteration:
                return
            except Exception as e:       # a worker's error arrives wrapped in its traceback
                raise _one_line(e) from None
            yield got

    def _finish(self, stored: dict[str, Tensor], idx: Tensor) -> dict[str, Tensor]:
        cuda = self.device.type == "cuda"
        out = {k: v.to(self.device, non_blocking=cuda) for k, v in stored.items()}
        if out["x"].dtype == torch.uint8:
            out["x"] = out["x"].float().div_(255.0)
        if self.y is not None:
            out["y"] = self.y[torch.as_tensor(self.index[idx.numpy()])].to(self.device)
        return {"x": out.pop("x"), **({"y": out.pop("y")} if "y" in out else {}), **out}


class _Fetch:
    """A map-style dataset whose items are whole batches: ``[idx] -> (idx, fields)``."""

    def __init__(self, source, index: np.ndarray):
        self.source, self.index = source, index

    def __getitem__(self, idx: Tensor):
        return idx, self.source.fetch(self.index[idx.numpy()])

    def __len__(self) -> int:
        return len(self.index)


class LazyItems:
    """``dataset.x`` of a streamed dataset: its device, dtype, shape and single items, read on
    demand (what pictures and messages ask of ``x``); never the whole array."""

    def __init__(self, ds: StreamingDataset):
        self.ds = ds
        self.device = ds.device
        self.dtype = ds.fields["x"].dtype
        self.shape = (len(ds), *ds.shape)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        positions = np.arange(len(self.ds))[i]
        got = self.ds.source.fetch(self.ds.index[np.atleast_1d(positions)])["x"]
        return got[0] if np.ndim(positions) == 0 else got


def _one_line(e: Exception) -> Exception:
    """A DataLoader worker's GenzooError as one line (the worker's traceback dropped)."""
    text = str(e)
    found = re.findall(r"GenzooError: (.+)", text)
    return GenzooError(found[-1].strip()) if found else e


# -- sources --------------------------------------------------------------------------------
class ArraySource:
    """Items of (memory-mapped) arrays, first axis = items: ``arrays`` name -> array."""
    workers = 1                 # one process reading ahead hides the disk's latency

    def __init__(self, arrays: dict[str, np.ndarray], transform=None):
        self.arrays, self.transform = arrays, transform

    def __len__(self) -> int:
        return len(self.arrays["x"])

    def fetch(self, positions: np.ndarray) -> dict[str, Tensor]:
        order = np.argsort(positions)       # read the file forwards, then restore the order
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        out = {k: torch.from_numpy(np.ascontiguousarray(a[positions[order]][back]))
               for k, a in self.arrays.items()}
        if self.transform is not None:
            out["x"] = self.transform(out["x"])
        return out


class TokenWindows:
    """Windows of ``context + 1`` tokens of a token stream, overlapping by one (item i starts
    at i * context; the last may be shorter: PAD-filled, mask False), as text.windows cuts."""
    workers = 0                 # a slice of the stream: nothing to decode

    def __init__(self, tokens: np.ndarray, context: int, pad: int):
        self.tokens, self.T, self.pad = tokens, context, pad

    def __len__(self) -> int:
        return max(1, -(-(len(self.tokens) - 1) // self.T))

    def fetch(self, positions: np.ndarray) -> dict[str, Tensor]:
        T = self.T
        x = np.full((len(positions), T + 1), self.pad, dtype=np.int64)
        mask = np.zeros((len(positions), T + 1), dtype=bool)
        for row, i in enumerate(positions):
            w = self.tokens[i * T:i * T + T + 1]
            x[row, :len(w)] = w
            mask[row, :len(w)] = True
        return {"x": torch.from_numpy(x), "mask": torch.from_numpy(mask)}
