"""Images held as arrays: numpy's .npz / .npy, and MNIST's idx files (see data/images.py for
the spec forms); arrays keep their order.
"""
from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from genzoo.data import DataOptions
from genzoo.data.dataset import TensorDataset
from genzoo.data.image_adapt import _labels_array, image_dataset, to_uint8_images
from genzoo.data.image_files import _reason
from genzoo.errors import GenzooError


def _npz_is_ours(path: Path) -> bool:
    """An .npz of plain arrays (object arrays, e.g. music sequences, belong to others)."""
    with zipfile.ZipFile(path) as zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        if set(names) & {"x", "images", "x_train"}:
            return True
        for n in names:
            with zf.open(n + ".npy") as f:
                fmt = np.lib.format
                version = fmt.read_magic(f)
                read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                if read(f)[2].hasobject:
                    return False
    return True


_X_KEYS = (("x", "y"), ("images", "labels"), ("x_train", "y_train"))


def _read_arrays(path: Path, subset: str | None, spec: str, options: DataOptions) -> TensorDataset:
    try:
        if path.name.lower().endswith(".npy"):
            return image_dataset(to_uint8_images(np.load(path), spec), spec, options)
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.files)
            pairs = [(f"x_{subset}", f"y_{subset}")] if subset else _X_KEYS
            found = [p for p in pairs if p[0] in keys]
            if not found:
                want = " or ".join(repr(p[0]) for p in pairs)
                raise GenzooError(f"{spec}: no image array: expected key {want}; "
                                  f"found {', '.join(keys) or 'no arrays'}")
            if len(found) > 1 and found[0][0] != "x":
                raise GenzooError(f"{spec}: both {found[0][0]!r} and {found[1][0]!r} are there; "
                                  "say which with SPEC:NAME (reads x_NAME) or rename to 'x'")
            xk, yk = found[0]
            x = to_uint8_images(data[xk], f"{spec} [{xk}]")
            y = _labels_array(data[yk], len(x), f"{spec} [{yk}]") if yk in keys else None
            names = None
            if y is not None and "class_names" in keys:
                names = [str(s) for s in data["class_names"]]
                if len(y) and y.max() >= len(names):
                    raise GenzooError(f"{spec}: label {y.max()} but only {len(names)} class_names")
            return image_dataset(x, spec, options, y=y, class_names=names)
    except GenzooError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise GenzooError(f"{spec}: cannot read the arrays ({_reason(e)})") from None


# ---------------------------------------------------------------- MNIST idx files

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzip'd) as an array: 2 zero bytes, a type code, the number of
    dimensions, then each dimension as a big-endian uint32, then the data, big-endian."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise GenzooError(f"{path}: cannot read it: corrupt gzip data? ({_reason(e)})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise GenzooError(f"{path}: not an idx file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim, start = raw[3], 4 + 4 * raw[3]
    if len(raw) < start:
        raise GenzooError(f"{path}: truncated idx file (the header is cut short)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape))
    if len(raw) - start != count * dtype.itemsize:
        cut = "truncated idx file" if len(raw) - start < count * dtype.itemsize else "idx file too long"
        raise GenzooError(f"{path}: {cut}: the header says {shape} ({count * dtype.itemsize} bytes) "
                          f"but {len(raw) - start} bytes of data follow")
    return np.frombuffer(raw, dtype, count, start).reshape(shape).astype(dtype.newbyteorder("="))


def _find_labels_file(images: Path) -> Path | None:
    stem = re.sub(r"\.gz$", "", images.name)
    name = re.sub(r"images([-.])idx3", r"labels\1idx1", stem)
    if name == stem:
        return None
    return next((p for p in (images.with_name(name + ".gz"), images.with_name(name))
                 if p.exists()), None)


def idx_dataset(images: Path, labels: Path | None, source: str, options: DataOptions,
                class_names: list[str] | None = None) -> TensorDataset:
    """Images from an idx file, with labels from a second idx file when given."""
    a = read_idx(images)
    if a.ndim == 1:
        raise GenzooError(f"{images}: a 1-d idx file (labels?); pass the images file instead")
    x = to_uint8_images(a, str(images))
    y = None
    if labels is not None:
        y = read_idx(labels)
        if y.ndim != 1 or len(y) != len(x):
            raise GenzooError(f"{labels}: {len(y)} labels for the {len(x)} images in {images.name}")
        y = _labels_array(y, len(x), str(labels))
    return image_dataset(x, source, options, y=y, class_names=class_names,
                         meta={"labels_file": str(labels)} if labels else None)
