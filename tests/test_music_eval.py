"""Music statistics: MuseGAN's measures on rolls made by the test (empty bars counted as
empty), the tonal distance and its shuffled control, and the grid baselines' nats per token."""
from __future__ import annotations

import math

import numpy as np
import torch

from genzoo.evaluation import music as M

LOW = 48                                                  # pitch index 0 = C3


def roll(n=1, bars=2, pitches=36, tracks=2):
    return torch.zeros(n, bars, 16, pitches, tracks)


def test_empty_bars_is_the_share_of_bars_without_a_note():
    x = roll()
    x[0, 0, 3, 12, 0] = 1                                  # track 0 plays in bar 0 only
    x[0, :, :, 5, 1] = 1                                   # track 1 in both bars
    torch.testing.assert_close(M.empty_bars(x), torch.tensor([0.5, 0.0]))


def test_used_pitch_classes_count_octaves_once_and_skip_empty_bars():
    x = roll()
    for p in (0, 4, 7, 12):                                # C3 E3 G3 C4: three classes
        x[0, 0, :4, p, 0] = 1
    x[0, 0, :, 2, 1] = 1
    x[0, 1, :, 3, 1] = 1                                   # D3 in bar 0, D#3 in bar 1
    torch.testing.assert_close(M.used_pitch_classes(x, LOW), torch.tensor([3.0, 1.0]))


def test_qualified_notes_are_at_least_three_steps_even_across_a_bar_line():
    x = roll(tracks=1)
    t = x.flatten(1, 2)                                    # (1, 32 steps, pitches, 1), a view
    t[0, 0:1, 0, 0] = 1                                    # 1 step
    t[0, 2:4, 0, 0] = 1                                    # 2 steps
    t[0, 5:8, 0, 0] = 1                                    # 3 steps: qualified
    t[0, 14:19, 3, 0] = 1                                  # 5 steps over the bar line: one note
    torch.testing.assert_close(M.qualified_notes(x), torch.tensor([0.5]))


def test_tonal_distance_is_zero_for_the_same_harmony_and_grows_when_shuffled():
    x = roll(n=12, tracks=2)
    for i in range(12):                                    # each item in its own key
        x[i, :, :, i, 0] = 1                               # the root in track 0 ...
        x[i, :, :, i + 12, 1] = 1                          # ... and an octave up in track 1
    assert M.tonal_distance(x, LOW, 0, 1) == 0.0
    shuffled = M.shuffle_track(x, 1, torch.Generator().manual_seed(0))
    assert M.tonal_distance(shuffled, LOW, 0, 1) > 0.5
    assert torch.equal(M.empty_bars(shuffled), M.empty_bars(x))
    # a fifth (C, G) against Harte et al.'s map, written out
    y = roll()
    y[..., 0, 0] = 1
    y[..., 7, 1] = 1
    angles = [(1.0, 7 / 6), (1.0, 3 / 2), (0.5, 2 / 3)]
    c = [r * f(0) for r, a in angles for f in (math.sin, math.cos)]
    g = [r * f(7 * a * math.pi) for r, a in angles for f in (math.sin, math.cos)]
    expected = math.dist(c, g)
    assert abs(M.tonal_distance(y, LOW, 0, 1) - expected) < 1e-5


def test_roll_statistics_names_each_track():
    x = roll(tracks=4)
    x[..., 0, :] = 1
    stats = M.roll_statistics(x, LOW, ["s", "a", "t", "b"])
    assert stats["empty_bars/b"] == 0.0 and stats["tonal_distance/s-b"] == 0.0
    assert stats["pitch_classes/a"] == 1.0 and stats["qualified_notes/t"] == 1.0


def test_grid_baselines_by_hand():
    train = [np.array([[60], [60], [62], [62]], dtype=float)]
    held = [np.array([[60], [62]], dtype=float)]
    b = M.grid_baselines(train, held)
    # unigram: (2 + 1) / (4 + 2) = 1/2 for both; the step 60 -> 62 was seen once of twice
    assert abs(b["unigram"] - math.log(2)) < 1e-12
    assert abs(b["previous_step"] - math.log(2)) < 1e-12
    # a random soprano, the alto an octave below it: only the trigram sees the soprano of the
    # same step (the token just before), which gives the alto away
    rng = np.random.default_rng(0)
    s = rng.choice([72, 74, 76], (400, 1))
    grid = np.hstack([s, s - 12]).astype(float)
    b = M.grid_baselines([grid[:300]], [grid[300:]])
    assert b["trigram"] < 0.75 * b["previous_step"] and b["trigram"] < 0.75 * b["unigram"]
    assert abs(b["unigram"] - math.log(3)) < 0.05          # each voice: three pitches alike
