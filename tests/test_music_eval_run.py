"""Music runs measured by `genzoo eval` (histogram distances, copied runs, MuseGAN's measures),
and vocabularies that do not depend on the data: the same id for a token in any split, and a
run decodes with the vocabulary it was trained with."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("mido")

from genzoo import data as D  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.data.music import decode, events, grid, tokens  # noqa: E402
from genzoo.data.music.score import Note, Score, write_midi  # noqa: E402
from genzoo.training.run import load_model  # noqa: E402


def chorale(seed: int, bars: int = 4) -> Score:
    """Four voices of random quarter and half notes in G major, ``bars`` bars of 4/4."""
    rng = np.random.default_rng(seed)
    notes = []
    for v, base in enumerate((72, 67, 60, 48)):
        t = 0.0
        while t < 4 * bars:
            d = float(rng.choice([1.0, 2.0]))
            notes.append(Note(int(base + rng.choice([0, 2, 4, 5, 7])), t, t + d, track=v))
            t += d
    return Score(notes, keys=[(0.0, 7, "major")], time_signatures=[(0.0, 4, 4)], qpm=100,
                 tracks=["soprano", "alto", "tenor", "bass"])


def folder(path, seeds, shift=0):
    for i in seeds:
        write_midi(chorale(i).transpose(shift), path / f"c{i}.mid")
    return path


def token_ids(ds) -> dict:
    """token name -> id, over the note and duration streams the dataset uses."""
    nv, dv = ds.meta["note_vocab"], ds.meta["duration_vocab"]
    return ({nv[i]: i for i in ds.x.unique().tolist()},
            {dv[i]: i for i in ds.items["duration"].unique().tolist()})


def test_two_splits_give_a_token_the_same_id(tmp_path):
    a = D.load(str(folder(tmp_path / "a", range(3))), D.DataOptions(context=16))
    b = D.load(str(folder(tmp_path / "b", range(3, 5), shift=-2)), D.DataOptions(context=16))
    (na, da), (nb, db) = token_ids(a), token_ids(b)
    shared = set(na) & set(nb)
    assert set(na) != set(nb) and len(shared) >= 5          # different music, some in common
    assert all(na[t] == nb[t] for t in shared) and all(da[t] == db[t] for t in set(da) & set(db))
    assert a.meta["note_vocab"] == b.meta["note_vocab"] == tokens.vocabularies()[0]
    # the fixed vocabularies of the other representations too
    for rep in ("grid", "events"):
        va = D.load(str(tmp_path / "a"), D.DataOptions(music=rep, context=16)).meta["vocab"]
        vb = D.load(str(tmp_path / "b"), D.DataOptions(music=rep, context=16)).meta["vocab"]
        assert va == vb == (grid.grid_vocabulary() if rep == "grid" else events.vocabulary())


def test_vocabulary_covers_keys_signatures_pitches_and_long_notes():
    nv, dv = tokens.vocabularies()
    assert len(nv) == len(set(nv)) and len(dv) == len(set(dv)) and nv[0] == dv[0] == "PAD"
    assert {"G:major", "C#:minor", "3/4TS", "6/8TS", "rest", "C4", "G9"} <= set(nv)
    # a note of five bars is written as pairs of at most MAX_QUARTERS; an odd metre is left out
    s = Score([Note(60, 0, 20)], time_signatures=[(0.0, 5, 3)])
    assert tokens.encode(s) == [("START", "0"), ("C4", "16"), ("C4", "4")]
    assert all(d in dv for _, d in tokens.encode(s))


def test_a_run_decodes_with_its_own_vocabulary(tmp_path):
    songs = folder(tmp_path / "songs", range(4))
    run = tmp_path / "run"
    assert main(["train", "music_transformer", "--data", str(songs), "--preset", "tiny",
                 "--steps", "2", "--out", str(run), "--no-progress",
                 "--set", "train.sample_n=1", "--set", "train.batch_size=4"]) == 0
    model, _ = load_model(run, torch.device("cpu"))
    meta = model.output_info.meta
    assert meta["note_vocab"] == tokens.vocabularies()[0]
    other = D.load(str(folder(tmp_path / "other", [9], shift=3)), D.DataOptions(context=16))
    b = other.batch(torch.arange(len(other)))
    mine = decode(b["x"], meta, b["duration"])
    theirs = decode(b["x"], other.meta, b["duration"])
    assert [s.notes for s in mine] == [s.notes for s in theirs] and mine[0].notes


@pytest.mark.parametrize("family", ["music_transformer", "musegan"])
def test_genzoo_eval_of_a_music_run(family, tmp_path, capsys):
    songs = folder(tmp_path / "songs", range(8))
    run = tmp_path / "run"
    assert main(["train", family, "--data", str(songs), "--preset", "tiny", "--steps", "2",
                 "--out", str(run), "--no-progress", "--set", "train.sample_n=1",
                 "--set", "train.batch_size=4", "--set", "data.holdout=0.25"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "-n", "8"]) == 0
    out = capsys.readouterr().out
    r = json.loads((run / "eval.json").read_text())
    m = r["metrics"]
    for k in ("pitch_class_distance", "duration_distance", "train_pitch_class_distance",
              "train_duration_distance", "copied_fraction", "held_out_copied_fraction"):
        assert 0 <= m[k] <= 1, k
    for k in ("copied_run", "copied_run_max", "held_out_copied_run"):
        assert m[k] >= 0 and m[k] == m[k], k
    assert m["copied_run"] <= m["copied_run_max"]
    assert "pitch-class TV" in out and "copied run" in out
    if family == "musegan":
        assert m["held_out_empty_bars/soprano"] == 0.0 and 1 <= m["pitch_classes/bass"] <= 12
        assert 0 <= m["qualified_notes/alto"] <= 1 and m["shuffled_tonal_distance"] >= 0
