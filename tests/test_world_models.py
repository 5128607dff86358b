"""World models (Ha and Schmidhuber 2018): rollouts recorded from an environment, V (the VAE
family) on their frames, M (an MDN-RNN) on V's codes, C (a linear controller) evolved by CMA-ES
in the environment or in M's dream, chained by a pipeline. A toy Gymnasium environment made
in world_toy.py (a 8x8 picture: steer a green dot onto a red one) runs the whole chain in
seconds."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium")

from genzoo import data as D  # noqa: E402
from genzoo.data.cache import cache_dir  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.errors import GenzooError  # noqa: E402
from genzoo.nn.mdn import Mixture, MixtureDensity  # noqa: E402
from world_toy import BOX_ENV, agent, gym, toy  # noqa: E402

needs_cma = pytest.mark.skipif(importlib.util.find_spec("cma") is None, reason="needs cma")
VIDEOS = {".gif", ".mp4"} if importlib.util.find_spec("av") else {".gif"}   # MP4 with PyAV


# -- the mixture density ---------------------------------------------------------------------
def test_mixture_log_prob_matches_a_hand_computation():
    mix = Mixture(torch.log(torch.tensor([[0.3, 0.7]])), torch.tensor([[0.0, 2.0]]),
                  torch.log(torch.tensor([[1.0, 0.5]])))
    y = 1.0
    p = (0.3 * math.exp(-0.5 * y ** 2) / math.sqrt(2 * math.pi)
         + 0.7 * math.exp(-0.5 * ((y - 2) / 0.5) ** 2) / (0.5 * math.sqrt(2 * math.pi)))
    assert math.isclose(float(mix.log_prob(torch.tensor([y]))[0]), math.log(p), rel_tol=1e-6)


def test_mixture_density_integrates_to_one_in_each_dimension():
    torch.manual_seed(1)
    mdn = MixtureDensity(4, dim=3, components=5)
    mix = mdn.double()(torch.randn(4, dtype=torch.float64))
    y = torch.linspace(-80, 80, 160001, dtype=torch.float64)
    density = torch.stack([Mixture(mix.log_pi[d], mix.mu[d], mix.log_sigma[d]).log_prob(y[:, None])[:, 0]
                           for d in range(3)]).exp()
    assert torch.allclose(torch.trapezoid(density, y), torch.ones(3, dtype=torch.float64), atol=1e-6)


def test_sampling_follows_the_mixture_and_tau_to_zero_gives_the_top_components_mean():
    mix = Mixture(torch.log(torch.tensor([[0.2, 0.8], [0.9, 0.1]])),
                  torch.tensor([[-1.0, 3.0], [5.0, -5.0]]), torch.log(torch.full((2, 2), 0.5)))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mix.sample(0.0), torch.tensor([3.0, 5.0]))
    many = Mixture(*(t.expand(20000, 2, 2) for t in (mix.log_pi, mix.mu, mix.log_sigma)))
    cold = many.sample(1e-6, g)
    assert torch.allclose(cold, torch.tensor([3.0, 5.0]).expand_as(cold), atol=1e-2)
    warm = many.sample(1.0, g).mean(0)               # E[y] = sum_k pi_k mu_k
    assert torch.allclose(warm, torch.tensor([2.2, 4.0]), atol=0.05)


# -- the rollouts ------------------------------------------------------------------------------
def test_rollouts_are_recorded_by_seed_alone_and_read_as_episodes_or_frames(tmp_path, monkeypatch):
    ds = D.load(toy())
    assert ds.modality == "rollout" and ds.x.shape == (6, 16, 3, 8, 8) and ds.x.dtype == torch.uint8
    b = ds.batch(torch.arange(6))
    m, dones = b["mask"], b["dones"]
    assert b["actions"].shape == (6, 16, 1) and b["actions"].abs().max() <= 1
    lengths = m.sum(1).long()
    for i, L in enumerate(lengths):        # the mask covers the steps that happened, in order
        assert m[i, :L].all() and not m[i, L:].any() and not b["rewards"][i, L:].any()
        assert dones[i].sum() == (L < 16) and (L == 16 or dones[i, L - 1] == 1)
    assert (lengths < 16).any()            # some episodes reached the target
    frames = D.load(toy(), D.DataOptions(view="frames"))
    assert frames.modality == "image" and torch.equal(frames.x, ds.x[m.bool()])
    # the same episodes from two worker processes, and more episodes extend the recording
    folder = next((tmp_path / "cache" / "rollouts").iterdir())
    first = (folder / "episode_000002.npz").read_bytes()
    (folder / "episode_000004.npz").unlink()                 # a collection killed midway
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "other"))
    pooled = D.load(toy(workers=2))
    assert torch.equal(pooled.x, ds.x) and torch.equal(pooled.items["actions"], ds.items["actions"])
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    more = D.load(toy(episodes=8))
    assert len(more) == 8 and torch.equal(more.x[:6], ds.x)
    assert (folder / "episode_000002.npz").read_bytes() == first
    assert len(D.load(str(folder))) == 8                     # the folder is a data spec too
    assert len(D.load(toy(), D.DataOptions(max_items=2))) == 2


@pytest.mark.parametrize("spec,message", [
    (toy(colour="red"), "unknown setting 'colour'"),
    (toy(policy="clever"), "policy='clever': one of random, brownian"),
    (toy(episodes=0), "episodes and steps must be >= 1"),
    ("gym:NoSuchEnv-v9", "cannot make the environment"),
    ("gym:CartPole-v1?episodes=1", "observations are float32 (4,), not images"),
])
def test_bad_rollout_specs_are_one_line(spec, message, capsys):
    with pytest.raises(GenzooError, match=message.replace("(", r"\(").replace(")", r"\)")):
        D.load(spec)
    assert main(["data", "show", spec]) == 2 and "Traceback" not in capsys.readouterr().err


def test_a_view_the_data_does_not_have_is_refused(image_npz):
    with pytest.raises(GenzooError, match="has no 'frames' view"):
        D.load(str(image_npz), D.DataOptions(view="frames"))
    with pytest.raises(GenzooError, match="rollouts offer 'frames'"):
        D.load(toy(), D.DataOptions(view="clips"))


# -- M and C built in memory (world_toy.agent) ----------------------------------------------
def test_the_controller_is_the_papers_867_parameters():
    c = agent()
    assert c.flat_parameters().numel() == 867 == c.num_parameters()      # (32 + 256) * 3 + 3
    assert not torch.any(c.flat_parameters())                            # CMA-ES starts at 0


def test_box_actions_are_stretched_to_their_bounds_or_clipped_where_named():
    """CarRacing's (steer [-1, 1], gas [0, 1], brake [0, 1]): at theta = 0 stretched dimensions
    rest mid-range and a clipped one (the paper's brake, clipped by default) at 0; large outputs
    reach the bounds; other environments are not clipped by default."""
    space = {"kind": "box", "low": [-1.0, 0.0, 0.0], "high": [1.0, 1.0, 1.0]}
    z, h = torch.zeros(1, 4), torch.zeros(1, 8)
    for env, clipped, rest in [(BOX_ENV, {}, [0.0, 0.5, 0.5]), ("CarRacing-v3", {}, [0.0, 0.5, 0.0]),
                               (BOX_ENV, {"clipped_actions": {BOX_ENV: [2]}}, [0.0, 0.5, 0.0])]:
        c = agent(z=4, hidden=8, space=space, env=env, **clipped).requires_grad_(False)
        a, env_action = c.act(z, h)
        assert env_action.tolist() == rest and a.tolist() == [rest]
        c.controller.bias[:] = -50.0
        assert c.act(z, h)[1].tolist() == [-1.0, 0.0, 0.0]
        c.controller.bias[:] = 50.0
        assert c.act(z, h)[1].tolist() == [1.0, 1.0, 1.0]
        c.controller.bias[:] = torch.tensor([0.0, 0.0, -0.5])       # a clipped one stays 0
        assert c.act(z, h)[1][2] == (0.0 if rest[2] == 0 else pytest.approx((np.tanh(-0.5) + 1) / 2))
    with pytest.raises(ValueError, match=r"clipped_actions: .*: \[3\], but .* 3 Box dimensions"):
        agent(z=4, hidden=8, space=space, clipped_actions={BOX_ENV: [3]})


def test_m_learns_the_dynamics_of_codes():
    from genzoo.training import TrainConfig, Trainer
    from genzoo.data.dataset import TensorDataset
    m = agent(z=4, hidden=32, actions=1).components["memory"].requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(32, 16, 1, generator=g) * 2 - 1
    z = torch.zeros(32, 16, 4)
    z[:, 0] = torch.randn(32, 4, generator=g)
    for t in range(15):                                   # z_{t+1} = 0.8 z_t + a_t
        z[:, t + 1] = 0.8 * z[:, t] + a[:, t]
    ones = torch.ones(32, 16)
    ds = TensorDataset(x=z, modality="latent", source="dynamics",
                       items={"actions": a, "rewards": z[..., 0], "dones": 0 * ones, "mask": ones})
    batch = ds.batch(torch.arange(32))
    with torch.no_grad():
        before = float(m.loss(batch)["z_nll"])
    m.config.lr = 1e-2
    Trainer(m, ds, TrainConfig(steps=100, batch_size=32, progress=False, sample_every=0,
                               eval_every=0, checkpoint_every=0, device="cpu")).fit()
    m.eval()
    with torch.no_grad():
        after = m.loss(batch)
    assert float(after["z_nll"]) < before - 1.0 and float(after["reward_mse"]) < 0.1


@needs_cma
@pytest.mark.parametrize("dream", [False, True])
def test_cma_es_on_the_controller_resumes_exactly(tmp_path, dream):
    from genzoo.training import EvolutionConfig, EvolutionTrainer
    from genzoo.training import checkpoint as ckpt
    from genzoo.training.run import RunDir

    def evolve(run, generations):
        cfg = EvolutionConfig(generations=generations, population=4, episodes=2, sigma0=0.5,
                              checkpoint_every=2, progress=False)
        EvolutionTrainer(agent(z=4, hidden=8, actions=1, max_steps=10, dream=dream), None, cfg,
                         run=run, log=lambda *_: None).fit()
        return ckpt.load(run.latest_checkpoint())[0]
    whole = evolve(RunDir.create(tmp_path / "a", {"family": "world_c"}), 4)
    run = RunDir.create(tmp_path / "b", {"family": "world_c"})
    evolve(run, 2)
    resumed = evolve(run, 4)
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert whole["evolution.fitness"].shape == (4, 4) and whole["model.controller.weight"].any()
    c = agent(z=4, hidden=8, actions=1, max_steps=10, dream=dream)
    assert c.score(3) == c.score(3) and math.isfinite(c.score(3))


# -- the whole chain -------------------------------------------------------------------------
PIPE = """
stages:
  - name: vision
    family: vae
    data: "{data}"
    data_options: {{view: frames}}
    model: {{widths: [8, 16], latent_dim: 4, image_size: 8, reconstruction: mse, beta: 192.0}}
    steps: 30
    train: {{batch_size: 16, sample_every: 0, eval_every: 0}}
  - name: memory
    family: world_m
    data: "{data}"
    model: {{vision: "@vision", hidden: 16, mixtures: 2}}
    steps: 20
    train: {{batch_size: 4, sample_every: 0, eval_every: 0}}
  - name: controller
    family: world_c
    data: "{data}"
    model: {{vision: "@vision", memory: "@memory", max_steps: 16, score_episodes: 4,
             score_steps: 16, dream: true, temperature: 0.5}}
    steps: 3
    train: {{population: 6, episodes: 2}}
"""


@needs_cma
def test_the_toy_environment_runs_the_whole_pipeline_and_resumes(tmp_path, capsys):
    f = tmp_path / "world.yaml"
    f.write_text(PIPE.format(data=toy()))
    out = tmp_path / "world"
    assert main(["pipeline", str(f), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "world_c: score over 4 real episodes of world_toy:GenzooDot-v0" in printed
    assert "world_c: 21 parameters" in printed                          # (4 + 16) * 1 + 1
    score = json.loads((out / "controller" / "showcase" / "score.json").read_text())
    assert len(score["scores"]) == 4 and min(score["scores"]) <= score["mean"] <= max(score["scores"])
    shown = out / "controller" / "showcase"
    assert (shown / "cma_es.png").stat().st_size > 0
    assert {p.suffix for p in shown.glob("real_reconstruction_dream.*")} == {".png"} | VIDEOS
    assert {p.suffix for p in shown.glob("controller.*")} == VIDEOS
    assert {p.suffix for p in (out / "memory" / "showcase").glob("reconstruction_vs_dream.*")} \
        == {".png"} | VIDEOS
    assert main(["sample", str(out / "memory"), "-n", "2", "--steps", "5", "--temperature",
                 "1.5", "--out", str(tmp_path / "dream")]) == 0      # M's dreams: strip and GIF
    assert {p.suffix for p in tmp_path.glob("dream.*")} == {".png", ".npz"} | VIDEOS
    assert np.load(tmp_path / "dream.npz")["x"].shape == (2, 5, 8, 8, 3)
    assert main(["pipeline", str(f), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.count("finished earlier, kept") == 3


@needs_cma
def test_the_shipped_pipeline_smoke_runs_every_stage_tiny_and_prints_the_score(tmp_path, capsys):
    """The car-racing chain, tiny, on the toy environment (tests/test_pipelines.py runs it on
    CarRacing itself, and skips it where Box2D is not installed)."""
    assert main(["pipeline", "world-models/car-racing", "--smoke", "--no-progress",
                 "--data", toy(), "--out", str(tmp_path / "smoke")]) == 0
    out = capsys.readouterr().out
    assert "world_c: score over 2 real episodes of world_toy:GenzooDot-v0" in out


def test_an_environment_whose_package_is_missing_says_which_extra(monkeypatch):
    def make(env_id, **kwargs):
        raise gym.error.DependencyNotInstalled("Box2D is not installed")
    monkeypatch.setattr(gym, "make", make)
    with pytest.raises(GenzooError, match=r"Box2D is not installed.*pip install 'genzoo\[world\]'"):
        D.load("gym:CarRacing-v3?episodes=1")
    rollouts = cache_dir() / "rollouts"            # nothing half-made is left behind
    assert not rollouts.exists() or not any(rollouts.iterdir())
