"""Music files -> Scores: which files, which parser, the cache, and what to do with bad ones.

MIDI is read with mido (about 40x faster than music21's MIDI reader: 0.02 s against 0.8 s a
chorale here); MusicXML (.xml, .mxl, .musicxml), Humdrum kern (.krn) and ABC with music21.
Parsing hundreds of scores takes minutes, so each file's Score is stored once in
``$GENZOO_CACHE/music`` under the SHA-256 of its bytes (and the parser's version): a renamed
or moved file is still found, an edited one is parsed again. A file that is not music, or has
no notes, is cached as such too, and is skipped with a one-line message or refused
(``data.bad_files``).

The JSB chorales' 16th-note grid (.npz of object arrays, as in Boulanger-Lewandowski et al.
2012 and MuseGAN) is read without executing the pickles inside it: only numpy arrays are
let out of the unpickler (see ``source_formats.ArraysOnly``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

import numpy as np

from genzoo.data.music.score import Note, Score, from_music21, read_midi
from genzoo.errors import GenzooError

MIDI_EXTS = (".mid", ".midi")
SCORE_EXTS = (".xml", ".mxl", ".musicxml", ".krn", ".abc")
MUSIC_EXTS = MIDI_EXTS + SCORE_EXTS
PARSER_VERSION = 1          # bump when a parser's output changes: old cache entries are then unused
BAD_FILES = ("skip", "refuse")


class NotMusic(Exception):
    """A file that is not music or has no notes; the message is one line, for the user."""


def is_music_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (name.lower().endswith(MUSIC_EXTS)
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts))


def _one_line(e: BaseException, limit: int = 120) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- parsing one file

def parse(name: str, data: bytes) -> Score:
    """The Score of the file ``name`` with contents ``data``; raises :class:`NotMusic`."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in MIDI_EXTS:
        try:
            import mido  # noqa: F401
        except ModuleNotFoundError:
            raise GenzooError("reading MIDI needs mido: pip install 'genzoo[music]'") from None
        try:
            score = read_midi(data)
        except Exception as e:      # mido raises OSError, EOFError, KeyError... on non-MIDI
            raise NotMusic(f"not a MIDI file ({_one_line(e)})") from None
    else:
        score = _parse_music21(suffix, data)
    if not score.notes:
        raise NotMusic("has no notes")
    return score


def _parse_music21(suffix: str, data: bytes) -> Score:
    try:
        from music21 import converter
    except ModuleNotFoundError:
        raise GenzooError(f"reading {suffix} scores needs music21: pip install 'genzoo[music]'") \
            from None
    fd, tmp = tempfile.mkstemp(suffix=suffix)      # music21 knows a format by its extension
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_music21(converter.parseFile(tmp, forceSource=True))
    except Exception as e:          # music21 raises many kinds on a bad score
        raise NotMusic(f"not a readable {suffix[1:]} score ({_one_line(e)})") from None
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------- the cache

def cache_path(name: str, data: bytes) -> Path:
    from genzoo.data.cache import cache_dir
    h = hashlib.sha256(f"{PARSER_VERSION}|{PurePosixPath(name).suffix.lower()}|".encode())
    h.update(data)
    return cache_dir() / "music" / f"{h.hexdigest()[:32]}.npz"


def cached_parse(name: str, data: bytes) -> Score:
    """:func:`parse`, once per content: later calls read the cached result."""
    path = cache_path(name, data)
    if path.is_file():
        try:
            return _load(path)
        except NotMusic:
            raise
        except Exception:           # a damaged entry is parsed again, never trusted
            path.unlink(missing_ok=True)
    try:
        score, error = parse(name, data), None
    except NotMusic as e:
        score, error = None, str(e)
    _save(path, score, error)
    if error:
        raise NotMusic(error)
    return score


def _save(path: Path, score: Score | None, error: str | None) -> None:
    if score is None:
        arrays, info = {}, {"error": error}
    else:
        arrays = {"notes": np.array(score.notes, dtype=np.float64).reshape(-1, 5),
                  "keys": np.array([(t, pc, mode == "minor") for t, pc, mode in score.keys],
                                   dtype=np.float64).reshape(-1, 3),
                  "sigs": np.array(score.time_signatures, dtype=np.float64).reshape(-1, 3)}
        info = {"qpm": score.qpm, "pickup": score.pickup, "tracks": score.tracks}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError as e:            # a read-only cache costs time, not the run
        print(f"genzoo: could not cache a parsed score in {path.parent} ({e.strerror or e})",
              file=sys.stderr)


def _load(path: Path) -> Score:
    with np.load(path, allow_pickle=False) as z:
        info = json.loads(z["info"].tobytes())
        if "error" in info:
            raise NotMusic(info["error"])
        notes = [Note(int(p), s, e, int(v), int(tr)) for p, s, e, v, tr in z["notes"].tolist()]
        keys = [(t, int(pc), "minor" if m else "major") for t, pc, m in z["keys"].tolist()]
        sigs = [(t, int(a), int(b)) for t, a, b in z["sigs"].tolist()]
    return Score(notes, keys, sigs, info["qpm"], info["pickup"], info["tracks"])


# ---------------------------------------------------------------- many files

def music_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each music file in a folder, an archive (.tar[.gz], .zip) or of the
    single file ``path``, in name order for folders and archive order for archives."""
    if path.is_file() and path.name.lower().endswith(MUSIC_EXTS):
        yield path.name, path.read_bytes()
        return
    from genzoo.data.images import _ARCHIVE_ERRORS, _iter_files
    try:
        for name, data in _iter_files(path, want=is_music_name):
            if data is not None:
                yield name, data
    except _ARCHIVE_ERRORS as e:
        raise GenzooError(f"{path}: not a readable folder or archive ({_one_line(e)})") from None


def scores(files: Iterable[tuple[str, bytes]], where: str, bad_files: str = "skip",
           total: int | None = None, skipped: list[str] | None = None) -> Iterator[Score]:
    """The Score of each file, parsed or from the cache, with a progress bar. A bad file is
    named in one line and skipped (its name added to ``skipped``), or refused with a
    GenzooError, as ``bad_files`` says; no file at all, or no good one, is an error."""
    from tqdm import tqdm
    if bad_files not in BAD_FILES:
        raise GenzooError(f"data.bad_files={bad_files!r}: must be one of {', '.join(BAD_FILES)}")
    skipped = [] if skipped is None else skipped
    seen = good = 0
    bar = tqdm(desc="reading music", total=total, unit=" files", leave=False, disable=None)
    try:
        for name, data in files:
            seen += 1
            bar.update(1)
            try:
                score = cached_parse(name, data)
            except NotMusic as e:
                if bad_files == "refuse":
                    raise GenzooError(f"{where}: {name}: {e} (--set data.bad_files=skip leaves "
                                      "such files out)") from None
                skipped.append(name)
                tqdm.write(f"genzoo: skipped {name}: {e}", file=sys.stderr)
                continue
            good += 1
            yield score
    finally:
        bar.close()
    if not seen:
        raise GenzooError(f"{where}: no music files in it ({', '.join(MUSIC_EXTS)})")
    if not good:
        raise GenzooError(f"{where}: none of its {seen} music files could be read "
                          "(each was named above)")


# ---------------------------------------------------------------- the JSB 16th-note grid

def is_grid_npz(path: Path) -> bool:
    """An .npz whose arrays are object arrays (the JSB layout); images take plain ones."""
    if not (path.is_file() and path.name.lower().endswith(".npz")):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".npy")]
            for n in names:
                with zf.open(n) as f:
                    if not _npy_header(f)[2].hasobject:
                        return False
            return bool(names)
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _npy_header(f):
    fmt = np.lib.format
    version = fmt.read_magic(f)
    return (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)


def read_grid_npz(path: Path, split: str | None) -> tuple[list[np.ndarray], str]:
    """The pieces (each (T, voices) float, MIDI pitch or NaN for a rest) of one split of a
    JSB-style .npz, and the split's name (``train`` when none is named)."""
    import pickle
    from genzoo.data.source_formats import ArraysOnly
    try:
        with zipfile.ZipFile(path) as zf:
            splits = sorted(n[:-4] for n in zf.namelist() if n.endswith(".npy"))
            split = split or ("train" if "train" in splits else splits[0])
            if split not in splits:
                raise GenzooError(f"{path}: no split {split!r} in it (splits: {', '.join(splits)})")
            with zf.open(split + ".npy") as f:
                _npy_header(f)
                pieces = ArraysOnly(f, encoding="latin1").load()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise GenzooError(f"{path}: not a readable 16th-note grid .npz ({_one_line(e)})") from None
    out = []
    for i, a in enumerate(pieces):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2 or not a.size:
            raise GenzooError(f"{path}:{split}: piece {i} has shape {a.shape}, not (steps, voices)")
        out.append(a)
    if not out:
        raise GenzooError(f"{path}:{split}: has no pieces")
    return out, split
