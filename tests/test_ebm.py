"""Energy-based model: Langevin dynamics on known energies, contrastive divergence with a
replay buffer, exact resume (the buffer is model state), the energy gap, the showcase."""
from __future__ import annotations

import pytest
import torch

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.ebm import EBM, EBMConfig
from genzoo.nn.langevin import langevin
from genzoo.training import TrainConfig, Trainer
from genzoo.training import checkpoint as ckpt
from genzoo.training.ema import EMA
from genzoo.training.run import RunDir

TINY = dict(widths=(8, 16), dense=16, steps=5, buffer_size=64, sample_steps=10, image_size=16)


def tiny_ebm(shape=(1, 16, 16), **kw):
    return EBM(EBMConfig(**{**TINY, **kw}), DataInfo("image", shape))


def quadratic(c):
    return lambda x: 0.5 * (x - c).pow(2).flatten(1).sum(1)      # E(x) = |x - c|^2 / 2


# -- Langevin dynamics ---------------------------------------------------------------------

def test_langevin_moves_samples_to_the_minimum_of_a_quadratic_energy():
    c = torch.tensor([0.5, -0.3, 0.2])
    x0 = torch.rand(256, 3) * 2 - 1
    g = torch.Generator().manual_seed(0)
    x, _, energies = langevin(quadratic(c), x0, steps=200, step_size=0.05, noise=0.01,
                              grad_clip=0.0, generator=g)
    before = (x0 - c).norm(dim=1).mean()
    after = (x - c).norm(dim=1).mean()
    assert after < 0.1 * before
    assert torch.allclose(x.mean(0), c, atol=0.01)
    assert energies.shape == (200,) and energies[-1] < 0.05 * energies[0]


def test_langevin_without_noise_is_gradient_descent_in_closed_form():
    """x_k = c + (1 - s)^k (x_0 - c) for E = |x - c|^2 / 2 with step s and no noise."""
    c, s, k = torch.tensor([0.25]), 0.1, 7
    x0 = torch.tensor([[-0.8], [0.9]])
    x, snaps, _ = langevin(quadratic(c), x0, steps=k, step_size=s, noise=0.0, record=[0, 3, k])
    assert torch.allclose(x, c + (1 - s) ** k * (x0 - c), atol=1e-6)
    assert len(snaps) == 3 and torch.allclose(snaps[1], c + (1 - s) ** 3 * (x0 - c), atol=1e-6)


def test_langevin_clips_the_gradient_and_keeps_samples_in_bounds():
    c = torch.tensor([5.0, -5.0])                   # far outside [-1, 1]: huge gradients
    x0 = torch.zeros(4, 2)
    x, _, _ = langevin(quadratic(c), x0, steps=1, step_size=1.0, noise=0.0, grad_clip=0.03)
    assert torch.allclose(x, torch.tensor([0.03, -0.03]).expand(4, 2))
    x, _, _ = langevin(quadratic(c), x0, steps=100, step_size=1.0, noise=0.1, grad_clip=0.03,
                       generator=torch.Generator().manual_seed(0))
    assert x.min() >= -1 and x.max() <= 1     # noise would push some outside; the bounds hold
    x, _, _ = langevin(quadratic(c), x0, steps=100, step_size=1.0, noise=0.005, grad_clip=0.03,
                       generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x, torch.tensor([1.0, -1.0]).expand(4, 2), atol=0.02)  # pinned at the edge


def test_sampling_is_reproducible_and_leaves_parameter_gradients_alone():
    model = tiny_ebm()
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (4, 1, 16, 16) and a.min() >= 0 and a.max() <= 1
    assert all(p.grad is None for p in model.parameters())
    noise = model.sample(4, generator=torch.Generator().manual_seed(1), steps=0)
    assert not torch.equal(noise, a)           # the chain moved away from its start


# -- contrastive divergence and the replay buffer ------------------------------------------

def test_negative_samples_come_from_the_buffer_and_go_back_into_it_fifo():
    model = tiny_ebm(fresh=0.0, noise=0.0, step_size=1e-4)
    model.replay.fill_(0.5)
    x = model.negative_samples(24)
    assert torch.allclose(x, torch.full_like(x, 0.5), atol=0.01)   # started from the buffer
    assert int(model.replay_next) == 24
    assert torch.equal(model.replay[:24], x)
    model.replay[:24].fill_(-0.7)
    y = model.negative_samples(50)              # wraps around: 24..63, then 0..9
    assert int(model.replay_next) == (24 + 50) % 64
    assert torch.equal(model.replay[24:], y[:40]) and torch.equal(model.replay[:10], y[40:])
    assert torch.equal(model.replay[10:24], torch.full((14, 1, 16, 16), -0.7))   # untouched
    fresh = tiny_ebm(fresh=1.0, noise=0.0, step_size=1e-4)
    fresh.replay.fill_(0.5)
    assert fresh.negative_samples(24).std() > 0.3  # uniform noise, not the buffer


def test_the_buffer_is_saved_with_the_weights_but_never_averaged_by_ema():
    model = tiny_ebm()
    state = model.state_dict()
    assert "replay_bits" in state and state["replay_bits"].dtype == torch.int32
    assert "replay_bits" not in EMA(model, 0.99).shadow
    assert model.replay.min() >= -1 and model.replay.max() <= 1


def test_training_opens_an_energy_gap_between_data_and_noise(image_data):
    model = tiny_ebm(lr=1e-3)
    train, held = image_data.split(16)
    trainer = Trainer(model, train, TrainConfig(steps=25, batch_size=32, progress=False,
                                                eval_every=25), held_out=held)
    before = trainer.evaluate()["val/energy_gap"]
    trainer.fit()
    m = trainer.last_metrics
    assert {"cdiv", "reg", "energy_real", "energy_fake"} <= set(m)
    assert m["val/energy_gap"] > before + 0.5 and m["val/energy_gap"] > 0.5


def test_resume_equals_an_uninterrupted_run(tmp_path, image_data):
    cfg = dict(steps=4, batch_size=16, progress=False, checkpoint_every=2, sample_every=0)

    def run(path, steps):
        torch.manual_seed(0)
        model = tiny_ebm(steps=3)
        Trainer(model, image_data, TrainConfig(**{**cfg, "steps": steps}),
                run=RunDir.open(path) if (path / "config.yaml").exists()
                else RunDir.create(path, {"family": "ebm"})).fit()
        return model

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4)
    for (k, v), w in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    tensors, _ = ckpt.load(RunDir.open(tmp_path / "b").latest_checkpoint(), "cpu")
    assert torch.equal(tensors["model.replay_bits"], straight.replay_bits)


# -- recipe, errors and pictures ------------------------------------------------------------

def test_recipe_asks_for_32x32_grey_images_and_bad_input_is_a_clear_error():
    assert EBM.data_defaults(EBMConfig()) == {"image_size": 32, "channels": 1}
    with pytest.raises(GenzooError, match="ebm: models images, not 'points'"):
        EBM(EBMConfig(), DataInfo("points", (2,)))
    with pytest.raises(GenzooError, match="fresh must be in"):
        C.from_dict(EBMConfig, {"fresh": 1.5})
    with pytest.raises(GenzooError, match="steps must be >= 0"):
        tiny_ebm().sample(2, steps=-1)


def test_showcase_draws_chains_buffer_and_fresh_samples(tmp_path, image_data):
    from genzoo.viz.ebm import chain_steps, showcase
    assert chain_steps(1000) == [0, 1, 3, 10, 30, 100, 300, 1000]
    files = showcase(tiny_ebm(), image_data, tmp_path / "show", torch.Generator().manual_seed(0))
    assert [f.name for f in files] == ["langevin_chain.png", "buffer_samples.png",
                                       "fresh_samples.png", "energies.png"]
    assert all(f.stat().st_size > 500 for f in files)


def test_cli_trains_on_an_image_file_padded_to_32_and_samples_with_a_chain_length(tmp_path, image_npz):
    import numpy as np

    from genzoo.cli import main
    run = tmp_path / "run"
    assert main(["train", "ebm", "--data", str(image_npz), "--steps", "2", "--batch-size", "8",
                 "--out", str(run), "--no-progress", "--set", "widths=[4,8]", "--set", "dense=8",
                 "--set", "steps=2", "--set", "buffer_size=32", "--set", "sample_steps=3"]) == 0
    assert RunDir.open(run).description["data_info"]["shape"] == [1, 32, 32]
    assert (run / "showcase" / "langevin_chain.png").exists()
    assert main(["sample", str(run), "-n", "4", "--steps", "2", "--out", str(tmp_path / "s")]) == 0
    assert np.load(tmp_path / "s.npz")["x"].shape == (4, 32, 32, 1)
