"""The one training loop: learning, schedules, EMA, checkpoints and exact resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_AE, layer_output_dtypes
from genzoo.cli import main
from genzoo.models.autoencoder import Autoencoder, AutoencoderConfig
from genzoo.models.base import DataInfo
from genzoo.training import TrainConfig, Trainer
from genzoo.training import checkpoint as ckpt
from genzoo.training.run import RunDir
from genzoo.training.trainer import Batches, lr_factor

TINY = dict(widths=(8, 16), image_size=16)


def tiny_ae(data):
    return Autoencoder(AutoencoderConfig(**TINY), DataInfo.of(data))


def test_loss_goes_down_on_a_tiny_set(image_data):
    model = tiny_ae(image_data)
    trainer = Trainer(model, image_data, TrainConfig(steps=150, batch_size=32, progress=False))
    first = float(trainer.train_step()["loss"])
    trainer.fit()
    assert trainer.step == 150
    assert trainer.last_metrics["loss"] < 0.8 * first


def test_batches_cover_each_epoch_once_and_resume_the_same_sequence():
    b = Batches(10, 4, seed=3)
    epoch0 = torch.cat([b.next(), b.next()])       # 8 of 10; the rest is dropped
    assert len(set(epoch0.tolist())) == 8
    state = b.state()
    ahead = [b.next() for _ in range(5)]
    c = Batches(10, 4, seed=3)
    c.load(state)
    assert all(torch.equal(x, y) for x, y in zip(ahead, [c.next() for _ in range(5)]))


def test_learning_rate_schedules():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1)
    f = lr_factor(cfg, 100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)
    lin = lr_factor(TrainConfig(lr_schedule="linear", min_lr_ratio=0.0), 100)
    assert lin(50) == pytest.approx(0.5)


def test_ema_tracks_the_weights(image_data):
    model = tiny_ae(image_data)
    t = Trainer(model, image_data, TrainConfig(steps=30, batch_size=16, ema_decay=0.9,
                                               progress=False))
    t.fit()
    w = dict(model.named_parameters())["head.weight"]
    shadow = t.ema.shadow["head.weight"]
    assert not torch.equal(w, shadow)
    with t.ema.applied():
        assert torch.equal(dict(model.named_parameters())["head.weight"], shadow)
    assert not torch.equal(dict(model.named_parameters())["head.weight"], shadow)


def test_bf16_autocast_trains(image_data):
    model = tiny_ae(image_data)
    t = Trainer(model, image_data,
                TrainConfig(steps=20, batch_size=16, precision="bf16", progress=False))
    with layer_output_dtypes(model) as dtypes:
        t.fit()
    assert torch.bfloat16 in dtypes, "the convolutions ran without autocast"
    assert torch.isfinite(torch.tensor(t.last_metrics["loss"]))
    assert all(p.dtype == torch.float32 for p in model.parameters())   # master weights stay fp32


def _weights(path):
    tensors, desc = ckpt.load(path)
    return tensors, desc


def test_checkpoint_is_atomic_readable_and_round_trips(image_data, tmp_path):
    run = RunDir.create(tmp_path / "run", {"family": "autoencoder"})
    cfg = TrainConfig(steps=12, batch_size=16, checkpoint_every=5, keep_checkpoints=2,
                      progress=False, sample_every=0)
    Trainer(tiny_ae(image_data), image_data, cfg, run=run).fit()
    files = sorted(p.name for p in (run.path / "checkpoints").iterdir())
    # only the last two kept, each with its readable description, no temporary left behind
    assert files == ["step_00000010.json", "step_00000010.safetensors",
                     "step_00000012.json", "step_00000012.safetensors"]
    tensors, desc = _weights(run.latest_checkpoint())
    assert desc["step"] == 12 and desc["batches"]["epoch"] >= 0
    assert "model.head.weight" in tensors and "rng.torch" in tensors
    # the file holds no pickle: safetensors header + raw bytes only
    assert b"\x80\x04\x95" not in run.latest_checkpoint().read_bytes()[:200]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from genzoo.errors import GenzooError
    p = tmp_path / "step_00000001.safetensors"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(GenzooError, match="step_00000001.safetensors: not a readable checkpoint"):
        ckpt.load(p)


def test_compiled_training_writes_the_same_keys_as_eager(image_data, tmp_path):
    pytest.importorskip("torch._dynamo")
    keys = []
    for compile_ in (False, True):
        run = RunDir.create(tmp_path / f"run{compile_}", {"family": "autoencoder"})
        cfg = TrainConfig(steps=2, batch_size=16, compile=compile_, progress=False,
                          sample_every=0, eval_every=0)
        Trainer(tiny_ae(image_data), image_data, cfg, run=run).fit()
        keys.append(sorted(k for k in _weights(run.latest_checkpoint())[0] if k.startswith("model.")))
    assert keys[0] == keys[1]
    assert not any("_orig_mod" in k for k in keys[1])


def test_resume_after_sigkill_equals_an_uninterrupted_run(image_npz, tmp_path):
    """A run killed with SIGKILL and resumed ends with the very same weights."""
    args = ["train", "autoencoder", "--data", str(image_npz), "--steps", "120",
            "--batch-size", "16", *TINY_AE, "--set", "train.checkpoint_every=10",
            "--set", "train.eval_every=10", "--no-progress"]
    # the reference: uninterrupted
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    # killed: sample grids every step slow it down without touching the training itself
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "genzoo", *args, "--out", str(tmp_path / "k"),
                             "--set", "train.sample_every=1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = tmp_path / "k" / "checkpoints" / ckpt.name_for(20)
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = RunDir(tmp_path / "k").latest_checkpoint()
    assert killed_at is not None, "the run was killed before its first checkpoint"
    assert killed_at.name != ckpt.name_for(120), "the run finished before it could be killed"
    assert main(["train", "--resume", "--out", str(tmp_path / "k"), "--no-progress"]) == 0
    ref, ref_desc = _weights(RunDir(tmp_path / "ref").latest_checkpoint())
    got, got_desc = _weights(RunDir(tmp_path / "k").latest_checkpoint())
    assert got_desc["step"] == ref_desc["step"] == 120
    for k in ref:
        if k.startswith(("model.", "optim.")):
            torch.testing.assert_close(got[k], ref[k], rtol=0, atol=1e-6, msg=lambda m: k + m)
    # the metrics log was cut back to the checkpoint, so no step is logged twice
    steps = [r["step"] for r in RunDir(tmp_path / "k").metrics() if "loss" in r]
    assert steps == sorted(set(steps))
