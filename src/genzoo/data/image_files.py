"""Images of a folder or an archive (.tar, .tar.gz, .tgz, .zip, read in place): the listing,
labels from the folder layout, the fixed shuffled order, and decoding with Pillow.

See data/images.py for the spec forms. The listing and order (:func:`arrange`) are shared with
the streamed reader (data/image_stream.py), so a streamed folder holds the same items in the
same order as the same folder read into memory.
"""
from __future__ import annotations

import io
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from genzoo.data import DataOptions, archives
from genzoo.data.dataset import TensorDataset
from genzoo.data.image_adapt import adapt_images, image_dataset
from genzoo.errors import GenzooError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
ARCHIVE_EXTS = (".tar", ".tar.gz", ".tgz", ".zip")
# files of other modalities: a folder/archive holding these and no image is left to their reader
_OTHER_EXTS = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".krn", ".abc",
               ".txt", ".csv", ".jsonl", ".json")
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


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
