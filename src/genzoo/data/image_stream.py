"""Image folders and archives too large for memory, decoded on demand (see streaming.py).

The listing is the in-memory reader's (:func:`genzoo.data.image_files.arrange`: the same
images, the same fixed shuffled order, the same labels), so a streamed folder trains exactly as
the same folder held in memory. What a one-pass reader learns from every image, a stream fixes
from a probe of the first images instead: their size (unless ``--image-size`` says; an image of
another size is then an error naming it) and their channels (RGB if any probed image is in
colour, unless ``data.channels`` says; a later image is converted to them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.data import DataOptions
from genzoo.data import image_files as I
from genzoo.data.image_adapt import adapt_images
from genzoo.data.random_access import FileIndex, random_access
from genzoo.data.streaming import Field, StreamingDataset, budget, streams, why
from genzoo.errors import GenzooError

PROBE = 64         # images decoded to fix the size and channels of a stream


def maybe_stream(path: Path, subset: str | None, spec: str,
                 options: DataOptions) -> StreamingDataset | None:
    """A streamed dataset of the images in ``path`` when they are to be streamed; None when
    they are to be read into memory (small, or data.storage=memory)."""
    if options.storage == "memory":
        return None
    if not random_access(path):
        if options.storage == "stream" or streams("auto", path.stat().st_size):
            raise GenzooError(f"{spec}: a compressed archive can only be read whole, so it "
                              f"cannot be streamed: unpack it (tar -xf) and use the folder")
        return None
    files = FileIndex(path)
    try:
        names = files.names(want=lambda n: I._image_parts(n) is not None)
    except I._ARCHIVE_ERRORS as e:
        raise GenzooError(f"{spec}: {I._unreadable(path)} ({I._reason(e)})") from None
    found = [(n, I._image_parts(n)) for n in names]
    found = [(n, p) for n, p in found if p is not None]
    order, labels, class_names, note = I.arrange([n for n, _ in found], [p for _, p in found],
                                                 subset, spec)
    entries = [found[i][0] for i in order]
    source = FileImages(files, entries, spec, options)
    n_bytes = len(entries) * int(np.prod(source.shape))
    if not streams(options.storage, n_bytes):
        return None
    reason = why(n_bytes) if n_bytes > budget() else "data.storage=stream"
    notes = [n for n in (note, source.note) if n] + [
        f"streaming {len(entries)} images from disk ({reason}), decoded in DataLoader worker "
        f"processes; `genzoo data pack {spec} OUT` makes an array that reads faster"]
    return StreamingDataset(source, "image", spec, {"x": Field(source.shape, torch.uint8, "image")},
                            y=torch.tensor(labels) if labels is not None else None,
                            class_names=class_names, meta={"order": I.ORDER, "notes": notes},
                            workers=options.workers)


class FileImages:
    """The image files ``entries`` of ``files``, decoded and adapted to one shape."""
    workers = 4

    def __init__(self, files: FileIndex, entries: list[str], spec: str, options: DataOptions):
        self.files, self.entries, self.spec, self.options = files, entries, spec, options
        self.draft = options.image_size if options.resize in ("auto", "resize") else None
        probe = [self._decode(e) for e in entries[:PROBE]]
        self.colour = any(a.ndim == 3 for a in probe)
        self.size = probe[0].shape[:2]
        self.channels = options.channels or (3 if self.colour else 1)
        self.shape = tuple(self._adapt(probe[0], entries[0]).shape)
        self.note = None
        if self.shape[1:] != tuple(self.size) or options.channels:
            _, self.note = adapt_images(np.zeros((1, 3 if self.colour else 1, *self.size),
                                                   np.uint8), options.image_size,
                                          options.resize, options.channels)

    def __len__(self) -> int:
        return len(self.entries)

    def fetch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        out = np.empty((len(positions), *self.shape), np.uint8)
        for row, p in enumerate(positions):
            name = self.entries[p]
            out[row] = self._adapt(self._decode(name), name)
        return {"x": torch.from_numpy(out)}

    def _where(self, name: str) -> str:
        return str(self.files.path / name) if self.files.kind == "folder" else f"{self.spec}: {name}"

    def _decode(self, name: str) -> np.ndarray:
        try:
            data = self.files.read(name)
        except I._ARCHIVE_ERRORS as e:      # a damaged member, a file gone since the listing
            raise GenzooError(f"{self.spec}: {I._unreadable(self.files.path)} ({name}: "
                              f"{I._reason(e)})") from None
        return I._decode(data, self._where(name), self.draft)

    def _adapt(self, a: np.ndarray, name: str) -> torch.Tensor:
        """One decoded image (H, W[, 3]) -> uint8 (C, S, S), as the in-memory reader would."""
        t = torch.from_numpy(np.array(a)).reshape(*a.shape[:2], -1).permute(2, 0, 1)
        if self.colour and t.shape[0] == 1:
            t = t.expand(3, -1, -1)         # grey among colour images: RGB, as in memory
        if self.options.image_size is None and tuple(t.shape[1:]) != tuple(self.size):
            raise GenzooError(f"{self._where(name)}: is {t.shape[2]}x{t.shape[1]}, the first "
                              f"images {self.size[1]}x{self.size[0]}; pass --image-size N to "
                              "bring them to one size")
        x, _ = adapt_images(t[None].contiguous(), self.options.image_size, self.options.resize,
                              self.channels)
        return x[0]
