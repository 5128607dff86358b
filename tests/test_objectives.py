"""The Trainer's objectives: lazy and shared ones, optimisers, accumulation, EMA of named
networks, the non-finite guard, and frozen parameters."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.training.run import RunDir
from genzoo.training.trainer import TrainConfig, Trainer


def points(n=64, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(x=torch.randn(n, d, generator=g), modality="points", source="test")


class Toy(Family):
    """Two players g and c on points; c also has a lazy regulariser on c's optimiser; a frozen
    part that nobody trains."""
    family_name = "toy"

    def __init__(self, objectives_spec=None, ema_networks=()):
        super().__init__(None, DataInfo("points", (3,)))
        self.g = nn.Linear(3, 3)
        self.c = nn.Linear(3, 1)
        self.frozen = nn.Linear(3, 3).requires_grad_(False)
        self.spec = objectives_spec or {}
        self.calls = {"g": 0, "c": 0, "reg": 0}
        type(self).ema_networks = ema_networks
        self.poison_at = None

    def _loss(self, name, value):
        self.calls[name] += 1
        if self.poison_at is not None and sum(self.calls.values()) >= self.poison_at:
            value = value * float("nan")
        return {"loss": value}

    def objectives(self):
        g = lambda b: self._loss("g", (self.g(self.frozen(b["x"])) - 1).pow(2).mean())  # noqa: E731
        c = lambda b: self._loss("c", self.c(b["x"]).pow(2).mean())                     # noqa: E731
        reg = lambda b: self._loss("reg", self.c.weight.pow(2).sum())                   # noqa: E731
        return [Objective("g", g, list(self.g.parameters()) + list(self.frozen.parameters()),
                          lr=0.1, **self.spec.get("g", {})),
                Objective("c", c, list(self.c.parameters()), lr=0.1, **self.spec.get("c", {})),
                Objective("reg", reg, list(self.c.parameters()), lr=0.1, every=3, shares="c")]

    def sample(self, n, generator=None):
        return self.g(torch.randn(n, 3, generator=generator))


def cfg(**kw):
    return TrainConfig(**{"steps": 6, "batch_size": 16, "progress": False, "checkpoint_every": 0,
                          "sample_every": 0, "eval_every": 0, **kw})


def test_lazy_objective_runs_every_k_steps_through_its_owners_optimiser():
    model = Toy()
    t = Trainer(model, points(), cfg())
    t.fit()
    assert model.calls == {"g": 6, "c": 6, "reg": 2}          # steps 0 and 3
    assert len(t.optimizers) == 2 and t._opt[2] is t._opt[1]


def test_a_shared_optimiser_must_exist():
    class Bad(Toy):
        def objectives(self):
            o = super().objectives()
            o[2].shares = "nobody"
            return o
    with pytest.raises(GenzooError, match="shares the optimiser of 'nobody'"):
        Trainer(Bad(), points(), cfg())


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop),
                                      ("adamw", torch.optim.AdamW)])
def test_optimisers_beyond_adam(name, cls):
    t = Trainer(Toy({"g": {"optimizer": name, "momentum": 0.5}}), points(), cfg(steps=1))
    assert isinstance(t.optimizers[0], cls)
    with pytest.raises(ValueError, match="unknown optimizer"):
        Objective("x", None, [nn.Parameter(torch.zeros(1))], lr=1, optimizer="lbfgs").make_optimizer()


def test_adam_uses_the_fused_kernel_and_keeps_a_checkpoints_mode():
    """Adam(W) on CPU float parameters takes PyTorch's fused kernel (the faster update); its
    step is the textbook one (the per-operation kernel's, to rounding); an optimiser state
    saved without it loads back as it was saved, so resuming an older run stays exact."""
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(5, 4, generator=g), torch.randn(4, generator=g)]
    grads = [torch.randn_like(t, generator=g) for t in w]
    runs = {}
    for fused in (True, False):
        ps = [nn.Parameter(t.clone()) for t in w]
        obj = Objective("x", None, ps, lr=0.1, optimizer="adamw", weight_decay=0.01)
        opt = obj.make_optimizer() if fused else torch.optim.AdamW(ps, lr=0.1, weight_decay=0.01,
                                                                   foreach=False)
        assert bool(opt.param_groups[0]["fused"]) == fused
        for _ in range(3):
            for p, gr in zip(ps, grads):
                p.grad = gr.clone()
            opt.step()
        runs[fused] = (ps, opt)
    for a, b in zip(runs[True][0], runs[False][0]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    ps = [nn.Parameter(t.clone()) for t in w]
    fresh = Objective("x", None, ps, lr=0.1, optimizer="adamw").make_optimizer()
    fresh.load_state_dict(runs[False][1].state_dict())
    assert not fresh.param_groups[0]["fused"]
    frozen_int = nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)
    assert Objective("x", None, ps + [frozen_int], lr=0.1).make_optimizer().param_groups[0]["fused"]


def test_sgd_step_is_the_textbook_update():
    model = Toy({"g": {"optimizer": "sgd"}})
    data = points()
    before = model.g.weight.detach().clone()
    t = Trainer(model, data, cfg(steps=1))
    idx = t.batches._perm[:16]
    x = data.x[idx]
    w = before.clone().requires_grad_(True)
    loss = ((model.frozen(x) @ w.T + model.g.bias.detach()) - 1).pow(2).mean()
    loss.backward()
    t.fit()
    assert torch.allclose(model.g.weight, before - 0.1 * w.grad, atol=1e-6)


def test_frozen_parameters_stay_frozen_and_get_no_optimiser_state():
    model = Toy()
    frozen = model.frozen.weight.detach().clone()
    t = Trainer(model, points(), cfg(steps=3))
    t.fit()
    assert not any(p.requires_grad for p in model.frozen.parameters())
    assert all(p.requires_grad for p in model.g.parameters())
    assert torch.equal(model.frozen.weight, frozen)
    owned = {id(p) for group in t.optimizers[0].param_groups for p in group["params"]}
    assert id(model.frozen.weight) not in owned and id(model.g.weight) in owned


def test_accumulated_micro_batches_equal_one_big_batch():
    def run(k):
        torch.manual_seed(0)
        model = Toy({"g": {"optimizer": "sgd"}, "c": {"optimizer": "sgd"}})
        Trainer(model, points(), cfg(steps=4, accumulate=k)).fit()
        return model.g.weight.detach(), model.c.weight.detach()
    (g1, c1), (g4, c4) = run(1), run(4)
    assert torch.allclose(g1, g4, atol=1e-6) and torch.allclose(c1, c4, atol=1e-6)
    with pytest.raises(ValueError, match="accumulate"):
        TrainConfig(batch_size=10, accumulate=3).validate()


def test_ema_covers_the_named_networks_only():
    t = Trainer(Toy(ema_networks=("g",)), points(), cfg(steps=2, ema_decay=0.9))
    assert sorted(t.ema.shadow) == ["g.bias", "g.weight"]
    t = Trainer(Toy(), points(), cfg(steps=2, ema_decay=0.9))
    assert "frozen.weight" not in t.ema.shadow and "c.weight" in t.ema.shadow


def test_a_nonfinite_loss_stops_naming_loss_and_step_and_keeps_the_last_checkpoint(tmp_path):
    model = Toy()
    model.poison_at = 8      # calls: step 1 g,c,reg; steps 2-3 g,c; the 8th is step 4's g
    run = RunDir.create(tmp_path / "run", {"family": "toy"})
    t = Trainer(model, points(), cfg(checkpoint_every=1), run=run)
    with pytest.raises(GenzooError, match=r"step 4: loss of objective 'g' is nan.*step_00000003"):
        t.fit()
    assert run.latest_checkpoint().name == "step_00000003.safetensors"


def test_nonfinite_skip_leaves_the_weights_and_counts():
    model = Toy()
    model.poison_at = 1
    before = model.g.weight.detach().clone()
    t = Trainer(model, points(), cfg(steps=2, nonfinite="skip"))
    logs = t.fit()
    assert torch.equal(model.g.weight, before)
    assert logs["nonfinite_skipped"] > 0


def test_a_late_objective_waits_for_its_start_untouched_and_its_sharer_with_it():
    model = Toy({"c": {"start": 3}})
    t = Trainer(model, points(), cfg())
    c0 = {k: v.clone() for k, v in model.c.state_dict().items()}
    seen = []
    for _ in range(3):
        logs = t.train_step()
        seen.append((model.steps_done, "c/loss" in logs))
    assert seen == [(1, False), (2, False), (3, False)]
    assert all(torch.equal(c0[k], v) for k, v in model.c.state_dict().items())
    assert len(t.optimizers[1].state) == 0 and model.calls["reg"] == 0   # reg shares c's
    logs = t.train_step()
    assert "c/loss" in logs and "reg/loss" in logs and len(t.optimizers[1].state) > 0
    assert model.calls == {"g": 4, "c": 1, "reg": 1}


def test_a_start_must_not_be_negative():
    with pytest.raises(ValueError, match="start"):
        Objective("x", lambda b: b, [], lr=0.1, start=-1)


def test_resume_is_exact_across_a_start(tmp_path):
    from conftest import resumed_and_uninterrupted

    def make(folder, steps):
        torch.manual_seed(0)
        run = RunDir(folder) if (folder / "config.yaml").exists() else \
            RunDir.create(folder, {"family": "toy"})
        return Trainer(Toy({"c": {"start": 3}}), points(), cfg(steps=steps, checkpoint_every=2),
                       run=run)
    ref, got, _ = resumed_and_uninterrupted(tmp_path, make, steps=6, cut=2)
    torch.manual_seed(0)
    assert not torch.equal(ref["model.c.weight"], Toy().c.weight.detach())  # c did train
    for k in ref:                               # the optimisers' states too (c's began late)
        if k.startswith("optim."):
            torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0)
