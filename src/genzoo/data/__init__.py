"""Data specs -> datasets.

A data spec is a builtin name (``digits``, ``moons``, ...), a named public set
(``fashion-mnist``, downloaded once with a checksum), a path, or ``SCHEME:REST`` for data that a
module makes (``gym:CarRacing-v3?episodes=100``: rollouts recorded from an environment). Each
modality module registers the builtins, schemes and file kinds it reads with :func:`builtin`,
:func:`scheme` and :func:`reader`; :func:`load` picks one.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError


@dataclass
class DataOptions:
    """How to turn raw data into the tensors a family wants. ``None`` means "as it is"."""
    image_size: int | None = None     # square side length for images
    resize: str = "auto"              # auto | pad | resize | crop
    channels: int | None = None       # 1 (grey) or 3 (RGB) for images
    holdout: float = 0.1              # fraction (< 1) or count of items held out, from the end
    max_items: int | None = None      # use only the first N items
    storage: str = "auto"             # auto | memory | stream: held in memory, or read from disk
                                      # as the loop goes (auto: stream what would take more than
                                      # a quarter of the free memory; see streaming.py)
    workers: int | None = None        # DataLoader processes decoding a stream; None: its default
    # text
    template: str | None = None       # record template for .csv/.jsonl text
    tokenizer: str | None = None      # char | word | bpe; None: char for text, bpe for captions
    vocab_size: int = 10000
    context: int = 80                 # tokens per training window (captions: at most this many)
    # music (data/music): the representation and what to do with the files
    music: str = "tokens"             # tokens | events | grid | pianoroll
    transpose: bool = False           # add the training pieces in the other 11 keys
    bad_files: str = "skip"           # skip | refuse a music file that is not music / has no notes
    bars: int = 2                     # piano rolls: bars of 16 sixteenths per item
    pitch_range: str = "0-83"         # piano rolls: MIDI pitches LOW-HIGH kept, or "auto"
    # sequences (rollouts): None = one item per sequence; "frames" = one item per time step
    view: str | None = None
    # captioned images
    captions: str | None = None       # caption template(s) for a labelled image set, with
                                      # {class}: "a photo of a {class}" ("|" between several)

    def validate(self):
        """The numbers within their ranges, before any data is read or any folder written (the
        readers check the named choices: resize, channels, tokenizer)."""
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        if not self.holdout >= 0:
            raise ValueError(f"holdout must be a fraction in [0, 1) or a count >= 1, "
                             f"got {self.holdout}")
        if self.holdout >= 1 and not float(self.holdout).is_integer():
            raise ValueError(f"holdout {self.holdout}: a count of items must be whole "
                             "(or give a fraction below 1)")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")


_BUILTINS: dict[str, Callable[[DataOptions], TensorDataset]] = {}
_SCHEMES: dict[str, Callable[[str, DataOptions], TensorDataset]] = {}
_READERS: list[tuple[Callable[[Path], bool], Callable[[Path, DataOptions], TensorDataset]]] = []
# modules that register builtins/readers when imported; a missing one is simply skipped
_MODULES = ["genzoo.data.packed", "genzoo.data.rollouts", "genzoo.data.images",
            "genzoo.data.sources", "genzoo.data.points", "genzoo.data.text", "genzoo.data.music",
            "genzoo.data.captions", "genzoo.data.shapes"]
_loaded = False


def builtin(name: str):
    """Register ``fn(options) -> TensorDataset`` under a builtin name."""
    def deco(fn):
        _BUILTINS[name] = fn
        return fn
    return deco


def scheme(prefix: str):
    """Register ``fn(rest, options) -> TensorDataset`` for specs ``PREFIX:REST``."""
    def deco(fn):
        _SCHEMES[prefix] = fn
        return fn
    return deco


def reader(accepts: Callable[[Path], bool], first: bool = False):
    """Register ``fn(path, options) -> TensorDataset`` for the paths ``accepts`` says yes to;
    ``first``: asked before the readers registered so far (a more particular kind of a
    folder, e.g. images with captions, before plain images)."""
    def deco(fn):
        if first:
            _READERS.insert(0, (accepts, fn))
        else:
            _READERS.append((accepts, fn))
        return fn
    return deco


def _ensure_loaded():
    global _loaded
    if not _loaded:
        for m in _MODULES:
            try:
                importlib.import_module(m)
            except ModuleNotFoundError as e:
                if e.name != m:
                    raise
        _loaded = True


def builtin_names() -> list[str]:
    _ensure_loaded()
    return sorted(_BUILTINS)


def load(spec: str, options: DataOptions | None = None) -> TensorDataset:
    """The dataset named by ``spec``: builtin/named set first, then a path."""
    _ensure_loaded()
    options = options or DataOptions()
    prefix, colon, rest = spec.partition(":")
    if spec in _BUILTINS:
        ds = _BUILTINS[spec](options)
    elif colon and prefix in _SCHEMES and not Path(spec).exists():
        ds = _SCHEMES[prefix](rest, options)
    else:
        path = Path(spec).expanduser()
        # "archive.tar:train" names a part of a file or folder; the reader splits it off
        whole = Path(spec.rpartition(":")[0]).expanduser() if ":" in spec else path
        if not (path.exists() or whole.exists()):
            raise GenzooError(
                f"{spec}: no such file or folder, and not a builtin dataset "
                f"(builtins: {', '.join(builtin_names())})")
        for accepts, fn in _READERS:
            if accepts(path if path.exists() else whole):
                ds = fn(path, options)
                break
        else:
            raise GenzooError(f"{spec}: don't know how to read this kind of file")
    if options.view is not None and ds.meta.get("view") != options.view:
        raise GenzooError(f"{spec}: has no {options.view!r} view (data.view applies to "
                          "sequences, such as rollouts: frames)")
    if options.captions is not None:
        from genzoo.data.captions import templated
        ds = templated(ds, options)
    if options.max_items is not None:
        ds = ds.head(options.max_items)
    return ds


__all__ = ["DataOptions", "TensorDataset", "load", "builtin", "scheme", "reader", "builtin_names"]
