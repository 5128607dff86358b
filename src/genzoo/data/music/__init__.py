"""Music: MIDI, MusicXML, kern and ABC files, the JSB chorales' grid, Bach's chorales.

Spec forms:

- ``songs/``, ``songs.tar[.gz]``, ``songs.zip``: every .mid/.midi/.xml/.mxl/.musicxml/.krn/.abc
  file in it, one piece each; ``song.mid`` (or any one such file) alone.
- ``Jsb16thSeparated.npz`` (``:train``, ``:valid``, ``:test``; ``train`` when none is named):
  the JSB chorales on a 16th-note grid (Boulanger-Lewandowski et al. 2012; MuseGAN's data).
- ``bach-chorales``: the 371 four-part chorales that music21 ships (offline). Parsing all of
  them takes minutes the first time; they are cached, and ``data.max_items`` parses only as
  many as it needs.

Every piece becomes a :class:`Score` (score.py; files.py reads and caches), and the scores
become tensors in the representation ``data.music`` names (represent.py): ``tokens`` (the book's
note and duration pairs), ``events`` (Oore et al. 2018), ``grid`` (S A T B per 16th) or
``pianoroll`` (MuseGAN). ``data.transpose`` adds the training pieces in all 12 keys;
``data.bad_files`` says whether a file that is not music, or has no notes, is skipped or
refused.
"""
from __future__ import annotations

from pathlib import Path

from genzoo.data import DataOptions, builtin, reader
from genzoo.data.dataset import TensorDataset
from genzoo.data.music.represent import REPRESENTATIONS, build, decode
from genzoo.data.music.files import (MUSIC_EXTS, is_grid_npz, is_music_name, music_files,
                                     read_grid_npz, scores)
from genzoo.data.music.grid import score_from_grid
from genzoo.data.music.score import Note, Score, read_midi, write_midi
from genzoo.errors import GenzooError


def _has_music(path: Path, scan: int = 2000) -> bool:
    """A single music file, or a folder / archive whose first files include one."""
    if path.is_file() and path.name.lower().endswith(MUSIC_EXTS):
        return True
    from genzoo.data.images import _ARCHIVE_ERRORS, ARCHIVE_EXTS, _iter_files
    if not (path.is_dir() or path.name.lower().endswith(ARCHIVE_EXTS)):
        return False
    try:
        for i, (name, _) in enumerate(_iter_files(path, want=lambda n: False)):
            if is_music_name(name):
                return True
            if i >= scan:
                break
    except _ARCHIVE_ERRORS:
        return False
    return False


def _with_skipped(ds: TensorDataset, skipped: list[str]) -> TensorDataset:
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        ds.meta["notes"].append(f"skipped {len(skipped)} file(s) that are not music or have "
                                f"no notes: {shown}")
    return ds


@reader(_has_music)
def read_music(path: Path, options: DataOptions | None = None) -> TensorDataset:
    """The pieces of a music file, or of the music files in a folder or archive."""
    options = options or DataOptions()
    total = (sum(1 for p in path.rglob("*") if p.is_file() and
                 is_music_name(p.relative_to(path).as_posix())) if path.is_dir() else None)
    skipped: list[str] = []
    pieces = scores(music_files(path), str(path), options.bad_files, total, skipped)
    return _with_skipped(build(pieces, options, str(path)), skipped)


@reader(is_grid_npz)
def read_grid(path: Path, options: DataOptions | None = None) -> TensorDataset:
    """One split of a JSB-style 16th-note grid .npz (``file.npz:valid``)."""
    from genzoo.data.images import split_spec
    options = options or DataOptions()
    real, split = split_spec(path)
    arrays, split = read_grid_npz(real, split)
    pieces = (score_from_grid(a, f"{real}:{split} piece {i}") for i, a in enumerate(arrays))
    return build(pieces, options, f"{real}:{split}")


@builtin("bach-chorales")
def bach_chorales(options: DataOptions) -> TensorDataset:
    """The Bach chorales of music21's corpus, parsed once and cached."""
    try:
        from music21 import corpus
    except ModuleNotFoundError:
        raise GenzooError("bach-chorales needs music21: pip install 'genzoo[music]'") from None
    names = list(corpus.chorales.Iterator(returnType="filename"))

    def files():
        for name in names:
            work = corpus.getWork(name)
            p = Path(work[0] if isinstance(work, list) else work)
            yield p.name, p.read_bytes()

    skipped: list[str] = []
    pieces = scores(files(), "bach-chorales", options.bad_files, len(names), skipped)
    return _with_skipped(build(pieces, options, "bach-chorales"), skipped)


__all__ = ["Note", "Score", "REPRESENTATIONS", "build", "decode", "read_midi", "write_midi",
           "read_music", "read_grid"]
