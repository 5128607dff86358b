"""Data-parallel training (training/distributed.py, ranks.py) with 2 gloo processes on the CPU.

The processes are forked from the test (no second import of torch) and meet through a file
store in the test's folder. Claims:

- 2 processes with the global batch B train as 1 process with batch B: the same mean losses
  and the same weights after a few steps (GPT, whose loss has no noise: max |difference| below
  1e-5, float rounding of the two-way gradient average; PixelCNN likewise, its data streamed
  from a pack by a DataLoader worker in each rank), and a diffusion model's data statistics
  are those of the whole batch (mean over the shards);
- every registered family trains under 2 processes with the weights and floating-point buffers
  equal on both ranks, and a 2-process run cut after 2 steps and resumed by fresh trainers from
  its checkpoint ends with exactly the weights and per-rank state of an uninterrupted one;
  so do the families that stand on trained runs (their components trained first, their
  derived data made by rank 0 and read back by the other), and a family fitted by evolution
  is refused under torchrun in one line;
- ``genzoo train --devices 2`` runs torch's elastic launcher: one run folder, written by rank 0
  alone; a batch that does not divide among the processes is one line before anything starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genzoo import config as C
from genzoo import registry
from genzoo.data.packed import pack
from genzoo.errors import GenzooError
from genzoo.training import Trainer, distributed, ranks
from genzoo.training import checkpoint as ckpt
from genzoo.training.launch import prepare, resolve
from genzoo.training.run import RunDir

from conftest import tiny_run
from test_contract import CASES, CORPUS, DATA

WORLD = 2
TOL = 1e-5


def _spawn(fn, folder: Path, *args) -> None:
    """Run ``fn(rank, folder, *args)`` in WORLD processes joined in a gloo group: forked (fast),
    or spawned where this process has used CUDA (autograd's device threads do not survive a
    fork: a GPU test run earlier in the same process would break the ranks)."""
    start = "spawn" if torch.cuda.is_initialized() else "fork"
    mp.start_processes(_join, args=(fn, folder, args), nprocs=WORLD, start_method=start)


def _join(rank, fn, folder, args):
    torch.set_num_threads(1)
    # a rank that fails stops the others (start_processes); a timeout ends any wait for it
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=120))
    try:
        fn(rank, folder, *args)
    finally:
        dist.destroy_process_group()


def _data(folder, modality) -> Path:
    """The contract test's data of ``modality``, written in ``folder`` (by the test, before
    the ranks start: two writers of one file would race)."""
    folder.mkdir(parents=True, exist_ok=True)
    return DATA[modality](folder)


def _spec(name, data, storage="auto", overrides=(), **train):
    loop = dict(batch_size=8, log_every=1, eval_every=0, sample_every=0, checkpoint_every=0,
                progress=False, device="cpu", **train)
    return resolve(name, data=str(data), preset="tiny", train=loop, overrides=list(overrides),
                   data_options={"holdout": 8, "storage": storage, "workers": 1})


def _build(spec):
    with distributed.main_first():      # as launch.train: rank 0 derives and caches data first
        return prepare(spec, progress=False, log=lambda *_: None)


def _state(trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    if trainer.ema is not None:
        out.update({f"ema.{k}": v.clone() for k, v in trainer.ema.state_dict().items()})
    return out


# -- 2 processes = 1 process with the same global batch ---------------------------------------
def _train_steps(spec, steps, watch=None):
    model, train, held = _build(spec)
    if watch is not None:
        next(m for m in model.modules() if isinstance(m, torch.nn.Embedding)) \
            .register_forward_pre_hook(watch)
    trainer = Trainer(model, train, spec.train, held_out=held)
    losses = []
    for _ in range(steps):
        logs = trainer.train_step()
        mean = (trainer.dist.mean_scalars(logs) if trainer.dist is not None
                else {k: float(v) for k, v in logs.items()})
        losses.append(mean["loss"])
    return trainer, losses


def _same_as_one(rank, folder, steps, paths):
    out = {}
    seen = []       # the batch sizes GPT's token embedding gets on this rank: B / WORLD
    trainer, losses = _train_steps(_spec("gpt", paths["text"]), steps,
                                   lambda m, args: seen.append(len(args[0])))
    out["gpt"] = {"losses": losses, "seen": seen,
                  "weights": {k: v.tolist() for k, v in _state(trainer).items()}}
    trainer, _ = _train_steps(_spec("ddpm", paths["image"]), steps)
    out["ddpm"] = {k: trainer.model.state_dict()[k].tolist() for k in ("data_mean", "data_sq")}
    # streamed from disk (a pack read by a DataLoader worker): each rank reads its shard
    trainer, _ = _train_steps(_spec("pixelcnn", folder / "pack", storage="stream"), steps)
    assert trainer.data.streamed
    out["pixelcnn"] = {k: v.tolist() for k, v in _state(trainer).items()}
    if rank == 0:
        (folder / "two.json").write_text(json.dumps(out))


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    steps = 3
    paths = {m: _data(tmp_path / m, m) for m in ("text", "image")}
    pack(str(paths["image"]), tmp_path / "pack", log=lambda *_: None, progress=False)
    _spawn(_same_as_one, tmp_path, steps, paths)
    two = json.loads((tmp_path / "two.json").read_text())
    trainer, losses = _train_steps(_spec("gpt", paths["text"]), steps)
    assert two["gpt"]["seen"] == [8 // WORLD] * steps
    assert np.allclose(two["gpt"]["losses"], losses, rtol=0, atol=TOL), (two["gpt"]["losses"], losses)
    one = _state(trainer)
    assert set(one) == set(two["gpt"]["weights"])
    worst = max(float((torch.tensor(two["gpt"]["weights"][k]) - v).abs().max()) for k, v in one.items())
    assert worst < TOL, f"weights differ by {worst}"
    assert worst > 0 or steps == 0       # really two processes: rounding shows somewhere
    ddpm, _ = _train_steps(_spec("ddpm", paths["image"]), steps)
    for k in ("data_mean", "data_sq"):
        got, want = torch.tensor(two["ddpm"][k]), ddpm.model.state_dict()[k]
        assert torch.allclose(got, want, atol=1e-6), (k, got, want)
    pixelcnn, _ = _train_steps(_spec("pixelcnn", paths["image"]), steps)
    for k, v in _state(pixelcnn).items():
        assert torch.allclose(torch.tensor(two["pixelcnn"][k]), v, rtol=0, atol=TOL), k


# -- every family, and exact resume -----------------------------------------------------------
def _equal_on_ranks(trainer) -> list[str]:
    """Names of float tensors that differ between the ranks (weights, EMA, float buffers)."""
    mine = {k: v for k, v in _state(trainer).items() if v.is_floating_point()}
    everyone = [None] * WORLD
    dist.all_gather_object(everyone, mine)
    return [k for k in mine if any(not torch.equal(mine[k], o[k]) for o in everyone)]


def _own_buffers_saved(trainer, rank, name):
    """Each rank's own (integer) buffers are in the checkpoint, under its rank; an EBM's replay
    buffers, chains of each rank's own noise, differ between the ranks."""
    tensors, _ = ckpt.load(trainer.run.latest_checkpoint())
    for k, v in ranks.rank_local_buffers(trainer.model).items():
        saved = tensors[f"rank.{rank}.model.{k}" if rank else f"model.{k}"]
        assert torch.equal(saved, v.cpu()), f"{name}: rank {rank}'s {k} is not what it saved"
        if k == "replay_bits":
            other = tensors[f"rank.{1 - rank}.model.{k}" if 1 - rank else f"model.{k}"]
            assert not torch.equal(saved, other), f"{name}: the ranks share one replay buffer"


def _every_family(rank, folder, cases):
    for name, modality, data, overrides in cases:
        where = folder / name / modality
        spec = _spec(name, data, overrides=overrides, steps=4)
        model, train, held = _build(spec)
        whole = Trainer(model, train, spec.train, held_out=held)
        whole.fit()
        differ = _equal_on_ranks(whole)
        assert not differ, f"{name}: the ranks differ in {differ[:3]}"
        run = RunDir.create(where / "run", spec.to_dict()) if rank == 0 else None
        dist.barrier()
        run = run or RunDir.open(where / "run")
        model, train, held = _build(spec)
        first = Trainer(model, train, spec.train, run=run, held_out=held,
                        description=spec.to_dict())
        for _ in range(2):
            first.train_step()
        first.save()
        dist.barrier()
        _own_buffers_saved(first, rank, name)
        model, train, held = _build(spec)
        resumed = Trainer(model, train, spec.train, run=run, held_out=held,
                          description=spec.to_dict())
        assert resumed.step == 2
        resumed.fit()
        want, got = _state(whole), _state(resumed)
        bad = [k for k in want if not torch.equal(want[k], got[k])]
        assert not bad, f"{name}, rank {rank}: the resumed run differs in {bad[:3]}"
        (folder / f"done{rank}").open("a").write(f"{name}-{modality}\n")


def _needs_runs(name) -> list[str]:
    """The trained runs a family cannot do without (optional components stay unset)."""
    entry = registry.get(name)
    return [r for r in C.run_refs(entry.config) if r not in entry.cls.optional_components]


def test_every_family_trains_under_two_processes_and_resumes_exactly(tmp_path):
    cases = []
    for p in CASES:
        name, modality = p.values
        if _needs_runs(name):
            continue        # stands on trained runs: the test below
        cases.append((name, modality, _data(tmp_path / name / modality, modality), ()))
    _spawn(_every_family, tmp_path, cases)      # a failure on a rank raises here
    for r in range(WORLD):
        assert (tmp_path / f"done{r}").read_text().split() == [f"{n}-{m}" for n, m, _, _ in cases]


def test_families_on_trained_runs_train_under_two_processes_and_resume_exactly(tmp_path):
    """Their components trained first, in this process; then rank 0 derives the data through
    the frozen component and caches it, the other rank reads it back, and each family trains
    as the others do above. Every family that stands on runs and trains by gradient is here
    but world_m, whose rollouts come from an environment."""
    images, captioned = _data(tmp_path / "image", "image"), _data(tmp_path, "captioned-image")
    runs = {f: tiny_run(f, data, tmp_path / "runs" / f, steps=2, batch_size=8).path
            for f, data in (("vqvae", images), ("kl_autoencoder", captioned), ("clip", captioned))}
    cases = [("vq_prior", "image", images, [f"first_stage={runs['vqvae']}"]),
             ("latent_diffusion", "captioned-image", captioned,
              [f"first_stage={runs['kl_autoencoder']}", f"text_encoder={runs['clip']}"]),
             ("unclip", "captioned-image", captioned, [f"clip={runs['clip']}"])]
    standing = {n for n, e in registry.families().items()
                if _needs_runs(n) and e.cls.fit_with == "gradient"}
    assert standing - {c[0] for c in cases} == {"world_m"}, "a new family on runs: add it here"
    _spawn(_every_family, tmp_path, cases)
    for r in range(WORLD):
        assert (tmp_path / f"done{r}").read_text().split() == [f"{n}-{m}" for n, m, _, _ in cases]


def test_a_family_fitted_by_evolution_is_refused_under_torchrun(monkeypatch):
    from genzoo.training import launch
    monkeypatch.setattr(distributed, "setup", lambda kind: None)
    monkeypatch.setattr(distributed, "active", lambda: True)      # as under torchrun
    monkeypatch.setattr(distributed, "is_main", lambda: True)
    spec = resolve("world_c", data="digits", overrides=["vision=v", "memory=m"])
    with pytest.raises(GenzooError, match="world_c: trained by evolution, it runs in one process"):
        launch.train(spec, "never", progress=False, log=lambda *_: None)
    assert not Path("never").exists()


# -- the command ------------------------------------------------------------------------------
def _genzoo(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "genzoo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_devices_launches_torchrun_and_rank_zero_alone_writes(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    r = _genzoo("train", "gpt", "--preset", "tiny", "--data", "corpus.txt", "--steps", "4",
                "--batch-size", "8", "--devices", "2", "--device", "cpu", "--out", "run",
                "--no-progress", "--set", "train.checkpoint_every=2", "--set", "train.log_every=2",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "on 2 processes" in r.stdout and r.stdout.count("done: run") == 1, r.stdout
    steps = [json.loads(line)["step"] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 4], steps        # one writer: each step logged once (+ val at the end)
    desc = json.loads((tmp_path / "run/checkpoints/step_00000004.json").read_text())
    assert desc["ranks"]["world"] == 2 and len(desc["ranks"]["rng"]) == 1
    assert not list((tmp_path / "run").glob(".lock"))


def test_a_batch_that_does_not_divide_is_one_line_before_launching(tmp_path, capsys):
    from genzoo.cli import main
    (tmp_path / "corpus.txt").write_text(CORPUS)
    code = main(["train", "gpt", "--preset", "tiny", "--data", "corpus.txt", "--batch-size", "9",
                 "--devices", "2", "--device", "cpu", "--out", "run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not divide among 2 processes" in err and "\n" not in err
    assert not (tmp_path / "run").exists()
