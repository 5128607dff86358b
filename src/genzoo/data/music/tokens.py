"""The book's token pairs (Foster, Generative Deep Learning, 2nd ed., ch. 11).

A score is read as a melody of (note, duration) pairs, as music21's ``chordify`` would: the
piece is cut at every note start and end, and each slice is one pair, its note the highest
pitch sounding in it (a chord's top note) or ``rest`` when nothing sounds, its duration the
slice's length in quarter notes. ``START`` opens a piece; key and time-signature changes are
pairs of their own, ``G:major`` and ``4/4TS``, with duration ``0``. Two vocabularies, one per
stream, so that a model predicts a note and a duration at each step (two softmax heads).

Durations are exact fractions of a quarter on a grid of 12 per quarter (16ths and triplets),
written ``1/4``, ``1/3``, ``3/2``; pitches as ``C#4`` (MIDI 61).

The vocabularies are fixed functions of the representation, not of the data, so that every
split, every folder and every run gives a token the same id (:func:`vocabularies`): notes are
PAD, START, the 24 major and minor keys, the time signatures 1-16 over 1, 2, 4, 8, 16 or 32
(another is left out of the pairs), rest and the 128 MIDI pitches; durations are PAD, ``0``
and every multiple of 1/12 quarter up to ``MAX_QUARTERS``. A longer slice is written as
several pairs of at most that length (a long note as the same pitch struck again).
"""
from __future__ import annotations

from fractions import Fraction

from genzoo.data.music.score import (Note, Score, key_name, parse_key, parse_pitch,
                                     pitch_name)

STEPS = 12                 # grid of durations, per quarter note
MAX_QUARTERS = 16          # the longest duration token: four bars of 4/4
PAD, START, REST = "PAD", "START", "rest"
ZERO = "0"
KEYS = [key_name(pc, mode) for mode in ("major", "minor") for pc in range(12)]
TIME_SIGNATURES = [f"{a}/{b}TS" for b in (1, 2, 4, 8, 16, 32) for a in range(1, 17)]


def duration_name(d: Fraction) -> str:
    return str(d)          # Fraction(1, 4) -> "1/4", Fraction(2) -> "2"


def encode(score: Score) -> list[tuple[str, str]]:
    """The (note, duration) pairs of ``score`` (see the module docstring)."""
    q = lambda t: round(t * STEPS)
    spans = [(q(n.start), max(q(n.end), q(n.start) + 1), n.pitch) for n in score.notes]
    bounds = sorted({0} | {s for s, _, _ in spans} | {e for _, e, _ in spans})
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for s, e, p in spans:
        starts.setdefault(s, []).append(p)
        ends.setdefault(e, []).append(p)
    changes = sorted([(q(t), 0, key_name(pc, mode)) for t, pc, mode in score.keys]
                     + [(q(t), 1, f"{a}/{b}TS") for t, a, b in score.time_signatures
                        if f"{a}/{b}TS" in _SIGNATURES])
    pairs = [(START, ZERO)]
    sounding = [0] * 128
    c = 0
    for b, b_next in zip(bounds, bounds[1:]):
        for p in ends.get(b, ()):
            sounding[p] -= 1
        for p in starts.get(b, ()):
            sounding[p] += 1
        while c < len(changes) and changes[c][0] <= b:
            pairs.append((changes[c][2], ZERO))
            c += 1
        top = next((p for p in range(127, -1, -1) if sounding[p]), None)
        name = REST if top is None else pitch_name(top)
        for start in range(b, b_next, MAX_QUARTERS * STEPS):
            end = min(b_next, start + MAX_QUARTERS * STEPS)
            pairs.append((name, duration_name(Fraction(end - start, STEPS))))
    return pairs


def decode(pairs: list[tuple[str, str]], qpm: float | None = None) -> Score:
    """The melody that ``pairs`` spell: each note a note of its duration, rests as time.
    ``PAD`` and unreadable pairs are passed over; a later ``START`` just continues."""
    t = Fraction(0)
    notes, keys, sigs = [], [], []
    for note, dur in pairs:
        try:
            d = Fraction(dur)
        except (ValueError, ZeroDivisionError):
            continue
        if note.endswith("TS"):
            num, _, den = note[:-2].partition("/")
            if num.isdigit() and den.isdigit():
                sigs.append((float(t), int(num), int(den)))
        elif ":" in note and (k := parse_key(note)):
            keys.append((float(t), *k))
        elif note == REST:
            t += d
        elif (p := parse_pitch(note)) is not None and 0 <= p < 128:
            if d > 0:
                notes.append(Note(p, float(t), float(t + d)))
            t += d
    return Score(notes, keys, sigs, qpm, 0.0, ["melody"])


def vocabularies() -> tuple[list[str], list[str]]:
    """(note vocabulary, duration vocabulary), the same for any data: PAD (id 0) and START
    first, then the keys, time signatures, rest, pitches low to high; the durations PAD, then
    shortest first."""
    return ([PAD, START] + KEYS + TIME_SIGNATURES + [REST] + [pitch_name(p) for p in range(128)],
            [PAD, ZERO] + [duration_name(Fraction(k, STEPS))
                           for k in range(1, MAX_QUARTERS * STEPS + 1)])


_SIGNATURES = set(TIME_SIGNATURES)
