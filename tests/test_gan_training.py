"""GANs on the one Trainer: who is updated when, n_critic, learning, exact resume, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import layer_output_dtypes
from genzoo.cli import main
from genzoo.evaluation.nearest import nearest
from genzoo.training.run import RunDir
from genzoo.training.trainer import TrainConfig, Trainer
from test_gan import build

TINY_SET = ["--set", "z_dim=8", "--set", "g_width=8", "--set", "d_width=8",
            "--set", "image_size=16"]


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name,n_critic", [("wgan_gp", 3), ("dcgan", 2)])
def test_each_player_moves_only_in_its_own_updates_and_n_critic_is_honoured(image_data, name,
                                                                              n_critic):
    key = "n_critic" if name == "wgan_gp" else "k"
    model = build(name, **{key: n_critic})
    trainer = Trainer(model, image_data, TrainConfig(steps=2, batch_size=8, progress=False))
    seen = []                          # (player, G's and D's weights just before its update)
    for obj in trainer.objectives:
        def wrapped(batch, obj=obj, loss=obj.loss):
            seen.append((obj.name, snapshot(model.G), snapshot(model.D)))
            return loss(batch)
        obj.loss = wrapped
    trainer.train_step()
    trainer.train_step()
    seen.append(("end", snapshot(model.G), snapshot(model.D)))
    names = [s[0] for s in seen]
    assert names == (["critic"] * n_critic + ["generator"]) * 2 + ["end"]
    for (who, g0, d0), (_, g1, d1) in zip(seen, seen[1:]):
        if who == "critic":
            assert changed(d0, d1) and not changed(g0, g1)
        else:
            assert changed(g0, g1) and not changed(d0, d1)
    adam_steps = [int(next(iter(o.state.values()))["step"]) for o in trainer.optimizers]
    assert adam_steps == [2 * n_critic, 2]


def test_training_logs_both_players_and_learns_to_draw_the_asked_class(image_data):
    # blobs: a bright square in the quadrant named by the label (tl, tr, bl, br)
    torch.manual_seed(0)
    model = build("cgan", n_critic=2, d_dropout=0.0, lr=1e-3)
    reference = image_data.batch(torch.arange(len(image_data)))["x"]
    g = lambda: torch.Generator().manual_seed(7)       # noqa: E731
    before = nearest(model.eval().sample(32, g()), reference)[1].mean()
    trainer = Trainer(model, image_data, TrainConfig(steps=150, batch_size=32, progress=False,
                                                     log_every=10))
    logs = trainer.fit()
    model.eval()
    after = nearest(model.sample(32, g()), reference)[1].mean()
    for k in ("critic/wasserstein", "critic/gradient_penalty", "critic/spread_ratio",
              "critic/loss", "generator/loss"):
        assert np.isfinite(logs[k])
    assert after < 0.7 * before
    for c in range(4):
        x = model.sample(16, g(), label=c)[:, 0]
        quadrants = torch.stack([x[:, :8, :8].mean(), x[:, :8, 8:].mean(),
                                 x[:, 8:, :8].mean(), x[:, 8:, 8:].mean()])
        assert int(quadrants.argmax()) == c, (c, quadrants)


def _run(tmp, name, steps, kill_at=None, init_seed=0):
    torch.manual_seed(init_seed)
    model = build(name)
    run = RunDir(tmp) if (tmp / "config.yaml").exists() else RunDir.create(tmp, {"family": name})
    cfg = TrainConfig(steps=steps, batch_size=16, checkpoint_every=3, sample_every=0,
                      log_every=1, progress=False, seed=4)
    trainer = Trainer(model, _run.data, cfg, run=run)
    if kill_at is not None:       # die in the middle of step kill_at, without a checkpoint
        loss = trainer.objectives[1].loss
        def dying(batch):
            if trainer.step + 1 == kill_at:
                raise RuntimeError("killed")
            return loss(batch)
        trainer.objectives[1].loss = dying
        with pytest.raises(RuntimeError, match="killed"):
            trainer.fit()
        return None
    trainer.fit()
    return trainer


@pytest.mark.parametrize("name", ["wgan_gp", "dcgan"])
def test_resume_after_a_kill_continues_exactly(tmp_path, image_data, name):
    _run.data = image_data
    whole = _run(tmp_path / "whole", name, steps=7)
    _run(tmp_path / "cut", name, steps=7, kill_at=5)          # last checkpoint: step 3
    assert RunDir(tmp_path / "cut").latest_checkpoint().name.startswith("step_00000003")
    resumed = _run(tmp_path / "cut", name, steps=7, init_seed=99)   # other initial weights
    assert resumed.step == 7
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for k in a:                       # weights and batch-norm statistics
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    for oa, ob in zip(whole.optimizers, resumed.optimizers):   # both players' Adam states
        sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0
        for i in sa:
            for k in sa[i]:
                assert torch.allclose(torch.as_tensor(sa[i][k]).float(),
                                      torch.as_tensor(sb[i][k]).float(), atol=1e-6), (i, k)


def test_cli_trains_a_conditional_gan_shows_it_and_samples_a_label(image_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cgan", "--data", str(image_npz), "--steps", "4", "--batch-size", "16",
                 "--out", str(out), "--no-progress", *TINY_SET]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"critic/wasserstein", "critic/gradient_penalty", "critic/spread",
            "generator/loss", "val/d_gap", "val/spread_ratio"} <= keys
    show = out / "showcase"
    for f in ("samples.png", "memorisation.png", "memorisation.json", "class_grid.png",
              "curves.png"):
        assert (show / f).is_file(), f
    stats = json.loads((show / "memorisation.json").read_text())
    assert stats["reference_items"] > stats["samples"] / 4 and "ratio" in stats
    assert main(["sample", str(out), "-n", "6", "--label", "2", "--out", str(tmp_path / "s")]) == 0
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (6, 16, 16, 1)
    assert main(["sample", str(out), "-n", "2", "--label", "9"]) == 2
    assert "--label" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_bf16_autocast_trains_both_players(image_data, name):
    model = build(name)
    trainer = Trainer(model, image_data, TrainConfig(steps=2, batch_size=16, precision="bf16",
                                                     progress=False))
    before = snapshot(model.G)
    with layer_output_dtypes(model.G) as g_dtypes, layer_output_dtypes(model.D) as d_dtypes:
        logs = trainer.fit()
    assert torch.bfloat16 in g_dtypes and torch.bfloat16 in d_dtypes, "ran without autocast"
    assert changed(before, snapshot(model.G))
    assert all(np.isfinite(v) for k, v in logs.items() if k.startswith(("critic/", "generator/")))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_cgan_on_unlabelled_data_fails_before_making_a_run(tmp_path, capsys):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros((20, 16, 16), np.uint8))
    out = tmp_path / "run"
    assert main(["train", "cgan", "--data", str(path), "--steps", "1", "--out", str(out),
                 *TINY_SET]) == 2
    assert "labelled" in capsys.readouterr().err and not out.exists()
