"""The file formats of the named public datasets (:mod:`genzoo.data.sources`): an (images,
labels) pair of idx files (MNIST, Fashion-MNIST) and the CIFAR-10 archive of Python pickles,
read by an unpickler that lets out arrays and plain data only."""
from __future__ import annotations

import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct      # how pickles rebuild arrays
except ImportError:                                       # numpy < 2
    from numpy.core.multiarray import _reconstruct

from genzoo.data import DataOptions
from genzoo.data.dataset import TensorDataset
from genzoo.data.images import idx_dataset, image_dataset
from genzoo.errors import GenzooError


def idx_builder(class_names: list[str] | None):
    """build() for an (images, labels) pair of idx files."""
    def build(paths: list[Path], options: DataOptions, spec: str) -> TensorDataset:
        return idx_dataset(paths[0], paths[1], spec, options, class_names=class_names)
    return build


class ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and nothing else: a
    pickle naming any other global (the way pickles run code) is refused."""

    def find_class(self, module, name):
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_cifar_batches(path: Path, spec: str, split: str = "train"):
    """(x uint8 (N, 3, 32, 32), y, class names) from the official cifar-10-python.tar.gz.

    The archive holds Python 2 pickles of dicts: ``data`` (10000, 3072) uint8 in
    channel-major order, ``labels`` (list of int); ``batches.meta`` has ``label_names``.
    """
    want = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    found, names = {}, None
    try:
        with tarfile.open(path, "r|*") as tf:
            for m in tf:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and (base in want or base == "batches.meta"):
                    d = ArraysOnly(tf.extractfile(m), encoding="latin1").load()
                    if base == "batches.meta":
                        names = [str(n) for n in d["label_names"]]
                    else:
                        found[base] = d
    except (tarfile.TarError, EOFError, zlib.error, OSError, pickle.UnpicklingError,
            KeyError, TypeError, ValueError) as e:
        raise GenzooError(f"{path}: not a readable CIFAR-10 archive ({e})") from None
    missing = [b for b in want if b not in found]
    if missing:
        raise GenzooError(f"{path}: not a CIFAR-10 archive: {', '.join(missing)} missing")
    try:
        x = np.concatenate([np.asarray(found[b]["data"], np.uint8) for b in want])
        y = np.concatenate([np.asarray(found[b]["labels"], np.int64) for b in want])
        x = x.reshape(-1, 3, 32, 32)
    except (KeyError, ValueError) as e:
        raise GenzooError(f"{path}: unexpected CIFAR-10 batch contents ({e})") from None
    return x, y, names


def build_cifar(paths: list[Path], options: DataOptions, spec: str) -> TensorDataset:
    x, y, names = load_cifar_batches(paths[0], spec)
    return image_dataset(x, spec, options, y=y, class_names=names)
