"""Music transformer: causal by gradient over both streams, learns, samples pairs that the
music writer turns into MIDI, and trains and samples from the command line."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("mido")

from genzoo import config as C  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.data import DataOptions  # noqa: E402
from genzoo.data.music import represent  # noqa: E402
from genzoo.data.music.score import Note, Score, write_midi  # noqa: E402
from genzoo.errors import GenzooError  # noqa: E402
from genzoo.models.base import DataInfo  # noqa: E402
from genzoo.models.music_transformer import (MusicTransformer,  # noqa: E402
                                             MusicTransformerConfig)
from genzoo.viz.samples import save_samples  # noqa: E402


def scale_piece(seed: int) -> Score:
    """Rising and falling scales with durations tied to the step: easy to learn."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2] * 3
    t, notes = 0.0, []
    for i, s in enumerate(steps):
        d = 0.5 if i % 2 else 1.0
        notes.append(Note(60 + seed + s, t, t + d))
        t += d
    return Score(notes, keys=[(0.0, seed % 12, "major")], time_signatures=[(0.0, 4, 4)])


def tiny(music="tokens", **cfg):
    ds = represent.build([scale_piece(i) for i in range(4)],
                         DataOptions(music=music, context=16, holdout=0), "scales")
    c = C.from_dict(MusicTransformerConfig, {**MusicTransformer.presets["tiny"],
                                             "music": music, **cfg})
    return MusicTransformer(c, DataInfo.of(ds)), ds


@pytest.mark.parametrize("norm,attention", [("post", "absolute"), ("pre", "absolute"),
                                            ("post", "relative")])
def test_both_heads_at_t_depend_on_both_streams_up_to_t_only(norm, attention):
    model, ds = tiny(norm=norm, attention=attention)
    model.eval()
    parts = [e.detach().requires_grad_() for e in
             model.embed_streams([ds.x[:1, :-1], ds.items["duration"][:1, :-1]])]
    T = parts[0].shape[1]
    heads = model.transform(torch.cat(parts, -1))
    for z in heads:
        for t in (0, 7, T - 1):
            grads = torch.autograd.grad(z[0, t].sum(), parts, retain_graph=True)
            for g in grads:                                      # notes and durations alike
                assert g[0, t + 1:].abs().sum() == 0
                assert g[0, :t + 1].abs().sum(-1).min() > 0


def test_loss_sums_both_streams_and_goes_down():
    model, ds = tiny(lr=3e-3)
    batch = ds.batch(torch.arange(len(ds)))
    first = model.loss(batch)
    assert torch.allclose(first["loss"], first["nll_note"] + first["nll_duration"])
    (objective,) = model.objectives()
    opt = objective.make_optimizer()
    for _ in range(80):
        opt.zero_grad()
        model.loss(batch)["loss"].backward()
        opt.step()
    assert model.loss(batch)["loss"] < 0.4 * first["loss"]


def test_samples_are_pairs_seeded_and_written_as_midi(tmp_path, monkeypatch):
    from genzoo.viz import music
    monkeypatch.setattr(music, "sound_missing", lambda: "off in this test")
    model, ds = tiny()
    a = model.sample(3, torch.Generator().manual_seed(1), max_tokens=12)
    b = model.sample(3, torch.Generator().manual_seed(1), max_tokens=12)
    assert set(a) == {"x", "duration"} and a["x"].shape == a["duration"].shape
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["duration"], b["duration"])
    assert (a["x"][:, 0] == model.start[0]).all() and (a["duration"][:, 0] == model.start[1]).all()
    cold = model.sample(2, torch.Generator().manual_seed(4), max_tokens=8, temperature=0,
                        duration_temperature=0)
    assert torch.equal(cold["x"][0], cold["x"][1])              # greedy: both rows alike
    with torch.no_grad():
        model.heads[0].bias[model.start[0]] = 100.0            # START next: the piece ends
    ended = model.sample(2, torch.Generator().manual_seed(1), max_tokens=12)
    assert ended["x"].tolist() == [[model.start[0], 0]] * 2   # ...and PAD stands for it
    files = save_samples(a, DataInfo.of(ds), tmp_path / "song", quiet=True)
    assert (tmp_path / "song_0.mid") in files and (tmp_path / "song.png") in files


def test_one_stream_over_the_voice_grid():
    model, ds = tiny(music="grid")
    assert len(model.heads) == 1 and "nll_duration" not in model.loss(ds.batch(torch.arange(2)))
    x = model.sample(2, torch.Generator().manual_seed(0), max_tokens=9)
    assert isinstance(x, torch.Tensor) and x.shape[0] == 2


def test_refuses_piano_rolls_and_text():
    ds = represent.build([scale_piece(0)], DataOptions(music="pianoroll", bars=1), "rolls")
    with pytest.raises(GenzooError, match="tokens, events or the voice grid"):
        MusicTransformer(MusicTransformerConfig(), DataInfo.of(ds))


def test_cli_trains_and_samples_midi(tmp_path, capsys):
    songs = tmp_path / "songs"
    for i in range(3):
        write_midi(scale_piece(i), songs / f"s{i}.mid")
    run = tmp_path / "run"
    assert main(["train", "music_transformer", "--data", str(songs), "--preset", "tiny",
                 "--steps", "3", "--out", str(run), "--no-progress",
                 "--set", "train.sample_n=1", "--set", "train.batch_size=4"]) == 0
    assert main(["sample", str(run), "-n", "2", "--max-tokens", "10", "--temperature", "0.8",
                 "--out", str(tmp_path / "song")]) == 0
    printed = capsys.readouterr().out
    for name in ("song_0.mid", "song_1.mid", "song.png"):
        assert (tmp_path / name).stat().st_size > 0 and name in printed


def test_skewing_gives_each_pair_its_distance_embedding():
    from genzoo.nn.relative_attention import RelativeSelfAttention, skew
    L, d = 6, 4
    Q, E = torch.randn(2, 3, L, d), torch.randn(3, L, d)        # E[r]: distance r - (L - 1)
    S = skew(Q @ E.transpose(-2, -1))
    for i in range(L):
        for j in range(i + 1):                                  # Huang et al.'s S_rel, directly
            torch.testing.assert_close(S[:, :, i, j], (Q[:, :, i] * E[:, j - i + L - 1]).sum(-1))
    attn = RelativeSelfAttention(8, 2, max_len=L).eval()
    x = torch.randn(1, L, 8)
    y = attn(x)
    with torch.no_grad():
        attn.E_r.zero_()                                        # no distances: plain attention
    from genzoo.nn.attention import MultiHeadAttention
    plain = MultiHeadAttention(8, 2, causal=True).eval()
    plain.load_state_dict({k: v for k, v in attn.state_dict().items() if k != "E_r"})
    torch.testing.assert_close(attn(x), plain(x))
    assert not torch.allclose(y, plain(x))
    assert attn(x[:, :3]).shape == (1, 3, 8)                    # shorter windows use the last rows


def test_relative_attention_learns_and_samples():
    model, ds = tiny(music="events", attention="relative", lr=3e-3)
    batch = ds.batch(torch.arange(len(ds)))
    (objective,) = model.objectives()
    opt = objective.make_optimizer()
    first = model.loss(batch)["loss"]
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch)["loss"].backward()
        opt.step()
    assert model.loss(batch)["loss"] < 0.8 * first
    assert model.sample(2, torch.Generator().manual_seed(0), max_tokens=20).shape[0] == 2
