"""The `genzoo` command: what it prints, the files it writes, its exit codes and errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_AE
from genzoo.cli import main


def run_ok(capsys, *args) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def run_error(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genzoo: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_list_shows_families_with_modality_and_taxonomy(capsys):
    out = run_ok(capsys, "list")
    assert "explicit density, approximate" in out and "implicit density" in out
    vae = next(line for line in out.splitlines() if line.split()[:1] == ["vae"])
    assert "image" in vae


def test_train_sample_info_round_trip(capsys, image_npz, tmp_path):
    out = run_ok(capsys, "train", "vae", "--data", str(image_npz), "--steps", "30",
                 "--batch-size", "16", *TINY_AE, "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "train.sample_every=10")
    run = tmp_path / "run"
    assert str(run) in out
    for f in ("config.yaml", "metrics.jsonl", "samples/step_00000010.png",
              "samples/step_00000030.png", "checkpoints/step_00000030.safetensors",
              "showcase/reconstructions.png", "showcase/latent_scatter.png",
              "showcase/latent_grid.png", "showcase/samples.png", "showcase/interpolation.png",
              "showcase/latent_arithmetic.png"):
        assert (run / f).is_file(), f
    out = run_ok(capsys, "sample", str(run), "-n", "10", "--out", str(tmp_path / "s"))
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (10, 16, 16, 1) and x.dtype == np.uint8
    assert (tmp_path / "s.png").is_file()
    # same seed, same samples
    run_ok(capsys, "sample", str(run), "-n", "10", "--out", str(tmp_path / "t"))
    assert np.array_equal(x, np.load(tmp_path / "t.npz")["x"])
    info = run_ok(capsys, "info", str(run))
    assert "family: vae" in info and "steps:  30 of 30" in info and "val/elbo_bpd" in info


def test_builtin_digits_are_adapted_to_the_recipe_size(capsys, tmp_path):
    out = run_ok(capsys, "train", "autoencoder", "--data", "digits", "--steps", "2",
                 "--set", "widths=[8]", "--out", str(tmp_path / "d"), "--no-progress")
    assert "32x32" in out        # the data note says what was done to fit the recipe


def test_extending_a_finished_run(capsys, image_npz, tmp_path):
    run_ok(capsys, "train", "autoencoder", "--data", str(image_npz), "--steps", "4", *TINY_AE,
           "--out", str(tmp_path / "r"), "--no-progress")
    out = run_ok(capsys, "train", "--resume", "--out", str(tmp_path / "r"), "--steps", "6",
                 "--no-progress")
    assert "resuming from step 4" in out
    assert run_ok(capsys, "info", str(tmp_path / "r")).count("steps:  6 of 6") == 1


@pytest.mark.parametrize("args, message", [
    (["train", "vae", "--data", "nowhere.npz"], "nowhere.npz: no such file or folder"),
    (["train", "vea", "--data", "digits"], "unknown family 'vea'"),
    (["train", "vae"], "no data given"),
    (["train", "vae", "--data", "digits", "--set", "latent_dim=0"], "latent_dim must be >= 1"),
    (["train", "vae", "--data", "digits", "--set", "train.batch_size=x"], "batch_size must be int"),
    (["train", "--resume", "--out", "no-run"], "no-run: not a genzoo run folder"),
    (["sample", "no-run"], "no-run: not a genzoo run folder"),
    (["info", "no-run"], "no-run: not a genzoo run folder"),
])
def test_bad_input_is_one_line_and_writes_no_run_folder(capsys, tmp_path, args, message):
    err = run_error(capsys, *args, *(["--out", str(tmp_path / "x")] if args[0] == "train"
                                     and "--out" not in args else []))
    assert message in err
    assert not (tmp_path / "x").exists()


def test_bad_data_file_leaves_nothing_behind(capsys, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    err = run_error(capsys, "train", "vae", "--data", str(bad), "--out", str(tmp_path / "x"))
    assert "broken.npz" in err
    assert not (tmp_path / "x").exists()


def test_sample_rejects_conditions_the_family_does_not_take(capsys, image_npz, tmp_path):
    run_ok(capsys, "train", "vae", "--data", str(image_npz), "--steps", "1", *TINY_AE,
           "--out", str(tmp_path / "r"), "--no-progress")
    assert "vae does not take --prompt" in run_error(capsys, "sample", str(tmp_path / "r"),
                                                      "--prompt", "hi")
    assert "-n 0: must be at least 1" in run_error(capsys, "sample", str(tmp_path / "r"), "-n", "0")


def test_the_installed_command_exits_non_zero_without_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "genzoo", "train", "vae", "--data", "missing.png"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == ("genzoo: error: missing.png: no such file or folder, and not a "
                                "builtin dataset (builtins: " + p.stderr.split("(builtins: ")[1].strip())
    assert "Traceback" not in p.stderr


def test_data_command_lists_and_inspects(capsys):
    out = run_ok(capsys, "data", "list")
    assert "digits" in out and "offline builtin" in out and "fashion-mnist" in out
    out = run_ok(capsys, "data", "show", "digits", "--image-size", "16")
    assert "digits: 1797 items of shape (1, 16, 16)" in out and "classes (10)" in out
    assert "not a named dataset" in run_error(capsys, "data", "fetch", "imagenet")


def test_a_part_of_an_archive_is_a_data_spec(capsys, tmp_path):
    import io
    import tarfile

    from PIL import Image
    with tarfile.open(tmp_path / "set.tar", "w") as tar:
        for split, n in (("train", 3), ("test", 2)):
            for cls in ("cat", "dog"):
                for i in range(n):
                    buf = io.BytesIO()
                    Image.new("L", (8, 8), 40 * i).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i}.png")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))
    out = run_ok(capsys, "data", "show", f"{tmp_path / 'set.tar'}:test")
    assert "4 items of shape (1, 8, 8)" in out and "classes (2): cat, dog" in out
    assert "set.tar:nope" in run_error(capsys, "data", "show", f"{tmp_path / 'set.tar'}:nope")
