"""The in-memory dataset every family trains on.

Small datasets live as one tensor on the training device, so a batch is an index into it and
the data pipeline never limits the step rate. Images are stored as uint8 (N, C, H, W) and
handed to families as float in [0, 1]; other modalities store what their family consumes
(token ids, points, piano rolls).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from genzoo.errors import GenzooError


@dataclass
class TensorDataset:
    x: Tensor                       # images: uint8 (N,C,H,W); points: float32 (N,D); text: int64 (N,T)
    modality: str                   # "image" | "points" | "text" | "music"
    source: str                     # the data spec it came from, for messages and reports
    y: Tensor | None = None         # int64 class labels (N,), when the data has them
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)   # modality extras (tokenizer, notes applied, ...)
    items: dict[str, Tensor] = field(default_factory=dict)  # more per-item tensors (e.g. "mask")

    def __post_init__(self):
        if len(self.x) == 0:
            raise GenzooError(f"{self.source}: the dataset is empty")
        if self.y is not None and len(self.y) != len(self.x):
            raise GenzooError(
                f"{self.source}: {len(self.y)} labels for {len(self.x)} items")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def source_spec(self) -> str:
        """The data spec it came from (what a streamed dataset answers too)."""
        return self.source

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one item."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.y.max()) + 1 if self.y is not None else 0

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Items ``idx`` as the family sees them: images as float in [0, 1]."""
        x = self.x[idx]
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        out = {"x": x}
        if self.y is not None:
            out["y"] = self.y[idx]
        for k, v in self.items.items():
            out[k] = v[idx]
        return out

    def to(self, device) -> "TensorDataset":
        y = self.y.to(device) if self.y is not None else None
        return replace(self, x=self.x.to(device), y=y,
                       items={k: v.to(device) for k, v in self.items.items()})

    def head(self, n: int) -> "TensorDataset":
        """The first ``n`` items (views: a memory-mapped array stays on disk)."""
        return self._slice(slice(0, n), self.source)

    def _slice(self, part: slice, source: str) -> "TensorDataset":
        y = self.y[part] if self.y is not None else None
        return replace(self, x=self.x[part], y=y, source=source,
                       items={k: v[part] for k, v in self.items.items()})

    def subset(self, idx: Tensor, source: str | None = None) -> "TensorDataset":
        y = self.y[idx] if self.y is not None else None
        return replace(self, x=self.x[idx], y=y, source=source or self.source,
                       items={k: v[idx] for k, v in self.items.items()})

    def split(self, holdout: float | int) -> tuple["TensorDataset", "TensorDataset | None"]:
        """(train, held-out). ``holdout`` is a fraction (< 1) or a count, taken from the end.

        Taking the last items (not a random draw) keeps the split reproducible and lets a
        user name it exactly, e.g. "the last 615 images". ``meta["copies"]`` leading items
        (augmented copies of training items) are never held out nor counted in a fraction.
        """
        n = len(self)
        # items made from others (music transposed to all keys) lead the set; a fraction is
        # of the original items, and none of the made ones is ever held out
        made = int(self.meta.get("copies", 0))
        k = int(round(holdout * (n - made))) if 0 < holdout < 1 else int(holdout)
        if k <= 0:
            return self, None
        if k >= n - made:
            raise GenzooError(f"{self.source}: holdout {holdout} leaves no training items (of {n})")
        return (self._slice(slice(0, n - k), f"{self.source}[train]"),
                self._slice(slice(n - k, n), f"{self.source}[held-out]"))
