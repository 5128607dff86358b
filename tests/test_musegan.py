"""MuseGAN: shapes of the four noises' paths, the critic's penalty and steps, binarised samples,
and training and sampling MIDI from the command line (exact resume: tests/test_contract.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genzoo import config as C
from genzoo.cli import main
from genzoo.data import DataOptions
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.musegan import PRESETS, Critic, Generator, MuseGAN, MuseGANConfig

P, K = 30, 4


def roll_info(bars=2, pitches=P, tracks=K) -> DataInfo:
    return DataInfo("music", (bars, 16, pitches, tracks), meta={"representation": "pianoroll"})


def tiny(bars=2, **cfg) -> MuseGAN:
    c = C.from_dict(MuseGANConfig, {**PRESETS["tiny"], "bars": bars, **cfg})
    return MuseGAN(c, roll_info(bars))


def chorale_rolls(n=24, bars=2, seed=0):
    """Four voices, each one held pitch per half bar: (n, bars, 16, P, K) in {0, 1}."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, bars, 16, P, K), np.float32)
    for i in range(n):
        for b in range(bars):
            for half in (0, 8):
                for k in range(K):
                    x[i, b, half:half + 8, rng.integers(7 * k, 7 * k + 7), k] = 1
    return torch.from_numpy(x)


@pytest.mark.parametrize("bars", [2, 4])
def test_generator_and_critic_shapes(bars):
    c = C.from_dict(MuseGANConfig, {**PRESETS["tiny"], "bars": bars})
    G, D = Generator(c, P, K), Critic(c, P, K)
    z = lambda *s: torch.randn(*s)  # noqa: E731
    y = G(z(5, 8), z(5, 8), z(5, K, 8), z(5, K, 8))
    assert y.shape == (5, bars, 16, P, K) and y.abs().max() <= 1
    assert D(y).shape == (5,)


def test_chords_and_melody_unfold_over_bars_groove_belongs_to_its_track():
    model = tiny().eval()
    z = model.prior(2, torch.Generator().manual_seed(0))
    c_t = model.G.chords(z["chords"])                          # one vector per bar
    assert c_t.shape == (2, 2, 8) and not torch.allclose(c_t[:, 0], c_t[:, 1])
    base = model.G(**z)
    differs = lambda a, b: (a - b).abs().max() > 1e-3 * b.abs().max()  # noqa: E731
    for name in ("chords", "style", "melody"):
        assert differs(model.G(**dict(z, **{name: torch.randn_like(z[name])})), base)
    groove = z["groove"].clone()
    groove[:, 0] += 1                                         # track 0's groove: track 0 only
    y = model.G(**dict(z, groove=groove))
    assert differs(y[..., 0], base[..., 0]) and torch.equal(y[..., 1:], base[..., 1:])


class Linear(nn.Module):
    """D(x) = <w, x> with ||w|| = norm: its gradient norm is ``norm`` everywhere."""

    def __init__(self, norm: float):
        super().__init__()
        w = torch.randn(2, 16, P, K)
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_critic_loss_penalises_a_gradient_norm_away_from_one():
    model = tiny()
    batch = {"x": chorale_rolls(8)}
    for norm, gp in ((1.0, 0.0), (3.0, 4.0), (0.5, 0.25)):
        model.D = Linear(norm)
        out = model.critic_loss(batch)
        torch.testing.assert_close(out["gradient_penalty"], torch.tensor(gp), atol=1e-4, rtol=0)
        torch.testing.assert_close(out["loss"], -out["wasserstein"] + 10 * out["gradient_penalty"])
    critic, generator = tiny(n_critic=5).objectives()
    assert critic.repeats == 5 and generator.repeats == 1


def test_samples_are_notes_at_most_one_pitch_per_voice_or_thresholded():
    model = tiny().eval()
    x = model.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 2, 16, P, K) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert x.sum(3).le(1).all()                                 # argmax: at most one pitch
    # a generator's output by hand: the likeliest pitch above 0 sounds, else the voice rests
    y = torch.full((1, 2, 16, P, K), -0.9)
    y[0, :, :, 5, 0], y[0, :, :, 6, 0] = 0.3, 0.2               # track 0: pitch 5, held
    y[0, :, :, 7, 1] = -0.1                                     # track 1: likeliest, below 0
    y[0, 0, :8, 9, 2] = 0.5                                     # track 2: half a bar
    model.G.forward = lambda **z: y
    x = model.sample(1)
    assert x[..., 5, 0].eq(1).all() and x[..., 0].sum() == 32 and x[..., 1].sum() == 0
    assert x[0, 0, :8, 9, 2].eq(1).all() and x[..., 2].sum() == 8 and x[..., 3].sum() == 0
    both = model.sample(1, binarize="threshold")
    assert both[..., 0].sum() == 64 and both[..., 1].sum() == 0
    model = tiny().eval()
    t = model.sample(3, torch.Generator().manual_seed(0), binarize="threshold")
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(GenzooError, match="binarize 'soft'"):
        model.sample(1, binarize="soft")


def test_refuses_tokens_and_other_bar_counts():
    with pytest.raises(GenzooError, match="musegan models piano rolls"):
        MuseGAN(MuseGANConfig(), DataInfo("music", (81,), meta={"representation": "tokens"}))
    with pytest.raises(GenzooError, match="4 bars per item, the model 2"):
        MuseGAN(MuseGANConfig(), roll_info(bars=4))


def test_cli_trains_on_the_jsb_grid_and_samples_midi(tmp_path, capsys):
    pytest.importorskip("mido")
    rng = np.random.default_rng(0)
    pieces = np.empty(4, dtype=object)
    for i in range(4):
        pieces[i] = (64 + rng.integers(-3, 4, (68, 4)) - 8 * np.arange(4)).astype(np.float16)
    np.savez(tmp_path / "jsb.npz", train=pieces)
    run = tmp_path / "run"
    assert main(["train", "musegan", "--data", str(tmp_path / "jsb.npz"), "--preset", "tiny",
                 "--steps", "2", "--out", str(run), "--no-progress", "--set", "train.batch_size=4",
                 "--set", "data.holdout=0"]) == 0
    assert main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "song")]) == 0
    for name in ("song_0.mid", "song_1.mid", "song.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert DataOptions().pitch_range == "0-83" and MuseGANConfig().pitch_range == "auto"
