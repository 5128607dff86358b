"""Note-level statistics of music: histogram distances and the copied-run novelty check.

Both read decoded scores (data/music/score.py: notes with MIDI pitch, start and end in quarter
notes, track), so they measure any representation alike, and a held note counts once however
many grid steps it spans (the grid is read as held notes when it is decoded).

Histogram distances (Yang & Lerch 2018, "On the evaluation of generative models in music",
use the pitch-class and note-length histograms as features):

- pitch-class histogram: over all notes of a set of pieces, how many have each of the 12
  pitch classes (a note counts once, whatever its length);
- duration histogram: how many notes have each duration, the durations rounded to the
  nearest 1/12 of a quarter (16ths and triplets) and those of two whole notes (8 quarters)
  or more pooled in one bin.

Each histogram is normalised to sum 1 (p for the samples, q for the held-out pieces), and the
distance is the total-variation distance TV(p, q) = 1/2 sum_i |p_i - q_i| = 1 - sum_i min(p_i,
q_i), i.e. one minus the overlapping area of the two histograms (Yang & Lerch's "overlapping
area", here of the pooled histograms rather than of per-piece feature distances). It lies in
[0, 1]: 0 for the same distribution, 1 for disjoint ones. The training pieces' distance to the
held-out ones is the control: real music of the same corpus is not at 0.

Novelty (the copied run): each track of a piece is read as its sequence of notes in order of
onset (chords low to high), each note its pitch or, with ``durations=True``, the pair (pitch,
duration). A sample's copied run is the longest contiguous stretch of one of its tracks'
sequences that also occurs contiguously in a track of a training piece, as a length in notes
and as a fraction of that track's notes (the largest over its tracks). A model that copies
its training pieces has runs as long as the samples; held-out pieces, which the model never
saw, show how long a run real new music of the corpus shares with the training set by chance
(cadences, scales), and are the control. Runs are searched with a suffix automaton of the
training sequences (Blumer et al. 1985), in time linear in the notes.
"""
from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Hashable, Iterable, Sequence

from genzoo.data.music.score import Score

DURATION_STEPS = 12           # duration bins per quarter note
LONG = Fraction(8)            # durations of this many quarters or more share one bin


def total_variation(p: Counter, q: Counter) -> float:
    """1/2 sum |p_i - q_i| of the two histograms normalised to sum 1 (nan if one is empty)."""
    P, Q = sum(p.values()), sum(q.values())
    if not P or not Q:
        return float("nan")
    return 0.5 * sum(abs(p[k] / P - q[k] / Q) for k in set(p) | set(q))


def pitch_class_histogram(scores: Iterable[Score]) -> Counter:
    """Notes per pitch class 0-11 (C = 0), pooled over ``scores``."""
    return Counter(n.pitch % 12 for s in scores for n in s.notes)


def duration_bin(quarters: float) -> Fraction:
    d = Fraction(round(quarters * DURATION_STEPS), DURATION_STEPS)
    return min(d, LONG)


def duration_histogram(scores: Iterable[Score]) -> Counter:
    """Notes per duration bin (quarters, see the module docstring), pooled over ``scores``."""
    return Counter(duration_bin(n.end - n.start) for s in scores for n in s.notes)


def histogram_distances(samples: Sequence[Score], reference: Sequence[Score]) -> dict[str, float]:
    """Total-variation distances of the pitch-class and duration histograms."""
    return {"pitch_class_distance": total_variation(pitch_class_histogram(samples),
                                                    pitch_class_histogram(reference)),
            "duration_distance": total_variation(duration_histogram(samples),
                                                 duration_histogram(reference))}


# ---------------------------------------------------------------- the copied run

def note_sequences(score: Score, durations: bool = False) -> list[list[Hashable]]:
    """Each track's notes in order of onset (chords low to high): pitches, or (pitch,
    duration bin) pairs."""
    tracks: dict[int, list] = {}
    for n in sorted(score.notes, key=lambda n: (n.track, n.start, n.pitch)):
        tracks.setdefault(n.track, []).append(
            (n.pitch, duration_bin(n.end - n.start)) if durations else n.pitch)
    return [tracks[k] for k in sorted(tracks)]


class SuffixAutomaton:
    """The smallest automaton that accepts every substring of the sequences added (Blumer et
    al. 1985). Each sequence is followed by a separator of its own, so no accepted run crosses
    from one sequence into the next."""

    def __init__(self, sequences: Iterable[Sequence[Hashable]] = ()):
        self.next: list[dict] = [{}]
        self.link, self.length = [-1], [0]
        self.last = 0
        for i, seq in enumerate(sequences):
            for symbol in seq:
                self._extend(symbol)
            self._extend(("separator", i))

    def _extend(self, c: Hashable) -> None:
        cur = len(self.next)
        self.next.append({})
        self.length.append(self.length[self.last] + 1)
        self.link.append(0)
        p = self.last
        while p != -1 and c not in self.next[p]:
            self.next[p][c] = cur
            p = self.link[p]
        if p != -1:
            q = self.next[p][c]
            if self.length[p] + 1 == self.length[q]:
                self.link[cur] = q
            else:                                   # split q: a clone of the shorter length
                clone = len(self.next)
                self.next.append(dict(self.next[q]))
                self.length.append(self.length[p] + 1)
                self.link.append(self.link[q])
                while p != -1 and self.next[p].get(c) == q:
                    self.next[p][c] = clone
                    p = self.link[p]
                self.link[q] = self.link[cur] = clone
        self.last = cur

    def longest_common_run(self, seq: Sequence[Hashable]) -> int:
        """The length of the longest contiguous part of ``seq`` that the automaton accepts."""
        state = run = best = 0
        for c in seq:
            while state and c not in self.next[state]:
                state = self.link[state]
                run = self.length[state]
            if c in self.next[state]:
                state, run = self.next[state][c], run + 1
            best = max(best, run)
        return best


def copied_runs(pieces: Sequence[Score], index: SuffixAutomaton,
                durations: bool = False) -> list[tuple[int, float]]:
    """(copied run in notes, its fraction of its track's notes) of each piece with notes,
    the largest over its tracks (see the module docstring)."""
    out = []
    for s in pieces:
        seqs = [q for q in note_sequences(s, durations) if q]
        if seqs:
            runs = [index.longest_common_run(q) for q in seqs]
            out.append((max(runs), max(r / len(q) for r, q in zip(runs, seqs))))
    return out


def novelty(samples: Sequence[Score], train: Sequence[Score], held_out: Sequence[Score],
            durations: bool = False) -> dict[str, float]:
    """Mean and largest copied run of the samples and, as the control, of held-out pieces."""
    index = SuffixAutomaton(q for s in train for q in note_sequences(s, durations))
    out = {}
    for name, pieces in (("", samples), ("held_out_", held_out)):
        runs = copied_runs(pieces, index, durations)
        nan = float("nan")
        out[f"{name}copied_run"] = sum(r for r, _ in runs) / len(runs) if runs else nan
        out[f"{name}copied_run_max"] = float(max((r for r, _ in runs), default=nan))
        out[f"{name}copied_fraction"] = sum(f for _, f in runs) / len(runs) if runs else nan
    return out
