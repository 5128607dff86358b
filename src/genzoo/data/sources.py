"""Named public datasets, downloaded once and verified by checksum.

Each :class:`Source` lists its files (:class:`RemoteFile`: official URL and published
sha256) and a ``build`` function that turns the downloaded files into a TensorDataset.
Sources are registered as builtin data specs (``genzoo train vae --data fashion-mnist``).

- Cache: ``$GENZOO_CACHE`` or ``~/.cache/genzoo``, one folder per source. A file is
  downloaded to a temporary file in that folder, verified, then renamed into place, so a
  partial or corrupt download never remains. A verified file gets a ``.sha256`` note beside
  it and is not hashed again.
- Offline: put the file at its cache path yourself (it is verified on first use), or pass
  a local path as the data spec instead.
- ``GENZOO_DATA_MIRROR=http://host:port/base`` replaces scheme and host of every URL
  (tests serve files from a local HTTP server this way).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from genzoo.data import DataOptions, builtin
from genzoo.data.cache import cache_dir
from genzoo.data.dataset import TensorDataset
from genzoo.data.source_formats import build_cifar, idx_builder
from genzoo.errors import GenzooError


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str | None              # published sha256; None when not known (see md5)
    md5: str | None = None          # used only when sha256 is None (with size)
    size: int | None = None         # bytes
    mirrors: tuple[str, ...] = ()   # other full URLs of the same file, tried in order

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    name: str
    files: tuple[RemoteFile, ...]
    # build(paths of the files, in order, options, spec) -> TensorDataset
    build: Callable[[list[Path], DataOptions, str], TensorDataset]
    description: str = ""


_SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    """Make ``source`` known to :func:`fetch`/:func:`list_sources` and a builtin data spec."""
    _SOURCES[source.name] = source
    builtin(source.name)(lambda options: load_source(source.name, options))
    return source


def _path(source: Source, f: RemoteFile) -> Path:
    return cache_dir() / source.name / f.name


def _get(name: str) -> Source:
    if name not in _SOURCES:
        raise GenzooError(f"{name}: not a named dataset (known: {', '.join(sorted(_SOURCES))})")
    return _SOURCES[name]


def list_sources() -> list[dict]:
    """Each source: name, description, files (url, path, sha256), cached (all present)."""
    out = []
    for s in sorted(_SOURCES.values(), key=lambda s: s.name):
        files = [{"url": f.url, "path": str(_path(s, f)), "sha256": f.sha256, "size": f.size}
                 for f in s.files]
        out.append({"name": s.name, "description": s.description, "files": files,
                    "cached": all(Path(f["path"]).exists() for f in files)})
    return out


def fetch(name: str) -> list[Path]:
    """The local paths of source ``name``'s files, downloading and verifying as needed."""
    source = _get(name)
    return [_fetch_file(source, f) for f in source.files]


def load_source(name: str, options: DataOptions | None = None) -> TensorDataset:
    source = _get(name)
    return source.build(fetch(name), options or DataOptions(), name)


# ---------------------------------------------------------------- download and verification

def _digests(path: Path) -> tuple[str, str, int]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _check(f: RemoteFile, path: Path) -> tuple[bool, str | None]:
    """(verified, fault): fault says how ``path`` differs from the published checksum."""
    sha, md5, size = _digests(path)
    if f.sha256:
        return sha == f.sha256, None if sha == f.sha256 else f"sha256 {sha}, expected {f.sha256}"
    if f.md5 and f.size is not None:
        if (md5, size) != (f.md5, f.size):
            return False, f"md5 {md5} and {size} bytes, expected {f.md5} and {f.size} bytes"
        return True, None
    return False, None                                 # nothing to check against


def _note(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _verified_before(f: RemoteFile, path: Path) -> bool:
    """A note says ``path`` was verified, and its size has not changed since."""
    note = _note(path)
    if not note.exists():
        return False
    sha, size = (note.read_text().split() + ["", ""])[:2]
    return size == str(path.stat().st_size) and sha == (f.sha256 or sha)


def _fetch_file(source: Source, f: RemoteFile) -> Path:
    dest = _path(source, f)
    if dest.exists():
        if _verified_before(f, dest):
            return dest
        ok, fault = _check(f, dest)
        if fault:
            raise GenzooError(f"{source.name}: {dest} does not match the published checksum "
                              f"({fault}); delete it to download it again")
        _mark(source, f, dest, ok)
        return dest
    urls = list(dict.fromkeys(_mirrored(u) for u in (f.url, *f.mirrors)))
    errors = []
    for url in urls:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        except OSError as e:
            raise GenzooError(f"{source.name}: cannot write to the cache folder {dest.parent} "
                              f"({e.strerror or e}); set GENZOO_CACHE to a writable folder") from None
        tmp = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                _download(url, out)
            ok, fault = _check(f, tmp)
            if fault:
                raise GenzooError(f"{source.name}: checksum mismatch for {url} ({fault}); the "
                                  "downloaded file was deleted (a bad mirror, or the file "
                                  "changed upstream)")
            os.replace(tmp, dest)
            _mark(source, f, dest, ok)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:   # URLError is an OSError
            errors.append(f"{url} ({_reason(e)})")
        finally:
            tmp.unlink(missing_ok=True)
    also = f"; also tried {len(errors) - 1} other URL(s)" if len(errors) > 1 else ""
    raise GenzooError(f"{source.name}: could not download {errors[0]}{also}; you are offline? "
                      f"put the file at {dest} or pass a local path")


def _mark(source: Source, f: RemoteFile, dest: Path, ok: bool) -> None:
    if ok:
        sha = f.sha256 or _digests(dest)[0]
        _note(dest).write_text(f"{sha} {dest.stat().st_size}\n")
    else:
        warnings.warn(f"{source.name}: no checksum is known for {f.url}; {dest} is used "
                      "unverified", stacklevel=3)


def _mirrored(url: str) -> str:
    base = os.environ.get("GENZOO_DATA_MIRROR")
    if not base:
        return url
    parts = urlsplit(url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _download(url: str, out) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "genzoo"})
    with urllib.request.urlopen(request, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0)
        print(f"genzoo: downloading {url}" + (f" ({total / 1e6:.1f} MB)" if total else ""),
              file=sys.stderr)
        while chunk := response.read(1 << 20):
            out.write(chunk)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e) or type(e).__name__


# ---------------------------------------------------------------- the sources

_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"     # yann.lecun.com often refuses
_MNIST_OFFICIAL = "http://yann.lecun.com/exdb/mnist/"

# sha256 values: the t10k MNIST files and the Fashion-MNIST label files were hashed here
# from copies whose md5 matches the official one; the others are the values published by
# tensorflow-datasets and Keras, cross-checked against several independent listings.
register_source(Source(
    "fashion-mnist",
    (RemoteFile(_FASHION + "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
     RemoteFile(_FASHION + "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "25c81989df183df01b3e8a0aad5dffbe", 29515)),
    idx_builder(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]),
    "Fashion-MNIST training split: 60,000 28x28 grey clothing images, 10 classes (MIT)"))

register_source(Source(
    "mnist",
    (RemoteFile(_MNIST + "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422,
                mirrors=(_MNIST_OFFICIAL + "train-images-idx3-ubyte.gz",)),
     RemoteFile(_MNIST + "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "d53e105ee54ea40749a09fcbcd1e9432", 28881,
                mirrors=(_MNIST_OFFICIAL + "train-labels-idx1-ubyte.gz",))),
    idx_builder([str(i) for i in range(10)]),
    "MNIST training split: 60,000 28x28 grey handwritten digits (LeCun, Cortes, Burges)"))

register_source(Source(
    "cifar10",
    (RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                "c58f30108f718f92721af3b95e74349a", 170498071),),
    build_cifar,
    "CIFAR-10 training split: 50,000 32x32 colour images, 10 classes (Krizhevsky 2009)"))
