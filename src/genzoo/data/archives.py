"""Reading .zip and .tar[.gz] archives in place, refusing decompression bombs early.

A few kilobytes of deflate or gzip can expand to gigabytes of zeros. An archive is read as a
stream of members, and before a member's bytes are read its claimed size is checked (a zip's
central directory claims every size up front; a tar header claims the size of the member that
follows, and streaming past an unwanted member costs as much decompression as reading it):

- one file that is read may hold at most ``MAX_FILE`` bytes: no image file is that large;
- all members together may expand to at most ``MAX_RATIO`` times the archive's size on disk
  (or ``FLOOR``, for small archives of small, well-compressed files).

The bytes actually read are bounded too (a reader never asks for more than ``MAX_FILE + 1``),
so a header that lies cannot make a read larger: zip checks each member's CRC and length
against its claim, tar reads exactly the claimed size.
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from genzoo.errors import GenzooError

MAX_FILE = 256 << 20        # bytes in one file that is read (an 8k x 8k RGB bitmap is 192 MiB)
MAX_RATIO = 100             # expanded bytes per archive byte (images barely compress: ~1)
FLOOR = 64 << 20            # what any archive may expand to, whatever its size


class Expansion:
    """The running total of the bytes an archive claims to expand to, checked member by member."""

    def __init__(self, path: Path):
        self.path = path
        self.packed = path.stat().st_size
        self.limit = max(FLOOR, MAX_RATIO * self.packed)
        self.total = 0

    def claim(self, name: str, size: int, read: bool) -> None:
        """Before a member of ``size`` bytes is read (``read``) or streamed past."""
        if read and size > MAX_FILE:
            raise GenzooError(f"{self.path}: {name} claims {size:,} bytes, more than any image "
                              f"file ({MAX_FILE >> 20} MiB); refused as a decompression bomb")
        self.total += size
        if self.total > self.limit:
            raise GenzooError(f"{self.path}: its members expand to more than {self.limit:,} bytes "
                              f"from {self.packed:,} on disk; refused as a decompression bomb")

    def read(self, f, name: str) -> bytes:
        """A member's bytes, never more than MAX_FILE of them."""
        data = f.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            raise GenzooError(f"{self.path}: {name} expands past {MAX_FILE >> 20} MiB; refused "
                              "as a decompression bomb")
        return data


def members(path: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes | None]]:
    """(posix name inside, bytes or None) for each file of the archive at ``path``; bytes only
    for the names ``want`` says yes to. Raises GenzooError for a decompression bomb, and the
    archive modules' own errors for a damaged archive."""
    guard = Expansion(path)
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            files = [i for i in zf.infolist() if not i.is_dir()]
            for info in files:              # the central directory claims every size up front
                guard.claim(info.filename, info.file_size, want(info.filename))
            for info in files:
                if want(info.filename):
                    with zf.open(info) as f:
                        yield info.filename, guard.read(f, info.filename)
                else:
                    yield info.filename, None
        return
    with tarfile.open(path, "r|*") as tf:       # streaming: one pass, also for .tar.gz
        for m in tf:
            if not m.isfile():
                continue
            wanted = want(m.name)
            guard.claim(m.name, m.size, wanted)
            yield m.name, (guard.read(tf.extractfile(m), m.name) if wanted else None)
