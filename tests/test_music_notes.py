"""Note-level music statistics on hand-made pieces with known answers: the pitch-class and
duration histogram distances (total variation), and the copied run against a brute force."""
from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

from genzoo.data.music.score import Note, Score
from genzoo.evaluation import music_notes as MN


def melody(pitches, durations=None, track=0, t0=0.0):
    t, notes = t0, []
    for i, p in enumerate(pitches):
        d = durations[i] if durations else 1.0
        notes.append(Note(p, t, t + d, track=track))
        t += d
    return notes


def test_total_variation_by_hand():
    assert MN.total_variation(Counter({0: 1}), Counter({0: 5})) == 0.0
    assert MN.total_variation(Counter({0: 1}), Counter({1: 3})) == 1.0
    # p = (1/2, 1/2, 0), q = (1/4, 1/4, 1/2): 1/2 (1/4 + 1/4 + 1/2) = 1/2
    assert MN.total_variation(Counter({0: 2, 1: 2}), Counter({0: 1, 1: 1, 2: 2})) == 0.5
    assert math.isnan(MN.total_variation(Counter(), Counter({0: 1})))


def test_pitch_class_distance_counts_octaves_as_one_class_and_notes_once():
    c_major = Score(melody([60, 64, 67, 72]))                  # C E G C: C twice
    long_c = Score(melody([48, 76, 55], durations=[4.0, 0.25, 1.0]))   # C3 E5 G3
    # the same classes: C 1/2, E 1/4, G 1/4 against C 1/3, E 1/3, G 1/3 -> TV = 1/6
    d = MN.histogram_distances([c_major], [long_c])
    assert abs(d["pitch_class_distance"] - 1 / 6) < 1e-12
    transposed = Score(melody([61, 65, 68, 73]))               # every class moved: disjoint
    assert MN.histogram_distances([c_major], [transposed])["pitch_class_distance"] == 1.0


def test_duration_distance_bins_on_twelfths_of_a_quarter_and_pools_long_notes():
    a = Score(melody([60, 62, 64, 65], durations=[0.25, 0.25, 1.0, 9.0]))
    b = Score(melody([60, 62, 64, 65], durations=[0.26, 0.25, 1.0, 12.0]))   # 0.26 -> 1/4
    assert MN.histogram_distances([a], [b])["duration_distance"] == 0.0
    assert MN.duration_bin(1 / 3) == Fraction(1, 3) and MN.duration_bin(20) == MN.LONG
    c = Score(melody([60, 62, 64, 65], durations=[0.5, 0.5, 1.0, 9.0]))      # 16ths -> 8ths
    assert MN.histogram_distances([a], [c])["duration_distance"] == 0.5


def test_note_sequences_per_track_in_onset_order_chords_low_to_high():
    s = Score(melody([67, 65], track=1) + [Note(64, 0, 1), Note(60, 0, 1), Note(62, 1, 2)])
    assert MN.note_sequences(s) == [[60, 64, 62], [67, 65]]
    assert MN.note_sequences(s, durations=True)[1] == [(67, 1), (65, 1)]


def brute_force_run(seq, train):
    best = 0
    for i in range(len(seq)):
        for j in range(i + 1, len(seq) + 1):
            part = seq[i:j]
            if any(part == t[k:k + len(part)] for t in train for k in range(len(t))):
                best = max(best, j - i)
    return best


def test_copied_run_is_the_longest_common_run_and_does_not_cross_pieces():
    train = [[60, 62, 64, 65, 67], [72, 71, 69]]
    index = MN.SuffixAutomaton(train)
    assert index.longest_common_run([50, 62, 64, 65, 51]) == 3
    assert index.longest_common_run([60, 62, 64, 65, 67, 72, 71]) == 5     # not 7: two pieces
    assert index.longest_common_run([40, 41]) == 0
    rng = random.Random(0)
    for _ in range(200):                                   # against a brute force
        tr = [[rng.randrange(4) for _ in range(rng.randrange(1, 9))] for _ in range(3)]
        seq = [rng.randrange(4) for _ in range(rng.randrange(1, 12))]
        assert MN.SuffixAutomaton(tr).longest_common_run(seq) == brute_force_run(seq, tr)


def test_novelty_reports_runs_and_fractions_beside_the_held_out_control():
    train = [Score(melody([60, 62, 64, 65, 67, 69, 71, 72]))]
    copy = Score(melody([60, 62, 64, 65, 67, 69, 71, 72]))          # all 8 copied
    half = Score(melody([64, 65, 67, 69, 50, 51, 52, 53]))          # 4 of 8
    held = Score(melody([62, 64, 55, 57, 59]) + melody([30, 31], track=1))   # 2 of 5, 0 of 2
    n = MN.novelty([copy, half], train, [held])
    assert n["copied_run"] == 6.0 and n["copied_run_max"] == 8.0
    assert n["copied_fraction"] == 0.75
    assert n["held_out_copied_run"] == 2.0 and n["held_out_copied_fraction"] == 0.4
    # with durations, a copy in other rhythms is no copy
    slow = Score(melody([60, 62, 64, 65], durations=[2.0] * 4))
    assert MN.novelty([slow], train, [held], durations=True)["copied_run"] == 0.0
    assert MN.novelty([slow], train, [held])["copied_run"] == 4.0
