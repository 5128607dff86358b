"""The score every music file becomes, and its MIDI and music21 forms.

A :class:`Score` is a list of notes (MIDI pitch, start and end in quarter notes, velocity,
track) plus the key and time-signature changes, the tempo, and the pickup before the first
bar line. Every reader (MIDI through mido, MusicXML / kern / ABC through music21, the JSB
16th-note grid) produces one, and every representation (the book's token pairs, Oore et al.'s
events, piano rolls, the SATB grid) encodes one and decodes back to one, so that samples of
any representation can be written as MIDI, MusicXML and sound.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# key names as MIDI's key-signature event spells them, per tonic pitch class
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_TONIC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
DEFAULT_VELOCITY = 80          # notes from notation, which has no velocity
DRUM_CHANNEL = 9               # General MIDI percussion: unpitched, left out


class Note(NamedTuple):
    pitch: int                 # MIDI number, 60 = middle C (C4)
    start: float               # quarter notes from the start of the piece
    end: float
    velocity: int = DEFAULT_VELOCITY
    track: int = 0


@dataclass
class Score:
    notes: list[Note]
    keys: list[tuple[float, int, str]] = field(default_factory=list)   # (time, tonic pc, major|minor)
    time_signatures: list[tuple[float, int, int]] = field(default_factory=list)  # (time, num, den)
    qpm: float | None = None   # tempo in quarter notes per minute; None: the source gives none
    pickup: float = 0.0        # quarter notes before the first bar line (an anacrusis)
    tracks: list[str] = field(default_factory=list)   # track (part) names

    def __post_init__(self):
        self.notes = sorted(self.notes, key=lambda n: (n.start, n.track, n.pitch))

    @property
    def n_tracks(self) -> int:
        return max([len(self.tracks)] + [n.track + 1 for n in self.notes])

    @property
    def end(self) -> float:
        return max((n.end for n in self.notes), default=0.0)

    def pitch_range(self) -> tuple[int, int]:
        return min(n.pitch for n in self.notes), max(n.pitch for n in self.notes)

    def transpose(self, k: int) -> "Score":
        """The score ``k`` semitones higher (keys too); intervals are kept exactly."""
        return replace(self, notes=[n._replace(pitch=n.pitch + k) for n in self.notes],
                       keys=[(t, (pc + k) % 12, mode) for t, pc, mode in self.keys])


# ---------------------------------------------------------------- names

def pitch_name(p: int) -> str:
    """60 -> "C4" (scientific pitch notation, sharps)."""
    return f"{PITCH_NAMES[p % 12]}{p // 12 - 1}"


def parse_pitch(name: str) -> int | None:
    m = re.fullmatch(r"([A-G]#?)(-?\d+)", name)
    return PITCH_NAMES.index(m[1]) + 12 * (int(m[2]) + 1) if m else None


def key_name(pc: int, mode: str) -> str:
    """(7, "major") -> "G:major", (1, "minor") -> "C#:minor" (the book's key tokens)."""
    return f"{(MINOR_KEYS if mode == 'minor' else MAJOR_KEYS)[pc]}:{mode}"


def parse_key(name: str) -> tuple[int, str] | None:
    """"G:major" or MIDI's "Gm" / "Bb" -> (tonic pitch class, mode)."""
    m = re.fullmatch(r"([A-G])([#b]?)(?::(major|minor)|(m))?", name)
    if not m:
        return None
    pc = (_TONIC[m[1]] + {"#": 1, "b": -1, "": 0}[m[2]]) % 12
    return pc, "minor" if (m[3] == "minor" or m[4]) else "major"


def quarters(x: float, steps: int) -> Fraction:
    """``x`` quarter notes on a grid of ``steps`` per quarter, exactly."""
    return Fraction(round(x * steps), steps)


# ---------------------------------------------------------------- MIDI (mido)

TICKS_PER_QUARTER = 480


def read_midi(data: bytes) -> Score:
    """A Score from the bytes of a standard MIDI file (format 0 or 1).

    Notes are paired first in, first out per (track, channel, pitch); a note-on of velocity
    0 is a note-off. Each track with notes becomes a track; a format-0 file (one track)
    is split by channel. Percussion (channel 10) is left out. Raises on a file that is not
    MIDI (the caller names the file).
    """
    import mido
    mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    tpq = mid.ticks_per_beat or TICKS_PER_QUARTER
    raw: dict[tuple[int, int], list[Note]] = {}
    names: dict[tuple[int, int], str] = {}
    keys, sigs, tempos = [], [], []
    for ti, track in enumerate(mid.tracks):
        tick, open_ = 0, {}
        name = ""
        for msg in track:
            tick += msg.time
            t = tick / tpq
            if msg.type == "track_name":
                name = msg.name.strip()
            elif msg.type == "key_signature" and (k := parse_key(msg.key)):
                keys.append((t, *k))
            elif msg.type == "time_signature":
                sigs.append((t, msg.numerator, msg.denominator))
            elif msg.type == "set_tempo":
                tempos.append(mido.tempo2bpm(msg.tempo))
            elif msg.type in ("note_on", "note_off") and msg.channel != DRUM_CHANNEL:
                voice = (ti, msg.channel)
                if msg.type == "note_on" and msg.velocity > 0:
                    open_.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
                elif stack := open_.get((msg.channel, msg.note)):
                    start, vel = stack.pop(0)
                    if t > start:
                        raw.setdefault(voice, []).append(Note(msg.note, start, t, vel))
                        names.setdefault(voice, name)
        # notes never switched off end where the track ends
        for (ch, p), stack in open_.items():
            for start, vel in stack:
                if tick / tpq > start:
                    raw.setdefault((ti, ch), []).append(Note(p, start, tick / tpq, vel))
    voices = sorted(raw)
    notes = [n._replace(track=i) for i, v in enumerate(voices) for n in raw[v]]
    return Score(notes, _dedupe(keys), _dedupe(sigs), tempos[0] if tempos else 120.0, 0.0,
                 [names.get(v) or f"track {i + 1}" for i, v in enumerate(voices)])


def _dedupe(changes: list[tuple]) -> list[tuple]:
    """One change per time (the last), in time order, leaving out repeats of the same value."""
    by_time = dict(sorted((c[0], c) for c in changes))
    out = []
    for c in by_time.values():
        if not out or out[-1][1:] != c[1:]:
            out.append(c)
    return out


def write_midi(score: Score, path: Path) -> Path:
    """A format-1 MIDI file: a conductor track (tempo, time signatures, keys) and one track
    per score track, on its own channel (skipping percussion's)."""
    import mido
    q = lambda t: round(t * TICKS_PER_QUARTER)
    conductor = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(score.qpm or 120)))]
    for t, num, den in score.time_signatures:
        conductor.append((q(t), 0, mido.MetaMessage("time_signature", numerator=num,
                                                    denominator=den)))
    for t, pc, mode in score.keys:
        name = (MINOR_KEYS[pc] + "m") if mode == "minor" else MAJOR_KEYS[pc]
        conductor.append((q(t), 0, mido.MetaMessage("key_signature", key=name)))
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    mid.tracks.append(_track(conductor))
    for tr in range(score.n_tracks):
        ch = tr if tr < DRUM_CHANNEL else tr + 1
        ch %= 16
        events = []
        if tr < len(score.tracks):
            events.append((0, 0, mido.MetaMessage("track_name", name=score.tracks[tr])))
        for n in score.notes:
            if n.track == tr and q(n.end) > q(n.start):
                # at one tick, note-offs (0) before note-ons (1): a repeated pitch restrikes
                events.append((q(n.start), 1, mido.Message(
                    "note_on", channel=ch, note=n.pitch, velocity=max(1, min(127, n.velocity)))))
                events.append((q(n.end), 0, mido.Message("note_off", channel=ch, note=n.pitch)))
        mid.tracks.append(_track(events))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def _track(events: list[tuple[int, int, object]]):
    import mido
    track, now = mido.MidiTrack(), 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


# ---------------------------------------------------------------- music21 (notation)

def from_music21(s) -> Score:
    """A Score from a parsed music21 stream: each part a track, tied notes joined, chords
    split into their notes, grace notes (no duration) and unpitched notes left out."""
    from music21 import key as m21key, meter, tempo
    parts = list(getattr(s, "parts", [])) or [s]
    notes = []
    for i, part in enumerate(parts):
        for el in part.stripTies().flatten().notes:
            ql = float(el.duration.quarterLength)
            if ql <= 0:
                continue
            vel = getattr(el.volume, "velocity", None) or DEFAULT_VELOCITY
            start = float(el.offset)
            for p in getattr(el, "pitches", ()):
                notes.append(Note(int(p.midi), start, start + ql, int(vel), i))
    flat = s.flatten()
    keys = []
    for k in flat.getElementsByClass(m21key.KeySignature):
        k = k if isinstance(k, m21key.Key) else k.asKey("major")
        mode = k.mode if k.mode in ("major", "minor") else "major"
        keys.append((float(k.offset), k.tonic.pitchClass, mode))
    sigs = [(float(t.offset), t.numerator, t.denominator)
            for t in flat.getElementsByClass(meter.TimeSignature)]
    marks = list(flat.getElementsByClass(tempo.MetronomeMark))
    qpm = float(marks[0].getQuarterBPM()) if marks and marks[0].getQuarterBPM() else None
    pickup = 0.0
    measures = parts[0].getElementsByClass("Measure") if hasattr(parts[0], "getElementsByClass") else []
    if len(measures) and (measures[0].paddingLeft or 0) > 0:
        pickup = float(measures[0].duration.quarterLength)
    names = [(getattr(p, "partName", None) or f"part {i + 1}") for i, p in enumerate(parts)]
    return Score(notes, _dedupe(keys), _dedupe(sigs), qpm, pickup, names)


def to_music21(score: Score, steps: int = 12):
    """A music21 Score for MusicXML: one part per track, notes starting together with the same
    duration as a chord, durations on a grid of ``steps`` per quarter (tuplets included)."""
    from music21 import chord, key as m21key, meter, note, stream, tempo
    out = stream.Score()
    for tr in range(score.n_tracks):
        part = stream.Part()
        part.partName = score.tracks[tr] if tr < len(score.tracks) else f"track {tr + 1}"
        if tr == 0 and score.qpm:
            part.insert(0, tempo.MetronomeMark(number=score.qpm))
        for t, num, den in score.time_signatures:
            part.insert(quarters(t, steps), meter.TimeSignature(f"{num}/{den}"))
        for t, pc, mode in score.keys:
            tonic = (MINOR_KEYS if mode == "minor" else MAJOR_KEYS)[pc].replace("b", "-")
            part.insert(quarters(t, steps), m21key.Key(tonic, mode))
        groups: dict[tuple, list[int]] = {}
        for n in score.notes:
            if n.track == tr:
                s, e = quarters(n.start, steps), quarters(n.end, steps)
                if e > s:
                    groups.setdefault((s, e), []).append(n.pitch)
        for (s, e), pitches in sorted(groups.items()):
            el = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(sorted(pitches))
            el.quarterLength = e - s
            part.insert(s, el)
        out.insert(0, part)
    return out
