"""Images: folders, archives, arrays and MNIST idx files -> uint8 tensors (N, C, H, W).

Spec forms (archives are read in place; nothing is extracted to disk):

- ``photos/``: png/jpg/jpeg/bmp/gif/webp files, searched recursively. Images in sub-folders
  are labelled by sub-folder (``photos/cat/1.png`` -> class "cat"); a flat folder has no labels.
- ``photos.tar`` / ``.tar.gz`` / ``.tgz`` / ``.zip``: the same inside an archive. A folder that
  wraps everything (``flowers64/<class>/x.png``) is looked through. When images sit at
  ``<group>/<class>/<img>`` (CIFAR's ``train/cat/0001.jpg``), the class is the folder directly
  above the image and the groups are merged; choose one with the suffix below.
- ``SPEC:NAME`` keeps only the top-level folder NAME of a folder or archive
  (``cifar10_jpg.tar:train``), or reads the arrays ``x_NAME``/``y_NAME`` of an .npz.
- ``.npz`` (``x`` and optional ``y``; or ``images``/``labels``, or ``x_train``/``y_train``) and
  ``.npy`` (just x): arrays (N,H,W), (N,H,W,C) or (N,C,H,W); uint8, or float in [0,1] or [0,255].
- ``*-images-idx3-ubyte[.gz]`` (MNIST); labels come from ``*-labels-idx1-ubyte[.gz]`` beside it.

Images from folders and archives are put in a fixed shuffled order (seed 0), so a held-out
suffix (``TensorDataset.split``) covers every class; arrays and idx files keep their order.
Size and channels are adapted by :func:`adapt_images`, which families may call too.

This module reads the spec and picks the reader; the readers live beside it: image_files.py
(folders and archives), image_arrays.py (.npz/.npy, idx), image_stream.py (a folder or archive
too large for memory), image_adapt.py (adaptation and the dataset). Their names stay
importable from here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from genzoo.data import DataOptions, builtin, reader
from genzoo.data.dataset import TensorDataset
# the readers' names, importable from here as before (captions, music, sources, tests)
from genzoo.data.image_adapt import (_labels_array, adapt_images, image_dataset,  # noqa: F401
                                     to_uint8_images)
from genzoo.data.image_arrays import (_find_labels_file, _npz_is_ours, _read_arrays,  # noqa: F401
                                      idx_dataset, read_idx)
from genzoo.data.image_files import (_ARCHIVE_ERRORS, ARCHIVE_EXTS, IMAGE_EXTS, ORDER,  # noqa: F401
                                     _decode, _image_parts, _iter_files, _looks_like_images,
                                     _reason, _unreadable, arrange, read_files)
from genzoo.errors import GenzooError


def split_spec(path) -> tuple[Path, str | None]:
    """``Path("x.tar:train")`` -> ``(Path("x.tar"), "train")``; a real path is left whole."""
    path = Path(path)
    head, sep, name = str(path).rpartition(":")
    if not path.exists() and sep and head and name and "/" not in name and Path(head).exists():
        return Path(head), name
    return path, None


def _kind(path: Path) -> str | None:
    path, _ = split_spec(path)
    name = path.name.lower()
    try:
        if path.is_dir() or name.endswith(ARCHIVE_EXTS):
            return "files" if _looks_like_images(path) else None
        if name.endswith(".npz"):
            return "npz" if _npz_is_ours(path) else None
        if name.endswith(".npy"):
            return "npy"
        if re.search(r"idx\d[-.]?ubyte(\.gz)?$", name):
            return "idx"
    except _ARCHIVE_ERRORS:
        return "files" if not name.endswith(".npz") else "npz"  # let the reader say what is wrong
    return None


@reader(lambda p: _kind(p) is not None)
def read_images(path, options: DataOptions | None = None) -> TensorDataset:
    """Images from a folder, archive, .npz/.npy or idx file; ``path`` may end in ``:NAME``."""
    options = options or DataOptions()
    spec = str(path)
    real, subset = split_spec(path)
    if not real.exists():
        raise GenzooError(f"{spec}: no such file or folder")
    kind = _kind(path)
    if subset is not None and kind not in ("files", "npz"):
        raise GenzooError(f"{spec}: ':{subset}' selects a folder in a folder or archive, or "
                          "arrays x_NAME in an .npz; this is neither")
    if kind == "files":
        return _read_files(real, subset, spec, options)
    if kind in ("npz", "npy"):
        return _read_arrays(real, subset, spec, options)
    if kind == "idx":
        return idx_dataset(real, _find_labels_file(real), spec, options)
    raise GenzooError(f"{spec}: not an image folder, archive, .npz/.npy or idx file")


def _read_files(path: Path, subset: str | None, spec: str, options: DataOptions) -> TensorDataset:
    from genzoo.data import image_stream
    streamed = image_stream.maybe_stream(path, subset, spec, options)
    if streamed is not None:        # too large for memory (or data.storage=stream)
        return streamed
    return read_files(path, subset, spec, options)[0]


# ---------------------------------------------------------------- builtins

@builtin("digits")
def digits(options: DataOptions) -> TensorDataset:
    """scikit-learn's 8x8 handwritten digits: 1,797 grey images, values 0..16 -> 0..255."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return image_dataset(x, "digits", options, y=d.target,
                         class_names=[str(i) for i in range(10)])
