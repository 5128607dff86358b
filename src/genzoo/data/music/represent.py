"""Scores -> the tensors a family trains on, in the representation ``data.music`` names.

- ``tokens``: the book's (note, duration) pairs (tokens.py): ``x`` the note ids and
  ``items["duration"]`` the duration ids, windows of ``data.context + 1`` per piece.
- ``events``: Oore et al.'s performance events (events.py), windows of ``x`` ids.
- ``grid``: the voices on a 16th-note grid, S A T B per step (grid.py), windows of ``x`` ids.
- ``pianoroll``: MuseGAN's (bars, 16 steps, pitches, tracks) phrases, stored as uint8 0/255
  so that a batch holds floats 0/1 like an image.

Sequence windows are cut per piece (the last one padded with PAD, id 0, where
``items["mask"]`` is False), so every item belongs to one piece, and the held-out items (the
last ones) are the ends of whole pieces. ``data.transpose`` adds each training piece in the
other 11 keys (-5 to +6 semitones, where its notes stay in range): the copies come first and
are made only of pieces that lie wholly before the held-out items, so no transposed copy of a
held-out piece is trained on.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from genzoo.data.dataset import TensorDataset
from genzoo.data.music import events, grid, tokens
from genzoo.data.music.score import Score
from genzoo.errors import GenzooError

REPRESENTATIONS = ("tokens", "events", "grid", "pianoroll")
SHIFTS = [k for k in range(-5, 7) if k]        # the other 11 keys


def build(pieces: Iterable[Score], options, source: str) -> TensorDataset:
    rep = options.music
    if rep not in REPRESENTATIONS:
        raise GenzooError(f"data.music={rep!r}: must be one of {', '.join(REPRESENTATIONS)}")
    if rep == "pianoroll" and options.bars < 1:
        raise GenzooError(f"data.bars={options.bars}: must be at least 1")
    if rep != "pianoroll" and options.context < 1:
        raise GenzooError(f"data.context={options.context}: must be at least 1")
    budget = options.max_items
    originals: list[Score] = []
    total = 0
    for score in pieces:                       # parsed lazily: max_items parses only enough
        originals.append(score)
        total += _rows(rep, _symbols(rep, score), options)
        if budget is not None and total * (1 + len(SHIFTS) * options.transpose) >= budget:
            break
    width = max(s.n_tracks for s in originals)           # voices / tracks of every item
    symbols = [_symbols(rep, s, width) for s in originals]
    low, high = (grid.pitch_range(options.pitch_range, symbols)
                 if rep == "pianoroll" else (0, 127))
    copies = [[_symbols(rep, s.transpose(k), width) for k in SHIFTS
               if low <= s.pitch_range()[0] + k and s.pitch_range()[1] + k <= high]
              if options.transpose else [] for s in originals]
    rows = [_rows(rep, s, options) for s in symbols]
    held = _held_out(rows, options.holdout) if options.transpose else 0
    train_copies = [c for cs in copies[:len(originals) - held] for c in cs]
    x, items, meta = _tensors(rep, train_copies + symbols, originals, options, low, high)
    if budget is not None and options.transpose and len(x) > budget:
        x, items = x[len(x) - budget:], {k: v[len(v) - budget:] for k, v in items.items()}
    meta["representation"] = rep
    meta["copies"] = len(x) - sum(rows) if options.transpose else 0   # leading transposed items
    meta.setdefault("notes", []).insert(0, (
        f"{len(originals)} pieces as {rep} -> {len(x):,} items of {tuple(x.shape[1:])}"
        + (f"; {len(train_copies)} transposed copies of the first "
           f"{len(originals) - held} pieces (the last {held} are held out whole; a data.holdout "
           "count holds out fewer)" if options.transpose else "")))
    return TensorDataset(x=x, modality="music", source=source, meta=meta, items=items)


def _held_out(rows: list[int], holdout: float) -> int:
    """How many pieces, from the end, to keep out of the transposition, so that the
    ``holdout`` items the split takes from the end all belong to them (the split takes
    ``round(holdout * n)`` of the n original items, or ``holdout`` items when it is 1 or more;
    transposed copies are never held out)."""
    n = len(rows)
    if holdout <= 0:
        return 0
    for m in range(1, n + 1):
        size = sum(rows)                  # the split's fraction is of the originals
        k = int(round(holdout * size)) if holdout < 1 else int(holdout)
        if k <= sum(rows[n - m:]):
            return m
    return n


# ---------------------------------------------------------------- per representation

def _symbols(rep: str, score: Score, width: int | None = None):
    if rep == "tokens":
        return tokens.encode(score)
    if rep == "events":
        return events.encode(score)
    if rep == "grid":
        return grid.voice_grid(score, width)
    return grid.piano_roll(score, width)


def _rows(rep: str, symbols, options) -> int:
    if rep == "pianoroll":
        return len(symbols) // (options.bars * grid.STEPS_PER_BAR)
    length = len(symbols) if rep != "grid" else 1 + symbols.size
    return max(1, -(-(length - 1) // options.context))


def _windows(stream: list[int], T: int) -> list[list[int]]:
    """Windows of ``T + 1`` ids overlapping by one, so that every id is a target once."""
    return [stream[s:s + T + 1] for s in range(0, max(1, len(stream) - 1), T)]


def _stack(windows: list[list[int]], T: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(len(windows), T + 1, dtype=torch.long)          # PAD = 0
    mask = torch.zeros(len(windows), T + 1, dtype=torch.bool)
    for i, w in enumerate(windows):
        x[i, :len(w)] = torch.tensor(w, dtype=torch.long)
        mask[i, :len(w)] = True
    return x, mask


def _tensors(rep: str, symbols: list, originals: list[Score], options, low: int, high: int):
    T = options.context
    tracks = max(originals, key=lambda s: len(s.tracks)).tracks
    qpm = next((s.qpm for s in originals if s.qpm), None)
    if rep == "tokens":
        note_vocab, dur_vocab = tokens.vocabularies()
        n_id = {t: i for i, t in enumerate(note_vocab)}
        d_id = {t: i for i, t in enumerate(dur_vocab)}
        wn = [w for pairs in symbols for w in _windows([n_id[n] for n, _ in pairs], T)]
        wd = [w for pairs in symbols for w in _windows([d_id[d] for _, d in pairs], T)]
        (x, mask), (duration, _) = _stack(wn, T), _stack(wd, T)
        meta = {"note_vocab": note_vocab, "duration_vocab": dur_vocab, "qpm": qpm,
                "field_modality": {"duration": "music"},
                "notes": [f"the book's token pairs: {len(note_vocab)} note and "
                          f"{len(dur_vocab)} duration tokens"]}
        return x, {"duration": duration, "mask": mask}, meta
    if rep == "events":
        x, mask = _stack([w for ids in symbols for w in _windows(ids, T)], T)
        meta = {"vocab": events.vocabulary(), "qpm": events.NOTATION_QPM}
        return x, {"mask": mask}, meta
    if rep == "grid":
        V = symbols[0].shape[1]
        vocab = grid.grid_vocabulary()
        ids = {t: i for i, t in enumerate(vocab)}
        x, mask = _stack([w for a in symbols
                          for w in _windows([ids[t] for t in grid.grid_tokens(a)], T)], T)
        names = tracks if len(tracks) == V else grid.SATB if V == 4 else None
        return x, {"mask": mask}, {"vocab": vocab, "voices": V, "tracks": names, "qpm": qpm}
    n_tracks = symbols[0].shape[2]
    parts, lost = [], 0
    for r in symbols:
        p, out = grid.phrases(r, options.bars, low, high)
        parts.append(p)
        lost += out
    x = torch.from_numpy(np.concatenate(parts) * np.uint8(255))
    if not len(x):
        raise GenzooError(f"the pieces are shorter than data.bars={options.bars} bars of 16 "
                          "steps; use fewer bars")
    meta = {"pitch_low": low, "pitch_high": high, "bars": options.bars,
            "steps_per_bar": grid.STEPS_PER_BAR, "tracks": tracks if len(tracks) == n_tracks
            else None, "qpm": qpm,
            "notes": [f"piano rolls of MIDI pitches {low}-{high}"
                      + (f"; {lost:,} sounding cells outside that range were dropped"
                         if lost else "")]}
    return x, {}, meta


# ---------------------------------------------------------------- samples -> scores

def decode(x, meta: dict, duration=None) -> list[Score]:
    """Scores of samples ``x`` in the representation ``meta`` describes (the data's meta)."""
    rep = meta.get("representation")
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if rep == "tokens":
        if duration is None:
            raise ValueError("token samples need their durations (the 'duration' field)")
        d = np.asarray(duration.detach().cpu() if isinstance(duration, torch.Tensor) else duration)
        nv, dv = meta["note_vocab"], meta["duration_vocab"]
        return [tokens.decode([(nv[a], dv[b]) for a, b in zip(row, drow)
                               if 0 <= a < len(nv) and 0 <= b < len(dv)], meta.get("qpm"))
                for row, drow in zip(x.tolist(), d.tolist())]
    if rep == "events":
        return [events.decode(row, meta.get("qpm")) for row in x.tolist()]
    if rep == "grid":
        vocab = meta["vocab"]
        out = []
        for row in x.tolist():
            names = [vocab[i] if 0 <= i < len(vocab) else grid.REST for i in row]
            if grid.START not in names and (len(row) - 1) % meta["voices"] == 0:
                names = names[1:]     # a later window of the data starts on the last voice
            s = grid.score_from_grid(grid.grid_from_tokens(names, meta["voices"]))
            s.tracks, s.qpm = list(meta.get("tracks") or s.tracks), meta.get("qpm")
            out.append(s)
        return out
    if rep == "pianoroll":
        out = []
        for r in x:
            s = grid.score_from_roll(r.astype(np.float32), meta["pitch_low"], meta.get("tracks"))
            s.qpm = meta.get("qpm")
            out.append(s)
        return out
    raise ValueError(f"unknown music representation {rep!r}")
