"""The performance event vocabulary of Oore et al. 2018 ("This time with feeling").

A piece is one stream of events: NOTE_ON and NOTE_OFF for each of the 128 MIDI pitches,
TIME_SHIFT forward by 10 ms to 1 s (100 events), and VELOCITY in 32 bins, which sets the
loudness of the note-ons after it. Time is in seconds, so expressive timing and dynamics are
kept; a score's quarter notes become seconds at its tempo (notation without a tempo is
played at 100 quarters a minute, where a 16th is 15 shifts and a triplet 8th 20).
At one instant note-offs come before note-ons, so a repeated pitch is struck again.
"""
from __future__ import annotations

from genzoo.data.music.score import DEFAULT_VELOCITY, Note, Score

N_PITCH, N_SHIFT, N_VELOCITY = 128, 100, 32
SHIFT_SECONDS = 0.01
NOTATION_QPM = 100.0
PAD, START = 0, 1
ON = 2                                  # ids ON + pitch
OFF = ON + N_PITCH                      # ids OFF + pitch
SHIFT = OFF + N_PITCH                   # ids SHIFT + (steps - 1), steps 1..100
VELOCITY = SHIFT + N_SHIFT              # ids VELOCITY + bin
VOCAB_SIZE = VELOCITY + N_VELOCITY


def vocabulary() -> list[str]:
    return (["PAD", "START"] + [f"on:{p}" for p in range(N_PITCH)]
            + [f"off:{p}" for p in range(N_PITCH)]
            + [f"shift:{10 * (k + 1)}ms" for k in range(N_SHIFT)]
            + [f"velocity:{b}" for b in range(N_VELOCITY)])


def _steps_per_quarter(qpm: float | None) -> float:
    return 60.0 / (qpm or NOTATION_QPM) / SHIFT_SECONDS


def _velocity(b: int) -> int:
    """The middle of velocity bin ``b``."""
    return b * (128 // N_VELOCITY) + 128 // N_VELOCITY // 2


def encode(score: Score) -> list[int]:
    """The event ids of ``score``, opened by START."""
    k = _steps_per_quarter(score.qpm)
    timed = []                          # (step, 0 off | 1 on, pitch, velocity)
    for n in score.notes:
        s = round(n.start * k)
        timed.append((s, 1, n.pitch, n.velocity))
        timed.append((max(round(n.end * k), s + 1), 0, n.pitch, 0))
    timed.sort()
    ids, now, bin_ = [START], 0, None
    for step, on, pitch, velocity in timed:
        while step > now:
            jump = min(step - now, N_SHIFT)
            ids.append(SHIFT + jump - 1)
            now += jump
        if on:
            b = max(0, min(127, velocity)) * N_VELOCITY // 128
            if b != bin_:
                ids.append(VELOCITY + b)
                bin_ = b
            ids.append(ON + pitch)
        else:
            ids.append(OFF + pitch)
    return ids


def decode(ids: list[int], qpm: float | None = None) -> Score:
    """The notes the events play; a note-off with no note sounding is passed over, and notes
    still sounding at the end stop there. Times are written in quarters at ``qpm``."""
    k = _steps_per_quarter(qpm)
    now, velocity = 0, _velocity(DEFAULT_VELOCITY * N_VELOCITY // 128)
    sounding: dict[int, list[tuple[int, int]]] = {}
    notes = []
    for i in ids:
        if ON <= i < OFF:
            sounding.setdefault(i - ON, []).append((now, velocity))
        elif OFF <= i < SHIFT and sounding.get(i - OFF):
            start, vel = sounding[i - OFF].pop(0)
            notes.append(Note(i - OFF, start / k, now / k, vel))
        elif SHIFT <= i < VELOCITY:
            now += i - SHIFT + 1
        elif VELOCITY <= i < VOCAB_SIZE:
            velocity = _velocity(i - VELOCITY)
    for pitch, opened in sounding.items():
        notes += [Note(pitch, s / k, now / k, v) for s, v in opened if now > s]
    return Score(notes, qpm=qpm or NOTATION_QPM, tracks=["performance"])

