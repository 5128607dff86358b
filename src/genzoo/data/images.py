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
"""
from __future__ import annotations

import gzip
import io
import re
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from genzoo.data import DataOptions, archives, builtin, reader
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
ARCHIVE_EXTS = (".tar", ".tar.gz", ".tgz", ".zip")
# files of other modalities: a folder/archive holding these and no image is left to their reader
_OTHER_EXTS = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".krn", ".abc",
               ".txt", ".csv", ".jsonl", ".json")
_RESIZE_MODES = ("auto", "pad", "resize", "crop")
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


# ---------------------------------------------------------------- size and channel adaptation

def adapt_images(x, image_size: int | None = None, resize: str = "auto",
                 channels: int | None = None) -> tuple[torch.Tensor, str | None]:
    """Adapt a uint8 batch (N, C, H, W) (tensor or array) to ``channels`` and a square side.

    Channels: grey <-> RGB (ITU-R 601 luma, as Pillow); a 4th (alpha) channel is dropped.
    ``resize``: ``pad`` centres the image in zeros, ``crop`` centre-crops, ``resize``
    centre-crops to a square (nothing is stretched) and resizes with antialiased bicubic
    filtering, ``auto`` pads a square image up to 25% smaller than the target (MNIST
    28 -> 32, the classic recipe) and resizes otherwise. Returns ``(x, note)``; ``note`` is
    a sentence for the run log, or None when nothing changed.
    """
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"adapt_images wants uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    if resize not in _RESIZE_MODES:
        raise GenzooError(f"data.resize={resize!r}: must be one of {', '.join(_RESIZE_MODES)}")
    if channels not in (None, 1, 3):
        raise GenzooError(f"data.channels={channels}: must be 1 (grey) or 3 (RGB)")
    notes = []
    if x.shape[1] in (2, 4):
        x = x[:, :x.shape[1] - 1]
        notes.append("dropped the alpha channel")
    if channels is not None and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
            notes.append("grey -> RGB")
        else:
            x = _chunked(_luma, x)
            notes.append("RGB -> grey")
    h, w = x.shape[2:]
    s = image_size
    if s is not None and (h, w) != (s, s):
        size = f"{w}x{h} -> {s}x{s}"
        if resize == "pad" or (resize == "auto" and h == w and s - h <= s / 4 and h < s):
            if h > s or w > s:
                raise GenzooError(f"cannot pad {w}x{h} images to {s}x{s}: they are larger; "
                                  "use --set data.resize=crop or resize")
            top, left = (s - h) // 2, (s - w) // 2
            x = F.pad(x, (left, s - w - left, top, s - h - top))
            rule = (" (the recipe's rule; override with --set data.resize=resize)"
                    if resize == "auto" else "")
            notes.append(f"padded {size} with zeros{rule}")
        elif resize == "crop":
            if h < s or w < s:
                raise GenzooError(f"cannot crop {w}x{h} images to {s}x{s}: they are smaller; "
                                  "use --set data.resize=pad or resize")
            x = _center_crop(x, s)
            notes.append(f"centre-cropped {size}")
        else:
            x = _center_crop(x, min(h, w))
            x = _chunked(lambda b: _resize(b, s), x)
            crop = "centre-cropped to a square and " if h != w else ""
            rule = " (override with --set data.resize=pad or crop)" if resize == "auto" else ""
            notes.append(f"{crop}resized {size}{rule}")
    return x, "; ".join(notes) or None


def _chunked(fn, x: torch.Tensor, n: int = 2048) -> torch.Tensor:
    """fn over slices of the batch, so float copies of a large set never exist at once."""
    return torch.cat([fn(x[i:i + n]) for i in range(0, len(x), n)])


def _luma(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.to(torch.int32).unbind(1)
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).to(torch.uint8)[:, None]


def _center_crop(x: torch.Tensor, s: int) -> torch.Tensor:
    top, left = (x.shape[2] - s) // 2, (x.shape[3] - s) // 2
    return x[:, :, top:top + s, left:left + s]


def _resize(x: torch.Tensor, s: int) -> torch.Tensor:
    # antialias=True makes downsampling average over the covered area (no aliasing)
    y = F.interpolate(x.float(), size=(s, s), mode="bicubic", align_corners=False, antialias=True)
    return y.round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------- building the dataset

def image_dataset(x, source: str, options: DataOptions, y=None, class_names=None,
                  meta: dict | None = None) -> TensorDataset:
    """A TensorDataset from uint8 images (N, C, H, W), adapted to ``options``."""
    x, note = adapt_images(x, options.image_size, options.resize, options.channels)
    x = x.contiguous()
    meta = dict(meta or {})
    if note:
        meta.setdefault("notes", []).append(note)
    if y is not None:
        y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    return TensorDataset(x=x, modality="image", source=source, y=y,
                         class_names=class_names, meta=meta)


def to_uint8_images(a: np.ndarray, where: str) -> np.ndarray:
    """An array of images as uint8 (N, C, H, W); float data in [0,1] or [0,255] is scaled."""
    given = a.shape
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] in (1, 3, 4) and a.shape[3] not in (1, 3, 4):
        pass                                   # already (N, C, H, W)
    elif a.ndim == 4 and a.shape[3] in (1, 3, 4):
        a = a.transpose(0, 3, 1, 2)
    else:
        raise GenzooError(f"{where}: array of shape {a.shape} is not images "
                          "(N,H,W), (N,H,W,C) or (N,C,H,W) with C = 1, 3 or 4")
    if a.shape[0] == 0:
        raise GenzooError(f"{where}: no images in it (an array of shape {given})")
    if 0 in a.shape[2:]:
        raise GenzooError(f"{where}: images of size {a.shape[3]}x{a.shape[2]}: nothing to learn")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a, dtype=np.uint8) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise GenzooError(f"{where}: array of dtype {a.dtype} is not images")
    if a.size and not np.isfinite(a).all():
        raise GenzooError(f"{where}: the images contain NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    scale = 255.0 if np.issubdtype(a.dtype, np.floating) and hi <= 1.0 + 1e-3 else 1.0
    if lo < -1e-3 or hi > 255.0 + 1e-3:
        raise GenzooError(f"{where}: values range over [{lo:g}, {hi:g}]; images must be "
                          "in [0, 1] or [0, 255] (rescale them, e.g. (x + 1) / 2 for [-1, 1])")
    return np.ascontiguousarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8))


def _labels_array(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    ok = y.ndim == 1 and (np.issubdtype(y.dtype, np.integer)
                          or (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)))
    if not ok or (y.size and y.min() < 0):
        raise GenzooError(f"{where}: labels must be non-negative integers, one per image "
                          f"(got {y.dtype} of shape {y.shape})")
    if len(y) != n:
        raise GenzooError(f"{where}: {len(y)} labels for {n} images")
    return y.astype(np.int64)


# ---------------------------------------------------------------- spec parsing and dispatch

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


def _looks_like_images(path: Path, scan: int = 2000) -> bool:
    """Yes unless the first files hold another modality's files and no image."""
    other = False
    for i, (name, _) in enumerate(_iter_files(path, want=lambda n: False)):
        if name.lower().endswith(IMAGE_EXTS):
            return True
        other = other or name.lower().endswith(_OTHER_EXTS)
        if i >= scan:
            break
    return not other


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


# ---------------------------------------------------------------- folders and archives

def _iter_files(path: Path, want):
    """(posix name inside, bytes or None) for each file; bytes only for names ``want``s."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                name = p.relative_to(path).as_posix()
                yield name, (p.read_bytes() if want(name) else None)
    else:
        yield from archives.members(path, want)


def _image_parts(name: str) -> tuple[str, ...] | None:
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", ".", "/"))
    if not parts or not parts[-1].lower().endswith(IMAGE_EXTS):
        return None
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):  # hidden files, macOS forks
        return None
    return parts


def _select(parts: list[tuple], name: str, spec: str) -> tuple[list[int], int]:
    """Indices of images under top-level folder ``name`` (looking through wrapping folders),
    and the depth of that folder."""
    depth = 0
    while True:
        hit = [i for i, p in enumerate(parts) if len(p) > depth + 1 and p[depth] == name]
        if hit:
            return hit, depth
        firsts = {p[depth] for p in parts if len(p) > depth + 1}
        if len(firsts) != 1 or any(len(p) <= depth + 1 for p in parts):
            raise GenzooError(f"{spec}: no folder '{name}' in it (folders there: "
                              f"{', '.join(sorted(firsts)) or 'none'})")
        depth += 1


def _layout(parts: list[tuple]) -> tuple[list[str] | None, str | None]:
    """Per-image class names from the folder structure (or None), and a note."""
    while all(len(p) > 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]           # a folder wrapping everything
    depths = {len(p) for p in parts}
    if depths == {1}:
        return None, None
    if 1 in depths:
        return None, "some images are not in a sub-folder, so sub-folders give no labels"
    if len(depths) == 1 and depths.pop() >= 3:    # <group>/<class>/<img>
        groups = ", ".join(sorted({p[0] for p in parts}))
        return ([p[-2] for p in parts],
                f"labels from the folders directly above the images; merged {groups} "
                "(pick one with SPEC:NAME)")
    return [p[0] for p in parts], None


def _read_files(path: Path, subset: str | None, spec: str, options: DataOptions) -> TensorDataset:
    from genzoo.data import image_stream
    streamed = image_stream.maybe_stream(path, subset, spec, options)
    if streamed is not None:        # too large for memory (or data.storage=stream)
        return streamed
    return read_files(path, subset, spec, options)[0]


def read_files(path: Path, subset: str | None, spec: str, options: DataOptions,
               keep=None) -> tuple[TensorDataset, list[str], dict[str, bytes]]:
    """(dataset, the name of each item's file inside ``path``, {name: bytes} of the other files
    ``keep(name)`` asked for): images of a folder or archive, in the fixed shuffled order."""
    def want(name):   # an image, and under a folder named ``subset`` when one is asked for
        parts = _image_parts(name)
        if parts is None:
            return keep is not None and keep(name)
        return subset is None or subset in parts[:-1]

    names, parts, blobs = [], [], []   # every image's name and path parts; wanted ones' bytes
    kept: dict[str, bytes] = {}
    try:
        for name, data in _iter_files(path, want):
            if _image_parts(name) is not None:
                names.append(name)
                parts.append(_image_parts(name))
                blobs.append(data)
            elif data is not None:
                kept[name] = data
    except _ARCHIVE_ERRORS as e:
        raise GenzooError(f"{spec}: {_unreadable(path)} ({_reason(e)})") from None
    order, labels, class_names, note = arrange(names, parts, subset, spec)
    names, blobs = [names[i] for i in order], [blobs[i] for i in order]
    where = (lambda n: str(path / n)) if path.is_dir() else (lambda n: f"{spec}: {n}")
    x, decode_note = _decode_all(names, blobs, where, spec, options)
    meta = {"order": ORDER, "notes": [n for n in (note, decode_note) if n]}
    return (image_dataset(x, spec, options, y=labels, class_names=class_names, meta=meta),
            names, kept)


ORDER = "folder images in a fixed shuffled order (seed 0)"


def _unreadable(path: Path) -> str:
    return "cannot read the folder" if path.is_dir() else "corrupt or unreadable archive"


def arrange(names: list[str], parts: list[tuple], subset: str | None, spec: str):
    """The images of a folder or archive listing (``names``, their path ``parts``) as a
    dataset orders them: (positions in the listing, labels, class names, note). Those under
    the top-level folder ``subset`` only, in a fixed shuffled order (seed 0, see the module
    docstring), labelled by folder (or None)."""
    if not names:
        raise GenzooError(f"{spec}: no images in it (looked for {', '.join(IMAGE_EXTS)})")
    keep = list(range(len(names)))
    if subset is not None:
        keep, depth = _select(parts, subset, spec)
        parts = [parts[i][depth + 1:] for i in keep]
    order = np.random.default_rng(0).permutation(len(keep))
    labels, note = _layout([parts[i] for i in order])
    positions = [keep[i] for i in order]
    if labels is None:
        return positions, None, None, note
    class_names = sorted(set(labels))
    index = {c: i for i, c in enumerate(class_names)}
    return positions, [index[c] for c in labels], class_names, note


def _decode_all(names, blobs, where, spec, options: DataOptions):
    """Decode into one uint8 (N, C, H, W) array; mixed sizes are adapted one by one."""
    draft = options.image_size if options.resize in ("auto", "resize") else None
    arrays = [_decode(b, where(n), draft) for n, b in zip(names, blobs)]
    colour = any(a.ndim == 3 for a in arrays)
    c = 3 if colour else 1
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) == 1:
        h, w = arrays[0].shape[:2]
        out = np.empty((len(arrays), h, w, c), np.uint8)
        for i, a in enumerate(arrays):
            out[i] = a if a.ndim == 3 else a[..., None]
        return out.transpose(0, 3, 1, 2), None
    if options.image_size is None:
        first = arrays[0].shape[:2]
        j = next(i for i, a in enumerate(arrays) if a.shape[:2] != first)
        raise GenzooError(
            f"{spec}: images have different sizes ({names[0]} is {first[1]}x{first[0]}, "
            f"{names[j]} is {arrays[j].shape[1]}x{arrays[j].shape[0]}); "
            "pass --image-size N to bring them to one size")
    s, ch = options.image_size, options.channels or c
    out = np.empty((len(arrays), ch, s, s), np.uint8)
    for i, a in enumerate(arrays):
        a = np.repeat(a[..., None], c, axis=2) if a.ndim == 2 else a
        out[i] = adapt_images(a.transpose(2, 0, 1)[None], s, options.resize, ch)[0][0].numpy()
    return out, (f"brought {len(arrays)} images of {len(sizes)} sizes to {s}x{s} "
                 f"(data.resize={options.resize})")


def _decode(data: bytes, where: str, draft: int | None) -> np.ndarray:
    """(H, W) for grey images, (H, W, 3) for colour; alpha dropped, palettes expanded."""
    if not data:
        raise GenzooError(f"{where}: cannot read image (the file is empty)")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice it: refuse those too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return _pixels(im, draft)
    except UnidentifiedImageError:      # its message names the in-memory buffer, not the file
        raise GenzooError(f"{where}: cannot read image (not an image format Pillow knows, "
                          f"or a damaged header)") from None
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError...)
        raise GenzooError(f"{where}: cannot read image ({_reason(e)})") from None


def _pixels(im: Image.Image, draft: int | None) -> np.ndarray:
    if draft and im.format == "JPEG" and min(im.size) >= 2 * draft:
        im.draft(im.mode, (draft, draft))    # decode JPEG at a reduced scale: faster
    im.load()
    mode = im.mode
    if mode in ("I", "I;16", "I;16B", "I;16L"):   # 16-bit grey
        return (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
    if mode in ("1", "L", "LA", "La", "F"):
        return np.asarray(im.convert("L"))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    a = np.asarray(im if mode == "RGB" else im.convert("RGB"))
    if mode == "P" and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
        return np.ascontiguousarray(a[..., 0])   # a grey palette
    return a


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------- arrays (.npz / .npy)

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


# ---------------------------------------------------------------- builtins

@builtin("digits")
def digits(options: DataOptions) -> TensorDataset:
    """scikit-learn's 8x8 handwritten digits: 1,797 grey images, values 0..16 -> 0..255."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return image_dataset(x, "digits", options, y=d.target,
                         class_names=[str(i) for i in range(10)])
