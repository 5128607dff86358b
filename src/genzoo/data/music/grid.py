"""Music on a 16th-note grid: the JSB chorales' voices and MuseGAN's piano rolls.

- The *voice grid* (Boulanger-Lewandowski et al. 2012; Huang et al. 2019's Coconet data):
  at each 16th note, each voice's pitch or a rest, an array (steps, voices) with NaN for a
  rest. As tokens (``music=grid``) it is read step by step, voice by voice: ``S A T B S A T
  B ...``. A pitch held over several steps and a pitch struck again look the same here;
  the grid is read as held notes.
- The *piano roll* (Dong et al. 2018, MuseGAN): for each bar, step, pitch and track, whether
  the pitch sounds, an array (bars, steps, pitches, tracks); a bar is 16 steps (4/4 in 16ths).
  Phrases start at the first bar line (after the pickup) and the incomplete end is dropped.
"""
from __future__ import annotations

import numpy as np

from genzoo.data.music.score import Note, Score, parse_pitch, pitch_name
from genzoo.errors import GenzooError

STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
SATB = ["soprano", "alto", "tenor", "bass"]
PAD, START, REST = "PAD", "START", "rest"


def _runs(column: np.ndarray):
    """(start, end, value) of the runs of equal values in ``column`` (NaN runs left out)."""
    start = 0
    for i in range(1, len(column) + 1):
        if i == len(column) or not (column[i] == column[start]):
            if not np.isnan(column[start]):
                yield start, i, column[start]
            start = i


def score_from_grid(a: np.ndarray, where: str = "grid") -> Score:
    """The held notes of a voice grid (steps, voices); the piece is taken to end on a bar line
    (so the steps before a whole number of bars are a pickup), in 4/4."""
    ok = np.isnan(a) | ((a == np.round(a)) & (a >= 0) & (a < 128))
    if not ok.all():
        raise GenzooError(f"{where}: values must be MIDI pitches 0-127 or NaN (rest)")
    k = 1 / STEPS_PER_QUARTER
    notes = [Note(int(p), s * k, e * k, track=v)
             for v in range(a.shape[1]) for s, e, p in _runs(a[:, v])]
    names = SATB if a.shape[1] == 4 else [f"voice {v + 1}" for v in range(a.shape[1])]
    return Score(notes, time_signatures=[(0.0, 4, 4)],
                 pickup=(len(a) % STEPS_PER_BAR) * k, tracks=names)


def voice_grid(score: Score, voices: int | None = None) -> np.ndarray:
    """At each 16th step, each track's highest sounding pitch (NaN: none): (steps, voices)."""
    q = lambda t: round(t * STEPS_PER_QUARTER)
    V = voices or score.n_tracks
    a = np.full((q(score.end), V), np.nan)
    for n in sorted(score.notes, key=lambda n: n.pitch):      # higher pitches win
        if n.track < V:
            s = q(n.start)
            a[s:max(q(n.end), s + 1), n.track] = n.pitch
    return a


def grid_tokens(a: np.ndarray) -> list[str]:
    """START, then each step's voices in order, as pitch names or ``rest``."""
    return [START] + [REST if np.isnan(p) else pitch_name(int(p)) for p in a.reshape(-1)]


def grid_from_tokens(tokens: list[str], voices: int) -> np.ndarray:
    """The voice grid spelled by ``tokens`` after their START (an unreadable token is a
    rest; an incomplete last step is dropped)."""
    if START in tokens:
        tokens = tokens[tokens.index(START) + 1:]
    values = [np.nan if (p := parse_pitch(t)) is None else p for t in tokens if t != PAD]
    steps = len(values) // voices
    return np.array(values[:steps * voices], dtype=np.float64).reshape(steps, voices)


def grid_vocabulary() -> list[str]:
    """PAD (id 0), START, rest, then every MIDI pitch: the same ids for any data, so that a
    model trained on one split reads another (``file.npz:valid``) the same way."""
    return [PAD, START, REST] + [pitch_name(p) for p in range(128)]


# ---------------------------------------------------------------- piano rolls

def piano_roll(score: Score, tracks: int | None = None) -> np.ndarray:
    """Whether each MIDI pitch sounds in each track at each 16th step from the first bar line:
    bool (steps, 128, tracks)."""
    q = lambda t: round(t * STEPS_PER_QUARTER)
    roll = np.zeros((q(score.end), 128, tracks or max(1, score.n_tracks)), dtype=bool)
    for n in score.notes:
        if n.track < roll.shape[2]:
            s = q(n.start)
            roll[s:max(q(n.end), s + 1), n.pitch, n.track] = True
    return roll[q(score.pickup):]


def phrases(roll: np.ndarray, bars: int, low: int, high: int) -> tuple[np.ndarray, int]:
    """Consecutive phrases of ``bars`` bars of ``roll`` (steps, 128, tracks), pitches
    ``low``..``high``: uint8 (n, bars, 16, high - low + 1, tracks) in {0, 1}, and how many
    sounding cells fell outside the pitch range."""
    n = len(roll) // (bars * STEPS_PER_BAR)
    roll = roll[:n * bars * STEPS_PER_BAR]
    lost = int(roll[:, :low].sum() + roll[:, high + 1:].sum())
    kept = roll[:, low:high + 1].astype(np.uint8)
    return kept.reshape(n, bars, STEPS_PER_BAR, high - low + 1, roll.shape[2]), lost


def score_from_roll(r: np.ndarray, low: int, tracks: list[str] | None = None,
                    threshold: float = 0.5) -> Score:
    """The notes of a piano roll (bars, steps, pitches, tracks) with values in [0, 1]: each run
    of steps above ``threshold`` is one held note."""
    on = np.asarray(r).reshape(-1, r.shape[-2], r.shape[-1]) > threshold
    k = 1 / STEPS_PER_QUARTER
    notes = [Note(low + p, s * k, e * k, track=t)
             for t in range(on.shape[2]) for p in range(on.shape[1])
             for s, e, _ in _runs(np.where(on[:, p, t], 1.0, np.nan))]
    names = tracks or (SATB if on.shape[2] == 4 else [f"track {t + 1}" for t in range(on.shape[2])])
    return Score(notes, time_signatures=[(0.0, 4, 4)], tracks=list(names))


def pitch_range(spec: str, rolls: list[np.ndarray]) -> tuple[int, int]:
    """``data.pitch_range``: "lo-hi" (MIDI numbers) or "auto" (the lowest to the highest
    pitch that sounds in ``rolls``)."""
    if spec == "auto":
        used = np.flatnonzero(np.any([r.any(axis=(0, 2)) for r in rolls], axis=0))
        return (int(used[0]), int(used[-1])) if len(used) else (60, 60)
    lo, sep, hi = spec.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and int(lo) <= int(hi) < 128):
        raise GenzooError(f"data.pitch_range={spec!r}: must be 'auto' or 'LOW-HIGH' with MIDI "
                          "numbers 0-127, e.g. 0-83 (the book's 84 pitches)")
    return int(lo), int(hi)

