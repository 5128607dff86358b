"""The evolution-strategy stage: CMA-ES finds an optimum, resumes exactly, and its result does
not depend on how many worker processes score the population."""
from __future__ import annotations

import importlib.util
import json
import struct
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.evolved import EvolvedFamily
from genzoo.training import TRAINERS, EvolutionConfig, EvolutionTrainer
from genzoo.training import checkpoint as ckpt
from genzoo.training import evolution
from genzoo.training.run import RunDir

needs_cma = pytest.mark.skipif(importlib.util.find_spec("cma") is None,
                               reason="the cma package (genzoo[evolution]) is not installed")


@dataclass
class QuadraticConfig:
    dim: int = 5
    noise: float = 0.0


class Quadratic(EvolvedFamily):
    """A test family, not registered: fitness -||v - target||^2, plus noise drawn from the
    global generator (which the contract seeds with the episode's seed)."""
    family_name = "quadratic"

    def __init__(self, config: QuadraticConfig, components=None):
        super().__init__(config, DataInfo("vector", (config.dim,)), components)
        self.v = nn.Parameter(torch.zeros(config.dim, dtype=torch.float64))
        self.register_buffer("target", torch.linspace(-1.0, 1.0, config.dim, dtype=torch.float64))

    def score(self, seed: int) -> float:
        noise = self.config.noise * float(torch.randn(()))
        return float(-((self.v - self.target) ** 2).sum()) + noise


def evolve(run=None, noise=0.0, **settings) -> EvolutionTrainer:
    cfg = EvolutionConfig(**{"generations": 10, "sigma0": 0.5, "progress": False, **settings})
    t = EvolutionTrainer(Quadratic(QuadraticConfig(noise=noise)), None, cfg, run=run)
    t.fit()
    return t


def records(run) -> list[dict]:
    """The metrics log without the wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("time", "episodes_per_s")} for r in run.metrics()]


@needs_cma
def test_cma_es_reaches_the_optimum_and_logs_each_generation(tmp_path, capsys):
    run = RunDir.create(tmp_path / "run", {"family": "quadratic"})
    t = evolve(run, generations=300, checkpoint_every=50)
    target = t.model.target
    assert torch.allclose(t.model.v, target, atol=1e-4)
    assert t.stopped and t.step < 300            # CMA-ES's own tolerances ended it early
    assert f"CMA-ES stopped at generation {t.step}: tol" in capsys.readouterr().out
    assert 0.0 >= t.best_fitness > -1e-8
    log = run.metrics()
    assert [r["step"] for r in log] == list(range(1, t.step + 1))
    for r in log:
        assert r["fitness/best"] >= r["fitness/mean"] and r["fitness/std"] >= 0
        assert r["sigma"] > 0 and r["episodes_per_s"] > 0
    best = [r["fitness/best_so_far"] for r in log]
    assert best == sorted(best) and log[-1]["fitness/mean"] > log[0]["fitness/mean"]
    # the run ends with the mean of the distribution as the model's parameters, checkpointed
    tensors, desc = ckpt.load(run.latest_checkpoint())
    assert torch.equal(tensors["model.v"], tensors["evolution.mean"])
    assert torch.equal(tensors["model.v"], t.model.v.detach())
    assert desc["step"] == t.step and desc["evolution"]["stopped"]


@needs_cma
@pytest.mark.parametrize("interruption", ["crash", "ctrl-c", "shorter-run", "damaged-latest"])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, interruption):
    """A run killed during generation 7 (its last checkpoint: 4), stopped by Ctrl-C there (it
    saves what it has), one that ran 6 generations and is extended, or one whose newest
    checkpoint was cut short (the older one is used), ends when resumed with the same
    parameters, state and metrics as an uninterrupted run, to the bit."""
    settings = dict(noise=0.3, episodes=2, eval_every=3, checkpoint_every=4, generations=12)
    ref = RunDir.create(tmp_path / "ref", {"family": "quadratic"})
    evolve(ref, **settings)

    run = RunDir.create(tmp_path / "run", {"family": "quadratic"})
    if interruption == "shorter-run":
        evolve(run, **{**settings, "generations": 6})
        assert run.latest_checkpoint().name == ckpt.name_for(6)
    elif interruption == "damaged-latest":
        evolve(run, **{**settings, "generations": 8})
        damaged = run.latest_checkpoint()
        damaged.write_bytes(damaged.read_bytes()[:100])
    else:
        cfg = EvolutionConfig(**{k: v for k, v in settings.items() if k != "noise"},
                              sigma0=0.5, progress=False)
        t = EvolutionTrainer(Quadratic(QuadraticConfig(noise=0.3)), None, cfg, run=run)
        real = t.score_candidates
        error = RuntimeError if interruption == "crash" else KeyboardInterrupt

        def interrupted(thetas, seeds):
            F = real(thetas, seeds)                 # the model now holds a candidate
            if t.step == 6 and len(thetas) > 1:     # generation 7, after the evaluation at 6
                raise error("killed")
            return F
        t.score_candidates = interrupted
        with pytest.raises(error, match="killed"):
            t.fit()
        assert run.latest_checkpoint().name == ckpt.name_for(4 if error is RuntimeError else 6)
        assert run.metrics()[-1]["step"] == 6
        saved, _ = ckpt.load(run.latest_checkpoint())   # the mean, not the candidate scored last
        assert torch.equal(saved["model.v"], saved["evolution.mean"])
    resumed = evolve(run, **settings)
    assert resumed.step == 12

    want, want_desc = ckpt.load(ref.latest_checkpoint())
    got, got_desc = ckpt.load(run.latest_checkpoint())
    assert sorted(got) == sorted(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert got_desc["evolution"] == want_desc["evolution"]
    assert records(run) == records(ref)


@needs_cma
def test_the_number_of_workers_does_not_change_the_result(monkeypatch):
    settings = dict(noise=0.3, episodes=3, generations=3, eval_every=3, eval_episodes=5)
    calls = []
    real = evolution.score_block
    monkeypatch.setattr(evolution, "score_block", lambda *a: calls.append(1) or real(*a))
    here = evolve(workers=0, **settings)
    assert len(calls) == 4                           # 3 generations + 1 evaluation, here
    pooled = evolve(workers=2, **settings)
    assert len(calls) == 4                           # none here: all in the workers
    assert np.array_equal(np.stack(here.history), np.stack(pooled.history))
    assert np.array_equal(here.mean, pooled.mean)
    assert here.last_metrics["val/fitness"] == pooled.last_metrics["val/fitness"]
    assert pooled._pool is None                      # the workers were ended


@needs_cma
def test_the_strategy_draws_from_its_own_generator_not_the_global_ones():
    """What else the process draws (a family, the lead's code) cannot shift the candidates, so
    a replay on resume meets the same ones."""
    np.random.seed(123)
    torch.manual_seed(123)
    before = (np.random.get_state()[1].copy(), torch.get_rng_state())
    a = evolve(generations=3)
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert torch.equal(torch.get_rng_state(), before[1])
    np.random.seed(5)
    torch.manual_seed(5)
    b = evolve(generations=3)
    assert np.array_equal(np.stack(a.history), np.stack(b.history))


def _safetensors_layout(path) -> tuple[dict, int]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    return header, len(raw) - (8 + n + end)


@needs_cma
def test_checkpoints_are_safetensors_and_json_only(tmp_path):
    run = RunDir.create(tmp_path / "run", {"family": "quadratic"})
    t = evolve(run, generations=7, checkpoint_every=2, keep_checkpoints=2)
    folder = run.path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "step_00000006.json", "step_00000006.safetensors",
        "step_00000007.json", "step_00000007.safetensors"]
    header, trailing = _safetensors_layout(run.latest_checkpoint())
    assert trailing == 0                   # a JSON header and raw tensor bytes, nothing else
    assert header["evolution.fitness"]["dtype"] == "F64"
    assert header["evolution.fitness"]["shape"] == [7, t.es.popsize]
    desc = json.loads((folder / "step_00000007.json").read_text())
    assert desc["step"] == 7 and desc["evolution"]["population"] == t.es.popsize
    assert desc["versions"]["cma"]


@needs_cma
def test_a_replay_that_does_not_reproduce_the_saved_state_is_said(tmp_path):
    run = RunDir.create(tmp_path / "run", {"family": "quadratic"})
    evolve(run, generations=3)
    path = run.latest_checkpoint()
    tensors, desc = ckpt.load(path)
    tensors["evolution.mean"] = tensors["evolution.mean"] + 1e-12
    ckpt.save(path, tensors, desc)
    said = []
    cfg = EvolutionConfig(generations=4, sigma0=0.5, progress=False)
    t = EvolutionTrainer(Quadratic(QuadraticConfig()), None, cfg, run=run, log=said.append)
    assert len(said) == 1 and "did not reproduce the saved state" in said[0]
    assert t.step == 3


@needs_cma
def test_resuming_with_another_strategy_is_a_clear_error(tmp_path):
    run = RunDir.create(tmp_path / "run", {"family": "quadratic"})
    evolve(run, generations=2)
    with pytest.raises(GenzooError, match="evolved with sigma0=0.5, not 0.1"):
        evolve(run, generations=4, sigma0=0.1)
    with pytest.raises(GenzooError, match="evolved with population=8, not 12"):
        evolve(run, generations=4, population=12)


@pytest.mark.parametrize("setting, message", [
    ({"population": 1}, "population must be >= 2"),
    ({"sigma0": 0.0}, "sigma0 must be > 0"),
    ({"episodes": 0}, "episodes and eval_episodes must be >= 1"),
    ({"workers": -1}, "workers and seed must be >= 0"),
    ({"generations": 0}, "generations must be >= 1"),
])
def test_a_bad_setting_is_a_one_line_error(setting, message):
    with pytest.raises(GenzooError, match=f"evolution config: {message}") as e:
        EvolutionTrainer(Quadratic(QuadraticConfig()), None, EvolutionConfig(**setting))
    assert "\n" not in str(e.value)
    with pytest.raises(GenzooError, match=f"train config: {message}"):
        C.from_dict(EvolutionConfig, setting, where="train config")


def test_without_cma_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cma", None)
    with pytest.raises(GenzooError, match=r"pip install 'genzoo\[evolution\]'"):
        EvolutionTrainer(Quadratic(QuadraticConfig()), None, EvolutionConfig())


@needs_cma
def test_a_score_that_is_not_finite_is_a_clear_error():
    with pytest.raises(GenzooError, match="score is not finite at generation 1"):
        evolve(noise=float("inf"))


def test_the_contract_seen_by_generic_code():
    model = Quadratic(QuadraticConfig(dim=3), components={"frozen": nn.Linear(2, 2)})
    assert TRAINERS[model.fit_with] == (EvolutionConfig, EvolutionTrainer)
    theta = model.flat_parameters()
    assert theta.shape == (3,) and theta.dtype == torch.float64   # the component is not evolved
    model.set_flat_parameters(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert model.v.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(GenzooError, match="trained by an evolution strategy"):
        model.objectives()
    # each score sees the global generators seeded by its episode, and they are put back after
    torch.manual_seed(7)
    before = torch.get_rng_state()
    noisy = Quadratic(QuadraticConfig(dim=3, noise=1.0))
    F = noisy.score_population(torch.zeros(2, 3, dtype=torch.float64), [11, 12])
    assert F[0, 0] == F[1, 0] and F[0, 0] != F[0, 1]
    assert torch.equal(torch.get_rng_state(), before)
