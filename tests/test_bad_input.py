"""Every bad input is one line: exit status 2, exactly one line on stderr naming the file or
setting at fault, no traceback, and nothing written (no run folder left; an existing run folder
untouched). One table, by the categories of issue 17: settings, resumes, checkpoints and steps,
the file system, run folders and checkpoints of another kind, decompression bombs, data files.

Each case builds what it needs in the test's folder and returns the command line; the working
folder (all but the cache) is compared file by file before and after the command.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_AE, blobs
from genzoo.cli import main
from genzoo.data import archives

QUICK = ["--steps", "2", "--batch-size", "16", "--no-progress", "--set", "train.sample_every=0",
         "--set", "train.checkpoint_every=1", "--set", "train.eval_every=0"]


# -------------------------------------------------------------------------- what cases stand on

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained tiny VAE and a tiny autoencoder (two checkpoints each), made once."""
    root = tmp_path_factory.mktemp("runs")
    x, y = blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    for family in ("vae", "autoencoder"):
        code = main(["train", family, "--data", str(root / "blobs.npz"), "--out",
                     str(root / family), *TINY_AE, *QUICK])
        assert code == 0
    return root


def blobs_npz(tmp: Path) -> str:
    x, y = blobs()
    np.savez(tmp / "blobs.npz", x=x, y=y)
    return "blobs.npz"


SIZELESS = ["--set", "widths=[8,16]", "--set", "latent_dim=2"]    # TINY_AE without image_size


def train(*extra, family="vae", data=None, model=TINY_AE):
    """A setup: training ``family`` on the blobs (or ``data``) into R, with ``extra`` flags."""
    def setup(tmp: Path, runs: Path) -> list[str]:
        spec = data(tmp) if data else blobs_npz(tmp)
        return ["train", family, "--data", spec, "--out", "R", *model, *QUICK, *extra]
    return setup


def on_run(*argv, change=None):
    """A setup: a copy of the trained VAE as R (``change(R, runs)`` alters it), then ``argv``
    with RUN replaced by R."""
    def setup(tmp: Path, runs: Path) -> list[str]:
        shutil.copytree(runs / "vae", tmp / "R")
        shutil.copy(runs / "blobs.npz", tmp / "blobs.npz")
        if change:
            change(tmp / "R", runs)
        return ["R" if a == "RUN" else a for a in argv]
    return setup


def resume(*extra, change=None):
    return on_run("train", "--resume", "--out", "RUN", "--no-progress", *extra, change=change)


def data_file(make, *extra, family="vae"):
    """A setup: ``make(tmp)`` writes a data file and returns its spec; train on it."""
    return train(*extra, family=family, data=make)


def write(name: str, content: bytes | str):
    def make(tmp: Path) -> str:
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return name
    return make


def arrays(name: str = "a.npz", **named):
    """A setup part: an .npz of the ``named`` arrays (an .npy of ``x``)."""
    def make(tmp: Path) -> str:
        if name.endswith(".npy"):
            np.save(tmp / name, named["x"])
        else:
            np.savez(tmp / name, **named)
        return name
    return make


def png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, format="PNG")
    return b.getvalue()


GOOD_PNG = png(np.zeros((8, 8), np.uint8))


def folder(files: dict[str, bytes], name: str = "imgs"):
    def make(tmp: Path) -> str:
        for rel, content in files.items():
            p = tmp / name / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
        (tmp / name).mkdir(exist_ok=True)
        return name
    return make


# ---- run folders and checkpoints changed after training

def empty_config(run: Path, runs: Path) -> None:
    (run / "config.yaml").write_text("")


def unknown_family_config(run: Path, runs: Path) -> None:
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("family: vae", "family: nosuch", 1))


def foreign_checkpoint(run: Path, runs: Path) -> None:
    """Only the autoencoder's latest checkpoint, where the VAE's were."""
    for f in (run / "checkpoints").iterdir():
        f.unlink()
    for f in (runs / "autoencoder" / "checkpoints").glob("step_00000002.*"):
        shutil.copy(f, run / "checkpoints" / f.name)


def truncated_checkpoints(run: Path, runs: Path) -> None:
    for f in (run / "checkpoints").glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:100])


def beside(name: str, content: str):
    def change(run: Path, runs: Path) -> None:
        (run.parent / name).mkdir() if content == "/" else (run.parent / name).write_text(content)
    return change


# ---- decompression bombs and their kin

def tar_gz_claiming(size: int) -> bytes:
    """A .tar.gz: one good PNG, then a header that claims ``size`` bytes (and no such data)."""
    ok = tarfile.TarInfo("imgs/a.png")
    ok.size = len(GOOD_PNG)
    big = tarfile.TarInfo("imgs/big.png")
    big.size = size
    raw = (ok.tobuf(format=tarfile.GNU_FORMAT) + GOOD_PNG + b"\0" * (-len(GOOD_PNG) % 512)
           + big.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 4096)
    return gzip.compress(raw)


def zip_with(claim: int, actual: bytes, patch_local: bool = False) -> bytes:
    """A .zip of a good PNG and big.png holding ``actual``, its directory claiming ``claim``."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", GOOD_PNG)
        z.writestr("big.png", actual)
    raw = bytearray(b.getvalue())
    i = raw.rfind(b"PK\x01\x02")
    raw[i + 24:i + 28] = struct.pack("<I", claim)
    if patch_local:
        j = raw.rfind(b"PK\x03\x04")
        raw[j + 22:j + 26] = struct.pack("<I", claim)
    return bytes(raw)


def zeros_tar_gz(n_bytes: int) -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as tf:
        info = tarfile.TarInfo("imgs/a.png")
        info.size = len(GOOD_PNG)
        tf.addfile(info, io.BytesIO(GOOD_PNG))
        info = tarfile.TarInfo("imgs/notes.txt")
        info.size = n_bytes
        tf.addfile(info, io.BytesIO(bytes(n_bytes)))
    return b.getvalue()


def huge_png(tmp: Path) -> str:
    (tmp / "imgs").mkdir()
    Image.new("1", (10000, 9000)).save(tmp / "imgs" / "huge.png")   # 90 M pixels, 11 kB
    return "imgs"


def small_floor(monkeypatch):
    monkeypatch.setattr(archives, "FLOOR", 1 << 20)


# -------------------------------------------------------------------------- the table

CASES = [
    # -- settings, checked before anything is written (issue 17, defects 2 and 4)
    ("set-lr-inf", train("--set", "lr=inf"), "lr must be a finite number"),
    ("set-beta-zero", train("--set", "beta=0"), "beta must be > 0"),
    ("set-latent-zero", train("--set", "latent_dim=0"), "latent_dim must be >= 1"),
    ("set-unknown", train("--set", "nosuch=1"), "unknown setting 'nosuch'"),
    ("set-wrong-type", train("--set", "latent_dim=two"), "latent_dim must be int"),
    ("set-no-equals", train("--set", "latent_dim"), "--set 'latent_dim': expected key=value"),
    ("set-unknown-section", train("--set", "optim.lr=1"), "unknown section 'optim'"),
    ("train-batch-zero", train("--set", "train.batch_size=0"), "batch_size must be >= 1"),
    ("batch-size-flag-zero", train("--batch-size", "0"), "batch_size must be >= 1"),
    ("train-precision", train("--set", "train.precision=fp8"), "precision must be fp32, bf16 or auto"),
    ("train-ema", train("--set", "train.ema_decay=1.5"), "ema_decay must be in [0, 1)"),
    ("train-nonfinite", train("--set", "train.nonfinite=ignore"), "nonfinite must be stop or skip"),
    ("train-accumulate", train("--set", "train.accumulate=3"), "accumulate must be >= 1 and divide"),
    ("train-max-minutes", train("--set", "train.max_minutes=-1"), "max_minutes must be >= 0"),
    ("train-schedule", train("--set", "train.lr_schedule=step"), "lr_schedule must be constant"),
    ("train-checkpoint-every", train("--set", "train.checkpoint_every=-1"),
     "checkpoint_every and sample_every must be >= 0"),
    ("train-sample-n", train("--set", "train.sample_n=0"), "sample_n and eval_batches must be >= 1"),
    ("device-bad-index", train("--device", "cuda:x"), "train.device: 'cuda:x'"),
    ("preset-unknown", train("--preset", "huge"), "vae: unknown preset 'huge'"),
    ("family-unknown", train(family="nosuch"), "unknown family 'nosuch'"),
    ("no-data", lambda tmp, runs: ["train", "vae", "--out", "R", *QUICK], "vae: no data given"),
    ("image-size-conflict", train("--image-size", "8", "--set", "image_size=16"),
     "image_size is 16 in the model settings but 8 in the data options"),
    ("image-size-indivisible", train("--image-size", "10", model=SIZELESS),
     "image_size 10 must be divisible"),
    ("data-holdout-negative", train("--set", "data.holdout=-1"), "holdout must be a fraction"),
    ("data-holdout-fractional-count", train("--set", "data.holdout=2.5"),
     "holdout 2.5: a count of items must be whole"),
    ("data-holdout-everything", train("--set", "data.holdout=96"), "leaves no training items"),
    ("data-channels", train("--set", "data.channels=2"), "data.channels=2"),
    ("data-resize", train("--set", "data.resize=stretch"), "data.resize='stretch'"),
    # -- images of size 0, image sizes and item counts out of range (defect 5)
    ("image-size-zero", train("--image-size", "0", model=SIZELESS),
     "image_size must be >= 1, got 0"),
    ("image-size-negative", train("--image-size", "-4", model=SIZELESS),
     "image_size must be >= 1, got -4"),
    ("data-max-items-negative", train("--set", "data.max_items=-1"), "max_items must be >= 1"),
    ("data-max-items-zero", train("--set", "data.max_items=0"), "max_items must be >= 1"),
    ("npz-images-of-size-zero", data_file(arrays(x=np.zeros((10, 0, 0), np.uint8))),
     "a.npz [x]: images of size 0x0"),
    ("npz-images-of-width-zero", data_file(arrays(x=np.zeros((10, 8, 0, 1), np.uint8))),
     "a.npz [x]: images of size 0x8"),
    # -- the wrong kind of data for the family (defect 5)
    ("vae-on-points", data_file(write("p.csv", "a,b\n" + "1,2\n" * 20)), "vae: needs images"),
    ("autoencoder-on-text", data_file(write("t.txt", "hello there. " * 50), family="autoencoder"),
     "autoencoder: needs images"),
    # -- resumes: what may change, what may not (defect 3)
    ("resume-data", resume("--data", "digits"), "data cannot change"),
    ("resume-preset", resume("--preset", "tiny"), "preset cannot change"),
    ("resume-config", resume("--config", "c.yaml", change=beside("c.yaml", "model: {}")),
     "config cannot change"),
    ("resume-image-size", resume("--image-size", "32"), "image_size cannot change"),
    ("resume-no-out", lambda tmp, runs: ["train", "--resume", "--steps", "3"],
     "--resume needs --out RUN_DIR"),
    ("resume-not-a-run", lambda tmp, runs: (tmp / "R").mkdir() or
     ["train", "--resume", "--out", "R"], "R: not a genzoo run folder"),
    ("resume-other-family", on_run("train", "autoencoder", "--resume", "--out", "RUN"),
     "R: holds a vae run, not autoencoder"),
    ("resume-bad-device", resume("--device", "tpu"), "train.device: 'tpu'"),
    ("resume-negative-epochs", resume("--epochs", "-1"), "epochs must be > 0"),
    # -- config files (defect 5)
    ("config-is-a-folder", on_run("train", "vae", "--data", "blobs.npz", "--config", "cfg",
                                  "--out", "N", change=beside("cfg", "/")),
     "cfg: is a folder, not a config file"),
    ("config-missing", train("--config", "nowhere.yaml"), "nowhere.yaml: no such config file"),
    ("config-bad-yaml", on_run("train", "vae", "--data", "blobs.npz", "--config", "c.yaml",
                               "--out", "N", change=beside("c.yaml", "model: [1, 2\n")),
     "c.yaml: not valid YAML"),
    ("config-a-list", on_run("train", "vae", "--data", "blobs.npz", "--config", "c.yaml",
                             "--out", "N", change=beside("c.yaml", "- 1\n- 2\n")),
     "c.yaml: a config file must be a mapping"),
    ("config-unknown-section", on_run("train", "vae", "--data", "blobs.npz", "--config", "c.yaml",
                                      "--out", "N", change=beside("c.yaml", "optim: {lr: 1}\n")),
     "c.yaml: unknown section 'optim'"),
    ("config-other-family", on_run("train", "vae", "--data", "blobs.npz", "--config", "c.yaml",
                                   "--out", "N", change=beside("c.yaml", "family: ddpm\n")),
     "c.yaml: is for family 'ddpm'"),
    # -- sample, info, eval, report on what is not (quite) a run (defect 5)
    ("sample-out-unwritable", on_run("sample", "RUN", "-n", "4", "--out", "/proc/genzoo/x"),
     "/proc/genzoo"),
    ("sample-out-below-a-file", on_run("sample", "RUN", "-n", "4", "--out", "f.txt/x",
                                       change=beside("f.txt", "x")),
     "f.txt: exists and is not a folder"),
    ("sample-not-a-run", lambda tmp, runs: ["sample", "nowhere"], "nowhere: not a genzoo run"),
    ("sample-n-zero", on_run("sample", "RUN", "-n", "0"), "-n 0: must be at least 1"),
    ("sample-undeclared-option", on_run("sample", "RUN", "-n", "2", "--temperature", "0.5"),
     "vae does not take --temperature"),
    ("info-not-a-run", lambda tmp, runs: ["info", "nowhere"], "nowhere: not a genzoo run"),
    ("eval-too-few", on_run("eval", "RUN", "-n", "2"), "-n 2: need at least 4 samples"),
    ("eval-not-a-run", lambda tmp, runs: ["eval", "nowhere"], "nowhere: not a genzoo run"),
    ("empty-config-info", on_run("info", "RUN", change=empty_config),
     "R/config.yaml: not a run description"),
    ("empty-config-sample", on_run("sample", "RUN", "-n", "2", change=empty_config),
     "R/config.yaml: not a run description"),
    ("empty-config-resume", resume("--steps", "4", change=empty_config),
     "R/config.yaml: not a run description"),
    ("empty-config-eval", on_run("eval", "RUN", "-n", "4", change=empty_config),
     "R/config.yaml: not a run description"),
    ("empty-config-report", on_run("report", "RUN", change=empty_config),
     "R/config.yaml: not a run description"),
    ("config-family-only-info", on_run("info", "RUN", change=beside("R/config.yaml",
                                                                    "family: vae\n")),
     "R/config.yaml: no data spec"),
    ("config-family-only-eval", on_run("eval", "RUN", "-n", "4", change=beside(
        "R/config.yaml", "family: vae\n")), "R/config.yaml: no data spec"),
    ("config-unknown-family-info", on_run("info", "RUN", change=unknown_family_config),
     "unknown family 'nosuch'"),
    # -- checkpoints of another family, or cut short (defects 5 and 6)
    ("resume-foreign-checkpoint", resume("--steps", "4", change=foreign_checkpoint),
     "a checkpoint of family autoencoder, not of vae"),
    ("sample-foreign-checkpoint", on_run("sample", "RUN", "-n", "2", change=foreign_checkpoint),
     "a checkpoint of family autoencoder, but R is a run of vae"),
    ("sample-truncated-checkpoint", on_run("sample", "RUN", "-n", "2",
                                           change=truncated_checkpoints),
     "step_00000002.safetensors: not a readable checkpoint"),
    ("resume-truncated-checkpoints", resume("--steps", "4", change=truncated_checkpoints),
     "no older checkpoint reads either"),
    # -- decompression bombs (defect 7)
    ("tar-gz-member-claims-2GiB", data_file(write("b.tar.gz", tar_gz_claiming(2 ** 31))),
     "b.tar.gz: imgs/big.png claims 2,147,483,648 bytes"),
    ("zip-directory-claims-2GiB", data_file(write("b.zip", zip_with(2 ** 31, bytes(1000)))),
     "b.zip: its members expand to more than"),
    ("zip-member-larger-than-claimed", data_file(write("b.zip", zip_with(
        100, bytes(100_000), patch_local=True))), "b.zip: corrupt or unreadable archive"),
    ("tar-gz-expands-100x", data_file(write("b.tar.gz", zeros_tar_gz(2 << 20))),
     "b.tar.gz: its members expand to more than"),
    ("png-too-many-pixels", data_file(huge_png), "huge.png: cannot read image (Image size"),
    # -- data files (defect 8 and kin)
    ("npz-empty", data_file(arrays()), "a.npz: no image array"),
    ("npz-no-items", data_file(arrays(x=np.zeros((0, 8, 8), np.uint8))),
     "a.npz [x]: no images in it"),
    ("npy-no-items", data_file(arrays("a.npy", x=np.zeros((0, 8, 8, 3), np.uint8))),
     "a.npy: no images in it"),
    ("npz-nan", data_file(arrays(x=np.full((4, 8, 8), np.nan, np.float32))),
     "a.npz [x]: the images contain NaN"),
    ("npz-out-of-range", data_file(arrays(x=np.full((4, 8, 8), 300.0, np.float32))),
     "a.npz [x]: values range over"),
    ("npz-label-count", data_file(arrays(x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, int))),
     "a.npz [y]: 3 labels for 4 images"),
    ("npz-negative-labels", data_file(arrays(x=np.zeros((4, 8, 8), np.uint8),
                                             y=-np.ones(4, int))),
     "a.npz [y]: labels must be non-negative"),
    ("npz-text-dtype", data_file(arrays(x=np.full((4, 8, 8), "a"))), "a.npz [x]: array of dtype"),
    ("npz-not-a-zip", data_file(write("c.npz", b"not a zip at all")),
     "c.npz: cannot read the arrays"),
    ("idx-truncated", data_file(write("t-images-idx3-ubyte", b"\0\0\x08\x03" + struct.pack(
        ">III", 10, 8, 8) + bytes(100))), "truncated idx file"),
    ("csv-word-in-first-rows", data_file(write("p.csv", "a,b\n1,2\n3,x\n" + "4,5\n" * 30)),
     "p.csv: line 3, column b: 'x' is not a number"),
    ("csv-word-in-first-row", data_file(write("p.csv", "1,x\n" + "4,5\n" * 30)),
     "p.csv: line 1, column 2: 'x' is not a number"),
    ("csv-ragged", data_file(write("p.csv", "a,b\n1,2\n3,4,5\n")), "p.csv: line 3 has 3 columns"),
    ("csv-infinite", data_file(write("p.csv", "a,b\n1,2\n3,inf\n")), "is not a finite number"),
    ("png-empty", data_file(folder({"a.png": b""})),
     "imgs/a.png: cannot read image (the file is empty)"),
    ("png-garbage", data_file(folder({"a.png": GOOD_PNG, "b.png": b"no png here"})),
     "imgs/b.png: cannot read image (not an image format"),
    ("png-truncated", data_file(folder({"a.png": GOOD_PNG, "b.png": png(
        np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))[:300]})),
     "imgs/b.png: cannot read image"),
    ("folder-empty", data_file(folder({})), "imgs: no images in it"),
    ("folder-mixed-sizes", lambda tmp, runs: ["data", "show", folder({
        "a.png": GOOD_PNG, "b.png": png(np.zeros((9, 9), np.uint8))})(tmp)],
     "imgs: images have different sizes"),
    ("archive-garbage", data_file(write("g.tar.gz", b"\x1f\x8b" + bytes(64))),
     "g.tar.gz: corrupt or unreadable archive"),
    ("data-missing", train(data=lambda tmp: "nowhere.npz"), "nowhere.npz: no such file or folder"),
    ("data-unknown-kind", data_file(write("d.xyz", "?")), "d.xyz: don't know how to read"),
    ("data-show-missing", lambda tmp, runs: ["data", "show", "nowhere.png"],
     "nowhere.png: no such file or folder"),
    ("compare-bad-budget", lambda tmp, runs: ["compare", "vae", "--data", "digits", "--budget",
                                              "soon", "--out", "C"], "--budget 'soon'"),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the cache, with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "cache" not in p.parts}


def test_the_table_covers_every_category():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("setup,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(setup, needle, runs, tmp_path, capsys,
                                                  monkeypatch):
    small_floor(monkeypatch)
    argv = setup(tmp_path, runs)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("genzoo: error: ") and needle in lines[0], lines[0]
    assert "BytesIO" not in lines[0]
    assert snapshot(tmp_path) == before            # no run folder left, none changed


# -------------------------------------------------------------------------- not errors at all

def test_a_held_out_set_of_one_image_still_gets_its_pictures(image_npz, tmp_path):
    """Defect 1: the showcase crashed on a held-out set of one item, after training."""
    assert main(["train", "vae", "--data", str(image_npz), "--out", "R", *TINY_AE, *QUICK,
                 "--set", "data.holdout=1"]) == 0
    shown = {p.name for p in (tmp_path / "R" / "showcase").iterdir()}
    assert {"reconstructions.png", "samples.png", "interpolation.png",
            "latent_arithmetic.png"} <= shown


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`genzoo info RUN | head -1`: the pipe closes before the output is written (a short
    output, so that the failed write is the flush at the end)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # buffered, as usual
    p = subprocess.Popen([sys.executable, "-m", "genzoo", "data", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141 and err == ""


def test_bombs_are_refused_before_their_bytes_are_read(tmp_path, monkeypatch):
    """The refusal comes from the claims: no member of the 2 GiB bomb is ever read."""
    from genzoo.errors import GenzooError
    reads = []
    real = archives.Expansion.read
    monkeypatch.setattr(archives.Expansion, "read",
                        lambda self, f, name: reads.append(name) or real(self, f, name))
    (tmp_path / "b.tar.gz").write_bytes(tar_gz_claiming(2 ** 31))
    with pytest.raises(GenzooError, match="decompression bomb"):
        list(archives.members(tmp_path / "b.tar.gz", want=lambda n: n.endswith(".png")))
    assert reads == ["imgs/a.png"]                 # the good image before it, not the bomb
