"""Shared fixtures: tiny data made by the tests, a private cache folder, quiet progress bars."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

# Tiny models gain nothing from a second thread, and an OpenMP team that shares its cores with
# another busy process can run 50x slower (seen here): the tests, and the subprocesses they
# start, use one thread unless told otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from genzoo.data.dataset import TensorDataset  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _isolated(request, tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    if request.node.get_closest_marker("gpu") is None:
        # The suite states the CPU's behaviour (bit-exact resume, CPU generators and batches);
        # on a machine with a GPU, device=auto would pick it, in this process and in the
        # commands the tests start. tests/test_gpu.py (marked gpu) states CUDA's behaviour.
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def blobs(n: int = 96, side: int = 16, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Easy images: a bright square at one of 4 places; labels = the place."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = np.zeros((n, side, side, channels), np.uint8)
    h = side // 2
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, r * h:(r + 1) * h, q * h:(q + 1) * h] = 200 + rng.integers(0, 55)
    return x, y


PLACES = ["top left", "top right", "bottom left", "bottom right"]


def captioned_images(folder, n: int = 40, side: int = 8, seed: int = 0):
    """A folder of ``n`` colour blobs (see :func:`blobs`) with a captions.jsonl giving each two
    captions that name the blob's place; returns the folder."""
    from PIL import Image
    x, y = blobs(n=n, side=side, channels=3, seed=seed)
    root = folder / "captioned"
    root.mkdir()
    lines = []
    for i, (image, c) in enumerate(zip(x, y)):
        Image.fromarray(image).save(root / f"{i:03d}.png")
        lines.append(f'{{"file": "{i:03d}.png", "caption": ["a square at the {PLACES[c]}", '
                     f'"the {PLACES[c]} is bright"]}}')
    (root / "captions.jsonl").write_text("\n".join(lines))
    return root


def tiny_run(family: str, data: str, out, steps: int = 12, batch_size: int = 16):
    """A quiet run of ``family``'s tiny preset on ``data`` into ``out`` (a component that the
    family under test stands on); its last step is checkpointed."""
    from genzoo.training import launch
    spec = launch.resolve(family, data=str(data), preset="tiny",
                          train={"steps": steps, "batch_size": batch_size,
                                 "checkpoint_every": steps, "progress": False})
    return launch.train(spec, out, progress=False, log=lambda *a: None)


def captioned_stages(tmp_path_factory, *families: str) -> dict[str, str]:
    """A captioned folder (48 colour blobs) and a tiny run of each of ``families`` on it, made
    once for a test module: {"data": folder, family: run folder, ...}."""
    root = tmp_path_factory.mktemp("stages")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENZOO_CACHE", str(root / "cache"))
        folder = captioned_images(root, n=48)
        for family in families:
            tiny_run(family, folder, root / family)
    return {"data": str(folder), **{f: str(root / f) for f in families}}


@pytest.fixture
def image_npz(tmp_path):
    """A .npz file of 96 16x16 grey images with 4 classes."""
    x, y = blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def image_data():
    """The same blobs as an in-memory TensorDataset (N, 1, 16, 16) uint8."""
    x, y = blobs()
    return TensorDataset(x=torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), modality="image",
                         source="blobs", y=torch.from_numpy(y).long(),
                         class_names=["tl", "tr", "bl", "br"])


# Small settings for the classic conv autoencoder/VAE so that tests run in seconds.
TINY_AE = ["--set", "widths=[8,16]", "--set", "image_size=16", "--set", "latent_dim=2"]


# The layers whose output dtype shows whether autocast is on: under bf16 autocast their
# matmuls run in bfloat16 (norms, softmax and losses stay in float32).
_AUTOCAST_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose2d)


@contextlib.contextmanager
def layer_output_dtypes(model: torch.nn.Module):
    """Collect the output dtypes of ``model``'s linear and convolution layers while inside,
    so that a test can assert that a bf16 run really ran under autocast."""
    seen: set[torch.dtype] = set()

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            seen.add(output.dtype)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _AUTOCAST_LAYERS)]
    assert handles, f"{type(model).__name__} has no linear or convolution layer to watch"
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def chromium():
    """Headless Chromium under Selenium, with the browser console log kept; skips the test
    when selenium, chromium or chromedriver is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(prefix='genzoo-chrome-')}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


CORPUS = "the cat sat on the mat. the dog sat on the log. " * 20


@pytest.fixture(scope="session")
def explorer_runs(tmp_path_factory):
    """A folder of runs made in-process for the explorer's tests: a tiny VAE with a 2-d code on
    the builtin digits (a sample grid at every step, an eval.json with a NaN), a tiny character
    GPT one folder down, and a compare folder's report page."""
    from genzoo.training import launch
    from genzoo.viz.samples import save_samples
    root = tmp_path_factory.mktemp("runs")
    quiet = dict(progress=False, log=lambda *a: None, writer=save_samples)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENZOO_CACHE", str(root.parent / "cache"))
        vae = launch.resolve("vae", data="digits", train={"steps": 3, "batch_size": 16},
                             overrides=[s for s in TINY_AE if s != "--set"]
                             + ["train.sample_every=1", "train.log_every=1"])
        launch.train(vae, root / "vae", **quiet)
        corpus = root.parent / "corpus.txt"
        corpus.write_text(CORPUS)
        gpt = launch.resolve("gpt", data=str(corpus), train={"steps": 3},
                             overrides=["n_layer=1", "n_head=2", "n_embd=16", "context=16",
                                        "data.tokenizer=char", "train.sample_n=2"])
        launch.train(gpt, root / "text" / "gpt", **quiet)
    (root / "vae" / "eval.json").write_text('{"fd": 12.5, "kid": NaN, "features": "pixels"}')
    (root / "cmp").mkdir()
    (root / "cmp" / "report.html").write_text("<!doctype html><title>compare</title><p>table</p>")
    return root


def resumed_and_uninterrupted(tmp_path, trainer, steps: int = 8, cut: int = 3):
    """The last checkpoints of a run of ``steps`` and of one stopped at ``cut`` and resumed by a
    fresh Trainer, as (uninterrupted tensors, resumed tensors, resumed description), after
    asserting that every model and EMA tensor is exactly the same. ``trainer(folder, steps)``
    makes a Trainer writing to ``folder`` (each call with the same initial weights)."""
    from genzoo.training import checkpoint as ckpt
    from genzoo.training.run import RunDir
    for d in ("ref", "cut"):
        (tmp_path / d).mkdir()
    trainer(tmp_path / "ref", steps).fit()
    trainer(tmp_path / "cut", cut).fit()
    resumed = trainer(tmp_path / "cut", steps)
    assert resumed.step == cut
    resumed.fit()
    ref, _ = ckpt.load(RunDir(tmp_path / "ref").latest_checkpoint())
    got, desc = ckpt.load(RunDir(tmp_path / "cut").latest_checkpoint())
    assert desc["step"] == steps
    keys = [k for k in ref if k.startswith(("model.", "ema."))]
    for k in keys:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=lambda m: k + ": " + m)
    return ref, got, desc
