"""Music representations: token pairs, events, the voice grid and piano rolls round-trip
through MIDI (and MusicXML); transposition keeps intervals and never leaks held-out pieces."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

pytest.importorskip("mido")

from genzoo import data as D  # noqa: E402
from genzoo.data.music import represent as B  # noqa: E402
from genzoo.data.music import events, grid, tokens  # noqa: E402
from genzoo.data.music.score import (Note, Score, parse_pitch, read_midi,  # noqa: E402
                                     to_music21, write_midi)
from genzoo.models.base import DataInfo  # noqa: E402

T3 = 1 / 3


def small_score() -> Score:
    """A melody over a held chord, a triplet, a rest, a key and a time signature."""
    notes = [Note(72, 0, 1), Note(76, 1.5, 2), Note(79, 2, 3),                 # C5, E5, G5
             Note(81, 3, 3 + T3), Note(83, 3 + T3, 3 + 2 * T3), Note(84, 3 + 2 * T3, 4),
             Note(74, 5, 6),                                                  # after a rest
             Note(60, 0, 2, track=1), Note(64, 0, 2, track=1), Note(65, 2.5, 4, track=1)]
    return Score(notes, keys=[(0.0, 0, "major")], time_signatures=[(0.0, 4, 4)], qpm=100,
                 tracks=["melody", "chords"])


EXPECTED = [("START", "0"), ("C:major", "0"), ("4/4TS", "0"),
            ("C5", "1"), ("E4", "1/2"),          # a rest in the melody: the chord's top note
            ("E5", "1/2"), ("G5", "1/2"), ("G5", "1/2"),   # G5 cut where F4 starts below it
            ("A5", "1/3"), ("B5", "1/3"), ("C6", "1/3"), ("rest", "1"), ("D5", "1")]


def midi_round_trip(score: Score, tmp_path) -> Score:
    return read_midi(write_midi(score, tmp_path / "x.mid").read_bytes())


def test_score_survives_midi(tmp_path):
    s = small_score()
    back = midi_round_trip(s, tmp_path)
    key = lambda n: (n.track, n.pitch, round(n.start * 480), round(n.end * 480))
    assert sorted(map(key, back.notes)) == sorted(map(key, s.notes))
    assert back.keys == s.keys and back.time_signatures == s.time_signatures
    assert back.qpm == pytest.approx(100) and back.tracks == s.tracks


def test_tokens_are_the_top_pitch_per_slice_with_rests_and_durations():
    assert tokens.encode(small_score()) == EXPECTED


def test_tokens_round_trip_through_midi(tmp_path):
    melody = tokens.decode(EXPECTED, qpm=100)
    assert [n.pitch for n in melody.notes] == [72, 64, 76, 79, 79, 81, 83, 84, 74]
    assert tokens.encode(midi_round_trip(melody, tmp_path)) == EXPECTED
    # G5 struck twice: at that tick the first one ends before the second starts
    import mido
    msgs, t = [], 0
    for m in mido.MidiFile(tmp_path / "x.mid").tracks[1]:
        t += m.time
        if m.type.startswith("note") and m.note == 79:
            msgs.append((t, m.type))
    assert msgs == [(960, "note_on"), (1200, "note_off"), (1200, "note_on"), (1440, "note_off")]


def test_tokens_round_trip_through_musicxml(tmp_path):
    pytest.importorskip("music21")
    from music21 import converter
    from genzoo.data.music.score import from_music21
    path = tmp_path / "x.musicxml"
    to_music21(tokens.decode(EXPECTED)).write("musicxml", fp=str(path))
    assert tokens.encode(from_music21(converter.parse(str(path)))) == EXPECTED


def test_token_dataset_has_two_aligned_fields_and_vocabularies():
    ds = B.build([small_score()] * 3, D.DataOptions(context=8, holdout=0), "test")
    assert ds.modality == "music" and ds.x.shape == ds.items["duration"].shape
    nv, dv = ds.meta["note_vocab"], ds.meta["duration_vocab"]
    assert nv[:2] == ["PAD", "START"] and dv[0] == "PAD"
    assert [Fraction(d) for d in dv[1:]] == sorted(Fraction(d) for d in dv[1:])
    first = [(nv[a], dv[b]) for a, b in zip(ds.x[0].tolist(), ds.items["duration"][0].tolist())]
    assert first == EXPECTED[:9]
    assert ds.items["mask"][1].sum() == len(EXPECTED) - 8        # the rest of piece 1, padded
    assert not ds.items["mask"][1, -1] and ds.x[1, -1] == 0
    info = DataInfo.of(ds)
    assert info.fields["duration"].modality == "music" and info.fields["duration"].dtype == "int64"
    (decoded,) = B.decode(ds.x[:1], info.meta, duration=ds.items["duration"][:1])
    assert [n.pitch for n in decoded.notes] == [72, 64, 76, 79, 79, 81]


def test_events_follow_oore_and_round_trip_through_midi(tmp_path):
    assert len(events.vocabulary()) == events.VOCAB_SIZE == 2 + 128 + 128 + 100 + 32
    s = small_score()
    ids = events.encode(s)
    assert ids[0] == events.START and ids[1] == events.VELOCITY + 80 * 32 // 128
    assert sum(events.VELOCITY <= i for i in ids) == 1      # said again only when it changes
    # a quarter at 100 qpm is 0.6 s = 60 shifts of 10 ms: the rest from 4 to 5 is 60 steps
    back = events.decode(ids, qpm=100)
    key = lambda n: (n.pitch, round(n.start * 60), round(n.end * 60))
    assert sorted(map(key, back.notes)) == sorted(map(key, s.notes))
    assert events.encode(midi_round_trip(back, tmp_path)) == ids


def test_events_shift_at_most_a_second_and_keep_velocity_bins():
    s = Score([Note(60, 0, 1, velocity=100), Note(62, 6, 7, velocity=30)], qpm=60)
    ids = events.encode(s)
    shifts = [i - events.SHIFT + 1 for i in ids if events.SHIFT <= i < events.VELOCITY]
    assert shifts[:1] == [100] and sum(shifts[1:6]) == 500     # 5 s of rest: five shifts of 1 s
    vel = [events.decode(ids).notes[i].velocity // 4 for i in range(2)]
    assert vel == [100 // 4, 30 // 4]


def test_transposition_keeps_intervals_durations_and_moves_the_key():
    s = small_score()
    for k in range(-5, 7):
        t = s.transpose(k)
        assert [n.pitch - k for n in t.notes] == [n.pitch for n in s.notes]
        assert [(n.start, n.end) for n in t.notes] == [(n.start, n.end) for n in s.notes]
        assert t.keys == [(0.0, k % 12, "major")]
    assert tokens.encode(s.transpose(2))[1] == ("D:major", "0")


def _melody(seed: int) -> Score:
    rng = np.random.default_rng(seed)
    pitches = 60 + rng.integers(-7, 8, 24)
    return Score([Note(int(p), i / 2, (i + 1) / 2) for i, p in enumerate(pitches)], qpm=100)


def _intervals(ds, i) -> tuple:
    names = [ds.meta["note_vocab"][j] for j in ds.x[i][ds.items["mask"][i]].tolist()]
    pitches = [p for p in map(parse_pitch, names) if p is not None]
    return tuple(np.diff(pitches))


def test_transposed_copies_of_held_out_pieces_are_never_trained_on():
    pieces = [_melody(i) for i in range(10)]
    options = D.DataOptions(context=8, transpose=True, holdout=0.1)
    ds = B.build(pieces, options, "test")
    plain = B.build(pieces, D.DataOptions(context=8), "test")
    assert len(ds) > len(plain) and len(ds.x.unique()) > len(plain.x.unique())
    train, held = ds.split(options.holdout)
    held_shapes = {_intervals(held, i) for i in range(len(held))}
    assert held_shapes and not held_shapes & {_intervals(train, i) for i in range(len(train))}
    # with the copies, every window of a training piece comes in 12 keys with equal intervals
    counts = {}
    for i in range(len(train)):
        counts[_intervals(train, i)] = counts.get(_intervals(train, i), 0) + 1
    assert max(counts.values()) == 12


def test_held_out_pieces_cover_the_split():
    # 4 pieces of 2 windows: the split takes 10% of the 8 original windows (1), or 3 of them;
    # the transposed copies of the training pieces are neither held out nor counted.
    assert B._held_out([2, 2, 2, 2], 0.1) == 1
    assert B._held_out([2, 2, 2, 2], 0) == 0
    assert B._held_out([2, 2, 2, 2], 3) == 2
    assert B._held_out([2, 2, 2, 2], 0.5) == 2


def test_voice_grid_round_trips_and_reads_as_satb_tokens():
    a = np.array([[72, 67, 64, 48], [72, 67, np.nan, 48], [74, 65, 62, 50], [74, 65, 62, 50]] * 4,
                 dtype=np.float64)
    s = grid.score_from_grid(a)
    assert s.pickup == 0 and s.tracks == grid.SATB
    assert Note(48, 0, 0.5, track=3) in s.notes           # a repeated grid pitch is one held...
    np.testing.assert_array_equal(grid.voice_grid(s), a)  # ...and reads back the same
    toks = grid.grid_tokens(a)
    assert toks[:6] == ["START", "C5", "G4", "E4", "C3", "C5"] and toks[7] == "rest"
    np.testing.assert_array_equal(grid.grid_from_tokens(toks, 4), a)
    ds = B.build([s], D.DataOptions(music="grid", context=16, holdout=0), "test")
    other = B.build([s.transpose(5)], D.DataOptions(music="grid", context=16), "test")
    assert ds.meta["vocab"] == other.meta["vocab"] and ds.meta["vocab"][3 + 60] == "C4"
    (back,) = B.decode(ds.x[:1], DataInfo.of(ds).meta)
    np.testing.assert_array_equal(grid.voice_grid(back)[:4], a[:4])


def test_piano_roll_layout_and_round_trip():
    s = Score([Note(60, 0, 2, track=1), Note(72, 1, 1.5, track=0), Note(50, 4, 8, track=2)],
              tracks=["a", "b", "c"])
    ds = B.build([s], D.DataOptions(music="pianoroll", bars=1, pitch_range="48-83", holdout=0),
                 "test")
    assert ds.x.shape == (2, 1, 16, 36, 3) and ds.x.dtype == torch.uint8
    x = ds.batch(torch.arange(2))["x"]                      # floats 0/1, like images
    assert x[0, 0, 0:8, 12, 1].eq(1).all() and x[0, 0, 8:, 12, 1].eq(0).all()
    assert x[0, 0, 4:6, 24, 0].eq(1).all() and x.sum() == 8 + 2 + 16
    back = B.decode(x, DataInfo.of(ds).meta)
    assert back[0].notes == sorted([Note(72, 1, 1.5, track=0), Note(60, 0, 2, track=1)],
                                   key=lambda n: (n.start, n.track))
    assert back[1].notes == [Note(50, 0, 4, track=2)]


def test_piano_roll_range_auto_and_pickup():
    s = Score([Note(62, 0, 1), Note(64, 1, 5), Note(67, 5, 9)], pickup=1.0)
    ds = B.build([s], D.DataOptions(music="pianoroll", bars=2, pitch_range="auto"), "t")
    assert ds.x.shape == (1, 2, 16, 67 - 64 + 1, 1)        # D4 is in the dropped pickup
    assert ds.meta["pitch_low"] == 64 and ds.x[0, 0, 0, 0, 0] == 255
