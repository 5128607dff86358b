"""Random access to the files of a folder, a .zip or an uncompressed .tar, by name.

What a streamed image dataset reads from: the listing is made once (a folder's files sorted by
path, a zip's central directory, a tar's headers with each member's data offset), then any
member's bytes are read on demand. A compressed tar (.tar.gz, .tgz, .tar.bz2, .tar.xz) has no
random access: it can only be read whole, in one pass (archives.py).

The listing makes the claims that archives.py checks against decompression bombs (every
member's claimed size, before anything is read), and a read never returns more than
``archives.MAX_FILE`` bytes. File handles are opened per process, on first use, so one object
serves forked DataLoader workers: each opens its own (a shared handle shares its offset).
"""
from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

from genzoo.data import archives
from genzoo.errors import GenzooError

_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")    # gzip, bzip2, xz


def random_access(path: Path) -> bool:
    """Whether the files in ``path`` can be read one at a time, in any order."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir() or name.endswith(".zip"):
        return True
    if name.endswith((".tar", ".tar.gz", ".tgz")) and path.is_file():
        with open(path, "rb") as f:
            head = f.read(6)
        return not any(head.startswith(m) for m in _COMPRESSED)
    return False


class FileIndex:
    """The files of a folder or an archive that :func:`random_access` accepts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.kind = ("folder" if self.path.is_dir()
                     else "zip" if self.path.name.lower().endswith(".zip") else "tar")
        self._offsets: dict[str, tuple[int, int]] = {}     # tar: name -> (offset, size)
        self._handle, self._pid = None, None

    def names(self, want: Callable[[str], bool] = lambda name: True) -> list[str]:
        """Posix names of the files, in the order a one-pass read meets them; an archive's
        claimed sizes are checked (``want``: the names that will be read)."""
        if self.kind == "folder":
            return [p.relative_to(self.path).as_posix() for p in sorted(self.path.rglob("*"))
                    if p.is_file()]
        guard = archives.Expansion(self.path)
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                files = [i for i in zf.infolist() if not i.is_dir()]
            for i in files:
                guard.claim(i.filename, i.file_size, want(i.filename))
            return [i.filename for i in files]
        names = []
        with tarfile.open(self.path, "r:") as tf:
            for m in tf:
                if m.isfile():
                    guard.claim(m.name, m.size, want(m.name))
                    names.append(m.name)
                    self._offsets[m.name] = (m.offset_data, m.size)
        return names

    def read(self, name: str) -> bytes:
        """The bytes of file ``name`` (a zip's are checked against its CRC and claimed size)."""
        if self.kind == "folder":
            return (self.path / name).read_bytes()
        handle = self._open()
        if self.kind == "zip":
            with handle.open(name) as f:
                data = f.read(archives.MAX_FILE + 1)
        else:
            if not self._offsets:
                self.names()
            offset, size = self._offsets[name]
            data = os.pread(handle.fileno(), min(size, archives.MAX_FILE + 1), offset)
        if len(data) > archives.MAX_FILE:
            raise GenzooError(f"{self.path}: {name} expands past {archives.MAX_FILE >> 20} MiB; "
                              "refused as a decompression bomb")
        return data

    def _open(self):
        if self._handle is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._handle = (zipfile.ZipFile(self.path) if self.kind == "zip"
                            else open(self.path, "rb"))
        return self._handle

    def __getstate__(self):             # a spawned worker opens its own handle
        return {**self.__dict__, "_handle": None, "_pid": None}
