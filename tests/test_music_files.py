"""Music files: folders and archives, the parse cache, bad files, the JSB grid .npz, the sample
writer (MIDI, MusicXML, piano roll) and sound through FluidSynth."""
from __future__ import annotations

import io
import shutil
import tarfile
import wave
import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("mido")

from genzoo import data as D  # noqa: E402
from genzoo.data.music import files, read_grid, read_music  # noqa: E402
from genzoo.data.music.score import Note, Score, write_midi  # noqa: E402
from genzoo.errors import GenzooError  # noqa: E402
from genzoo.models.base import DataInfo  # noqa: E402
from genzoo.viz import music as viz  # noqa: E402
from genzoo.viz.samples import save_samples  # noqa: E402


def song(seed: int) -> Score:
    rng = np.random.default_rng(seed)
    notes = [Note(int(60 + rng.integers(0, 12)), i / 2, (i + 1) / 2) for i in range(16)]
    return Score(notes + [Note(48, 0, 8, track=1)], keys=[(0.0, 7, "major")],
                 time_signatures=[(0.0, 4, 4)], qpm=120)


@pytest.fixture
def songs(tmp_path):
    folder = tmp_path / "songs"
    for i in range(3):
        write_midi(song(i), folder / f"song{i}.mid")
    (folder / "README.txt").write_text("not music, and ignored")
    return folder


def test_folder_tar_and_zip_read_the_same(songs, tmp_path):
    tar, zf = tmp_path / "songs.tar.gz", tmp_path / "songs.zip"
    with tarfile.open(tar, "w:gz") as t:
        t.add(songs, arcname="songs")
    with zipfile.ZipFile(zf, "w") as z:
        for p in sorted(songs.iterdir()):
            z.write(p, f"songs/{p.name}")
    got = [D.load(str(p), D.DataOptions(context=16)) for p in (songs, tar, zf)]
    for ds in got[1:]:
        assert torch.equal(ds.x, got[0].x) and ds.meta["note_vocab"] == got[0].meta["note_vocab"]
    assert got[0].modality == "music" and "G:major" in got[0].meta["note_vocab"]
    one = D.load(str(songs / "song0.mid"), D.DataOptions(context=16))
    names = lambda ds: [[ds.meta["note_vocab"][i] for i in row] for row in ds.x.tolist()]
    assert names(one) == names(got[0])[:len(one)]                # song0 is the folder's first


def test_parsed_once_then_read_from_the_cache(songs, monkeypatch):
    calls = []
    real = files.parse
    monkeypatch.setattr(files, "parse", lambda name, data: calls.append(name) or real(name, data))
    first = D.load(str(songs))
    assert sorted(calls) == ["song0.mid", "song1.mid", "song2.mid"]
    calls.clear()
    again = D.load(str(songs))
    assert calls == [] and torch.equal(first.x, again.x)
    write_midi(song(7), songs / "song1.mid")               # an edited file is parsed again
    D.load(str(songs))
    assert calls == ["song1.mid"]


def test_max_items_parses_only_what_it_needs(songs, monkeypatch):
    calls = []
    real = files.parse
    monkeypatch.setattr(files, "parse", lambda name, data: calls.append(name) or real(name, data))
    ds = D.load(str(songs), D.DataOptions(max_items=2, context=8))
    assert len(ds) == 2 and calls == ["song0.mid"]


def test_bad_files_are_named_in_one_line_and_skipped_or_refused(songs, capsys):
    (songs / "bad.mid").write_text("this is not a MIDI file")
    write_midi(Score([]), songs / "silent.mid")
    ds = read_music(songs, D.DataOptions())
    err = capsys.readouterr().err
    assert "skipped bad.mid: not a MIDI file" in err and "skipped silent.mid: has no notes" in err
    assert "Traceback" not in err
    assert any("skipped 2 file(s)" in n and "bad.mid" in n for n in ds.meta["notes"])
    with pytest.raises(GenzooError, match=r"bad\.mid: not a MIDI file .*data\.bad_files=skip") as e:
        read_music(songs, D.DataOptions(bad_files="refuse"))
    assert "\n" not in str(e.value)
    with pytest.raises(GenzooError, match="data.bad_files='maybe'"):
        read_music(songs, D.DataOptions(bad_files="maybe"))


def test_empty_and_all_bad_folders_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GenzooError, match="empty: no music files in it"):
        read_music(empty, D.DataOptions())
    (empty / "a.mid").write_bytes(b"MThd garbage")
    with pytest.raises(GenzooError, match="none of its 1 music files could be read"):
        read_music(empty, D.DataOptions())
    bad_xml = tmp_path / "score.musicxml"
    bad_xml.write_text("<not-a-score/>")
    if _has_music21():
        with pytest.raises(GenzooError, match="none of its 1 music files"):
            D.load(str(bad_xml))


def _has_music21() -> bool:
    try:
        import music21  # noqa: F401
        return True
    except ModuleNotFoundError:
        return False


def _jsb(path, splits=("train", "valid")):
    rng = np.random.default_rng(0)
    arrays = {}
    for k, name in enumerate(splits):
        pieces = np.empty(3, dtype=object)
        for i in range(3):
            a = (60 + rng.integers(-5, 5, (36, 4)) - 7 * np.arange(4)).astype(np.float16)
            a[5 + i, 1] = np.nan
            pieces[i] = a
        arrays[name] = pieces
    np.savez(path, **arrays)
    return path


def test_jsb_grid_npz_splits_without_running_pickles(tmp_path):
    path = _jsb(tmp_path / "jsb.npz")
    train = D.load(str(path), D.DataOptions(music="grid", holdout=0))
    valid = D.load(f"{path}:valid", D.DataOptions(music="grid", holdout=0))
    assert train.source.endswith(":train") and valid.source.endswith(":valid")
    assert not torch.equal(train.x[:1], valid.x[:1])
    assert train.meta["voices"] == 4 and train.meta["tracks"] == ["soprano", "alto", "tenor", "bass"]
    roll = D.load(f"{path}:valid", D.DataOptions(music="pianoroll", holdout=0))
    assert roll.x.shape == (3, 2, 16, 84, 4)            # 36 steps: a 4-step pickup and 2 bars
    with pytest.raises(GenzooError, match="no split 'test' in it.*train, valid"):
        D.load(f"{path}:test")
    evil = np.empty(1, dtype=object)
    evil[0] = io.BytesIO(b"x")                          # pickled by class: must be refused
    np.savez(tmp_path / "evil.npz", train=evil)
    with pytest.raises(GenzooError, match="refusing to load global _io.BytesIO"):
        read_grid(tmp_path / "evil.npz", D.DataOptions())


def test_bach_chorales_builtin_is_offline_and_limited_by_max_items():
    pytest.importorskip("music21")
    ds = D.load("bach-chorales", D.DataOptions(max_items=3, music="grid", context=32))
    assert len(ds) == 3 and ds.meta["voices"] == 4
    assert [t.lower() for t in ds.meta["tracks"]] == ["soprano", "alto", "tenor", "bass"]


# ---------------------------------------------------------------- the sample writer

def _token_data(songs):
    ds = D.load(str(songs), D.DataOptions(context=16))
    return ds, DataInfo.of(ds)


def test_writer_writes_midi_musicxml_and_a_piano_roll(songs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(viz, "sound_missing", lambda: "FluidSynth is not installed (test)")
    ds, info = _token_data(songs)
    batch = ds.batch(torch.arange(2))
    out = save_samples({"x": batch["x"], "duration": batch["duration"]}, info, tmp_path / "song")
    names = sorted(p.name for p in out)
    assert {"song_0.mid", "song_1.mid", "song.png"} <= set(names)
    assert not any(n.endswith(".wav") for n in names)
    assert capsys.readouterr().err.count("no WAV audio: FluidSynth is not installed") == 1
    if _has_music21():
        assert (tmp_path / "song_0.musicxml").read_text().count("<note") > 0
    back = D.load(str(tmp_path / "song_0.mid"), D.DataOptions(context=16))
    first = [info.meta["note_vocab"][i] for i in batch["x"][0].tolist()]
    assert [back.meta["note_vocab"][i] for i in back.x[0].tolist()] == first


def test_sound_and_notation_cover_the_first_samples_midi_all(songs, tmp_path, monkeypatch):
    rendered = []
    monkeypatch.setattr(viz, "sound_missing", lambda: None)
    monkeypatch.setattr(viz, "render_wav", lambda mid, wav: rendered.append(wav) or wav)
    ds, info = _token_data(songs)
    batch = ds.batch(torch.arange(len(ds)).repeat(4)[:viz.SHOWN + 2])
    out = save_samples(batch["x"], info, tmp_path / "s", duration=batch["duration"], quiet=True)
    assert sum(p.suffix == ".mid" for p in out) == viz.SHOWN + 2
    assert len(rendered) == viz.SHOWN


def test_sound_is_skipped_cleanly_without_fluidsynth(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "FluidSynth is not installed" in viz.sound_missing()
    monkeypatch.undo()
    monkeypatch.setenv("GENZOO_SOUNDFONT", "/nowhere/x.sf2")
    if shutil.which("fluidsynth"):
        assert "no soundfont at /nowhere/x.sf2" in viz.sound_missing()


@pytest.mark.skipif(viz.sound_missing() is not None, reason="FluidSynth or its soundfont missing")
def test_wav_is_rendered_and_not_silent(songs, tmp_path):
    ds, info = _token_data(songs)
    batch = ds.batch(torch.arange(1))
    out = save_samples(batch["x"], info, tmp_path / "song", duration=batch["duration"])
    wav = tmp_path / "song_0.wav"
    assert wav in out
    with wave.open(str(wav)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        assert w.getframerate() == 44100 and w.getnframes() > 44100      # over a second
    assert np.abs(frames).max() > 1000
