"""Run folders stay whole: settings checked before anything is written, one process per run
folder, resumes that change only what they may, damaged checkpoints and full disks survived."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TINY_AE
from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.training import checkpoint as ckpt
from genzoo.training.run import RunDir

QUICK = ["--steps", "4", "--batch-size", "16", "--no-progress", "--set", "train.sample_every=0",
         "--set", "train.checkpoint_every=2", "--set", "train.eval_every=0"]


def train(npz, out, *extra):
    return main(["train", "vae", "--data", str(npz), "--out", str(out), *TINY_AE, *QUICK, *extra])


@pytest.mark.parametrize("extra,needle", [
    (["--seed", "-3"], "seed must be >= 0"),
    (["--set", "lr=nan"], "lr must be a finite number"),
    (["--set", "lr=-1"], "lr (a learning rate) must be > 0"),
    (["--set", "train.keep_checkpoints=-1"], "keep_checkpoints must be >= 1"),
    (["--steps", "0"], "steps must be >= 1"),
    (["--epochs", "-1"], "epochs must be > 0"),
    (["--device", "tpu"], "'tpu'"),
])
def test_bad_settings_are_refused_before_a_folder_exists(image_npz, tmp_path, capsys, extra, needle):
    if extra[0] == "--epochs":                       # --steps and --epochs exclude each other
        args = ["train", "vae", "--data", str(image_npz), "--out", str(tmp_path / "r"), *TINY_AE,
                "--no-progress", *extra]
        code = main(args)
    else:
        code = train(image_npz, tmp_path / "r", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_up_front(image_npz, tmp_path, capsys):
    assert train(image_npz, tmp_path / "r", "--device", "cuda") == 2
    assert "no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_an_out_that_cannot_be_a_folder_is_one_line(image_npz, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert train(image_npz, f) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert train(image_npz, f / "below") == 2
    assert "is a file, so no folder can be made below it" in capsys.readouterr().err
    assert train(image_npz, "/proc/genzoo-run") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_resume_changes_only_what_it_may(image_npz, tmp_path, capsys):
    out = tmp_path / "r"
    assert train(image_npz, out) == 0
    before = (out / "config.yaml").read_text()
    for flags, name in ((["--batch-size", "8"], "batch_size"), (["--seed", "3"], "seed"),
                        (["--set", "beta=2"], "set")):
        code = main(["train", "--resume", "--out", str(out), "--no-progress", *flags])
        err = capsys.readouterr().err
        assert code == 2 and f"{name} cannot change" in err
    code = main(["train", "--resume", "--out", str(out), "--steps", "2", "--no-progress"])
    assert code == 2 and "4 steps are done already" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == before         # a refused resume writes nothing
    assert main(["train", "--resume", "--out", str(out), "--steps", "6", "--no-progress"]) == 0
    assert RunDir(out).spec.train.steps == 6


def test_a_second_process_cannot_train_in_a_locked_folder(image_npz, tmp_path, capsys):
    out = tmp_path / "r"
    assert train(image_npz, out) == 0
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{sleeper.pid}\n")
        code = main(["train", "--resume", "--out", str(out), "--steps", "6", "--no-progress"])
        assert code == 2 and f"another genzoo process (pid {sleeper.pid})" in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same lock, its process gone, is stale: taken over, and released after the run
    assert main(["train", "--resume", "--out", str(out), "--steps", "6", "--no-progress"]) == 0
    assert not (out / ".lock").exists()


def test_a_damaged_latest_checkpoint_falls_back_to_the_older_one(image_npz, tmp_path, capsys):
    out = tmp_path / "r"
    assert train(image_npz, out) == 0
    latest = RunDir(out).latest_checkpoint()
    assert latest.name == "step_00000004.safetensors"
    latest.write_bytes(latest.read_bytes()[:100])               # cut short
    assert main(["train", "--resume", "--out", str(out), "--steps", "6", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "resuming from the older step_00000002.safetensors" in captured.out + captured.err
    assert ckpt.load(RunDir(out).latest_checkpoint())[1]["step"] == 6


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(image_npz, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    real = ckpt.save_file
    calls = []

    def full(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(*a, **k)
    monkeypatch.setattr(ckpt, "save_file", full)
    assert train(image_npz, out) == 2
    err = capsys.readouterr().err
    assert "could not write the checkpoint of step 4 (No space left on device)" in err
    assert "step_00000002.safetensors is intact" in err
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert files == ["step_00000002.json", "step_00000002.safetensors"]
    ckpt.load(out / "checkpoints" / "step_00000002.safetensors")


def test_every_checkpoint_rebuilds_its_own_model(image_npz, tmp_path):
    from genzoo.training.description import RunSpec
    from genzoo.training.run import build_model
    out = tmp_path / "r"
    assert train(image_npz, out) == 0
    tensors, desc = ckpt.load(RunDir(out).latest_checkpoint())
    model = build_model(RunSpec.from_dict(desc, where="checkpoint"))
    model.load_state_dict(ckpt.sub(tensors, "model"))
    with pytest.raises(GenzooError, match="not a run description"):
        RunSpec.from_dict({"model": {}}, where="x.json")
