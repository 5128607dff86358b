"""The world model's agent (Ha and Schmidhuber 2018) in the toy world of world_toy.py: C in
M's dream (M's reward and done heads stand in for the environment, M's samples at the
temperature tau for the frames), then scored in the real environment, over worker processes
as in training; a Discrete action space; V and M at the paper's sizes; and the shipped
CarRacing chain refused in one line (so its smoke test skips) where Box2D is missing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium")

from genzoo import data as D  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.nn import mdn  # noqa: E402
from world_toy import DISCRETE_ENV, agent, gym, toy  # noqa: E402


def heads(memory, reward: float, done_logit: float) -> None:
    """M's reward head says ``reward`` and its done head sigmoid(``done_logit``), always."""
    with torch.no_grad():
        for layer, value in ((memory.reward, reward), (memory.done, done_logit)):
            layer.weight.zero_()
            layer.bias.fill_(value)


def test_a_dream_is_scored_by_ms_reward_and_done_heads_without_stepping_the_environment():
    c = agent(z=4, hidden=8, actions=1, max_steps=10, dream=True)
    env = c._environment()
    env.step = lambda action: pytest.fail("the dream stepped the real environment")
    heads(c.components["memory"], 0.5, -30.0)              # never done: every step rewarded
    assert c.score(1) == 10 * 0.5
    heads(c.components["memory"], 0.5, 30.0)               # done at once: one step
    assert c.score(1) == 0.5


def test_the_dream_samples_at_the_controllers_temperature(monkeypatch):
    taus, sample = [], mdn.Mixture.sample
    monkeypatch.setattr(mdn.Mixture, "sample", lambda self, tau=1.0, g=None:
                        taus.append(tau) or sample(self, tau, g))
    c = agent(z=4, hidden=8, actions=1, max_steps=6, dream=True, temperature=0.3)
    heads(c.components["memory"], 0.0, -30.0)
    c.score(2)
    assert taus == [0.3] * 6          # one of M's samples a dreamed step


def test_m_dreams_at_tau_zero_are_the_top_components_means_and_tau_sets_the_spread():
    m = agent(z=4, hidden=8, actions=1).components["memory"]
    g = torch.Generator().manual_seed(0)
    z, a = torch.randn(2, 6, 4, generator=g), torch.rand(2, 6, 1, generator=g) * 2 - 1

    def dream(tau, seed):
        return m.continue_dream(z, a, 2, tau, torch.Generator().manual_seed(seed))
    cold = dream(0.0, 1)
    assert torch.equal(cold[:, :2], z[:, :2]) and torch.equal(cold, dream(0.0, 2))
    h, state = m.advance(z[:, 0], a[:, 0])
    h, _ = m.advance(z[:, 1], a[:, 1], state)
    mix = m.predict(h)[0]
    top = mix.mu.gather(-1, mix.log_pi.argmax(-1, keepdim=True)).squeeze(-1)
    assert torch.allclose(cold[:, 2], top)
    assert torch.allclose(dream(1e-6, 3), cold, atol=1e-2)
    assert torch.equal(dream(1.0, 4), dream(1.0, 4)) and not torch.allclose(dream(1.0, 4), dream(1.0, 5))
    spread = [float((dream(tau, 6)[:, 2:] - cold[:, 2:]).abs().mean()) for tau in (0.1, 2.0)]
    assert spread[0] < spread[1]


def test_the_final_score_is_real_episodes_the_same_over_worker_processes():
    from genzoo.viz.world_models import real_scores
    c = agent(z=4, hidden=8, actions=1, max_steps=5, score_steps=12, dream=True)
    c.set_flat_parameters(0.5 * torch.randn(c.flat_parameters().numel(),
                                            generator=torch.Generator().manual_seed(0)).double())
    seeds = [1, 2, 3]
    played = [c.play(s, steps=12)[0] for s in seeds]       # the real environment, 12 steps
    here = real_scores(c, seeds, workers=0)
    assert here.tolist() == played and not c.testing
    assert np.array_equal(real_scores(c, seeds, workers=2), here)


def test_a_discrete_action_space_is_recorded_one_hot_and_driven_by_argmax():
    ds = D.load(toy(4, env=DISCRETE_ENV))
    b = ds.batch(torch.arange(4))
    on = b["mask"].bool()
    assert b["actions"].shape == (4, 16, 3)
    assert torch.equal(b["actions"][on].sum(-1), torch.ones(int(on.sum())))
    assert not b["actions"][~on].any()
    space = ds.meta["action_space"]
    assert space == {"kind": "discrete", "n": 3, "start": -1}
    c = agent(z=4, hidden=8, actions=3, env=DISCRETE_ENV, space=space, max_steps=16)
    with torch.no_grad():
        c.controller.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))   # the third action: +1
    a, taken = c.act(torch.zeros(1, 4), torch.zeros(1, 8))
    assert taken == 1 and torch.equal(a, torch.tensor([[0.0, 0.0, 1.0]]))
    total, frames = c.play(3, record=True)        # the toy env asserts each action is valid
    assert np.isfinite(total) and 1 <= len(frames) <= 16


def test_the_paper_sizes_of_v_and_m():
    from genzoo.models.vae import PRESETS
    assert {k: PRESETS["world-models"][k] for k in ("latent_dim", "image_size")} == \
        {"latent_dim": 32, "image_size": 64}
    m = agent().components["memory"]            # defaults: LSTM 256, 5 Gaussians per dimension
    assert m.lstm.hidden_size == 256 and m.mdn.components == 5 and m.mdn.dim == 32


def test_carracing_without_box2d_is_one_line_so_its_smoke_test_skips(tmp_path, capsys, monkeypatch):
    def make(env_id, **kwargs):
        raise gym.error.DependencyNotInstalled("Box2D is not installed, run `pip install swig`")
    monkeypatch.setattr(gym, "make", make)
    out = tmp_path / "smoke"
    assert main(["pipeline", "world-models/car-racing", "--smoke", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'genzoo[world]'" in err and "Traceback" not in err   # test_pipelines skips
    assert not list(out.glob("*/checkpoints/*"))


def test_the_benchmarks_random_policy_scores_the_same_over_worker_processes():
    """benchmarks/world_models.py scores a random driver over the controller's 100 real
    episodes; in its rollout workers as in one process."""
    bench = pytest.importorskip("benchmarks.world_models")
    env = "world_toy:GenzooDot-v0"
    here = bench.random_scores(env, [4, 5, 6], 12)
    assert here.shape == (3,) and len(set(here.tolist())) > 1
    assert np.array_equal(bench.random_scores(env, [4, 5, 6], 12, workers=2), here)
