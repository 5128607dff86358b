"""The GPU path: every family trains and samples on CUDA, in fp32 (TF32) and under bf16
autocast, resumes to within rounding (CUDA's atomic-add kernels, e.g. an embedding's backward,
sum in no fixed order, so bit-for-bit equality is not promised there), streams batches into
pinned memory, and keeps NHWC weights with ``train.channels_last``. Skipped without a GPU;
the NCCL test needs two.

    benchmarks/gpu_check.sh runs these and the speed figures in one go.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import layer_output_dtypes
from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.training import Trainer
from genzoo.training.launch import prepare, resolve
from genzoo.training.run import RunDir

from test_contract import CASES, CHECK, CORPUS, DATA

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]


def _spec(name, modality, folder, **train):
    if C.run_refs(registry.get(name).config):
        pytest.skip(f"{name} stands on trained runs")
    loop = dict(batch_size=8, log_every=1, eval_every=0, sample_every=0, checkpoint_every=0,
                progress=False, device="cuda", **train)
    return resolve(name, data=str(DATA[modality](folder)), preset="tiny", train=loop,
                   data_options={"holdout": 8})


def _build(spec):
    return prepare(spec, progress=False, log=lambda *_: None)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name,modality", CASES)
def test_every_family_trains_and_samples_on_cuda(name, modality, precision, tmp_path):
    spec = _spec(name, modality, tmp_path, steps=3, precision=precision)
    model, train, held = _build(spec)
    trainer = Trainer(model, train, spec.train, held_out=held)
    assert model.device.type == "cuda"
    with layer_output_dtypes(model) as dtypes:
        for _ in range(3):
            for k, v in trainer.train_step().items():
                assert torch.isfinite(v).all(), f"{name}: {k} = {v}"
    assert (torch.bfloat16 in dtypes) == (precision == "bf16"), dtypes
    assert torch.backends.cuda.matmul.allow_tf32
    assert all(np.isfinite(v) for v in trainer.evaluate().values())
    if registry.get(name).taxonomy != "discriminative":
        model.eval()
        info = model.output_info
        CHECK[info.modality](model.sample(3, generator=torch.Generator("cuda").manual_seed(0)),
                             info, 3)


@pytest.mark.parametrize("name,modality", CASES)
def test_resume_on_cuda_matches_an_uninterrupted_run(name, modality, tmp_path):
    spec = _spec(name, modality, tmp_path, steps=4)
    model, train, held = _build(spec)
    whole = Trainer(model, train, spec.train, held_out=held)
    whole.fit()
    model, train, held = _build(spec)
    run = RunDir.create(tmp_path / "run", spec.to_dict())
    first = Trainer(model, train, spec.train, run=run, held_out=held, description=spec.to_dict())
    for _ in range(2):
        first.train_step()
    first.save()
    model, train, held = _build(spec)
    resumed = Trainer(model, train, spec.train, run=run, held_out=held, description=spec.to_dict())
    resumed.fit()
    want, got = whole.model.state_dict(), resumed.model.state_dict()
    for k in want:
        if want[k].is_floating_point():
            assert torch.allclose(want[k], got[k], rtol=1e-4, atol=1e-5), f"{name}: {k}"
        else:
            assert torch.equal(want[k], got[k]), f"{name}: {k}"


def test_tf32_and_channels_last_follow_the_settings(tmp_path):
    spec = _spec("ddpm", "image", tmp_path, steps=2, tf32=False, channels_last=True,
                 precision="bf16")
    model, train, held = _build(spec)
    trainer = Trainer(model, train, spec.train, held_out=held)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    convs = [p for p in model.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    trainer.fit()
    spec = _spec("ddpm", "image", tmp_path, steps=1)
    Trainer(*_build(spec)[:2], spec.train)
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_streamed_batches_arrive_on_the_gpu(tmp_path):
    from genzoo.data.packed import pack
    src = DATA["image"](tmp_path)
    out = pack(str(src), tmp_path / "pack", log=lambda *_: None, progress=False)
    memory = D.load(str(src)).to("cuda")
    stream = D.load(str(out), D.DataOptions(storage="stream", workers=1)).to("cuda")
    order = [torch.tensor([3, 1, 0]), torch.tensor([7, 2, 5])]
    for (idx, batch), want in zip(stream.loader(iter(order)), order):
        assert batch["x"].device.type == "cuda"
        assert torch.equal(batch["x"], memory.batch(want.cuda())["x"])


def _genzoo(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "genzoo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_command_trains_and_samples_on_cuda(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    r = _genzoo("train", "gpt", "--preset", "tiny", "--data", "corpus.txt", "--steps", "5",
                "--device", "cuda", "--out", "run", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _genzoo("sample", "run", "-n", "4", "--device", "cuda", "--out", "s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL data parallelism needs 2 GPUs")
def test_two_gpus_train_with_nccl_and_sync_batchnorm(tmp_path):
    DATA["image"](tmp_path)
    r = _genzoo("train", "dcgan", "--preset", "tiny", "--data", "blobs.npz", "--steps", "4",
                "--batch-size", "8", "--device", "cuda", "--devices", "2", "--out", "run",
                "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run/checkpoints/step_00000004.safetensors").is_file()
