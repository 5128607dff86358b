"""Data larger than memory (data/streaming.py, image_stream.py, packed.py, members.py).

A streamed dataset reads the same items in the same order as the in-memory one, so training
on it gives the same weights and resumes exactly; a pack round-trips images, labels and text;
the storage is chosen by size; errors in worker processes are one line naming the file.
"""
from __future__ import annotations

import io
from dataclasses import replace
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import data as D
from genzoo.data import streaming
from genzoo.data.dataset import TensorDataset
from genzoo.data.packed import pack
from genzoo.data.streaming import StreamingDataset
from genzoo.errors import GenzooError
from genzoo.training import Trainer
from genzoo.training.launch import prepare, resolve
from genzoo.training.run import RunDir

from test_contract import CORPUS


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def images(tmp_path):
    """36 8x8 images in 3 class folders: colour ones, and a few grey (made RGB)."""
    rng = np.random.default_rng(0)
    files = {}
    for c in ("cat", "dog", "owl"):
        for i in range(12):
            a = rng.integers(0, 256, (8, 8, 3) if i % 5 else (8, 8), dtype=np.uint8)
            files[f"{c}/{i:02d}.png"] = _png(a)
    folder = tmp_path / "imgs"
    for name, blob in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(blob)
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for name, blob in files.items():
            zf.writestr(f"imgs/{name}", blob)
    with tarfile.open(tmp_path / "imgs.tar", "w") as tf:
        for name, blob in files.items():
            info = tarfile.TarInfo(f"imgs/{name}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    with tarfile.open(tmp_path / "imgs.tar.gz", "w:gz") as tf:
        tf.add(folder, "imgs")
    return tmp_path


def _load(spec, **options):
    return D.load(str(spec), D.DataOptions(**options))


@pytest.mark.parametrize("kind", ["imgs", "imgs.zip", "imgs.tar"])
def test_a_streamed_folder_or_archive_reads_what_memory_holds(images, kind):
    memory = _load(images / kind, storage="memory")
    stream = _load(images / kind, storage="stream", workers=0)
    assert isinstance(memory, TensorDataset) and isinstance(stream, StreamingDataset)
    assert len(stream) == len(memory) == 36 and stream.shape == memory.shape == (3, 8, 8)
    assert stream.class_names == memory.class_names == ["cat", "dog", "owl"]
    idx = torch.tensor([5, 0, 35, 17])
    want, got = memory.batch(idx), stream.batch(idx)
    assert torch.equal(want["x"], got["x"]) and torch.equal(want["y"], got["y"])
    # the loop's way: decoded ahead by a worker process, in the order asked
    order = [torch.tensor([3, 1]), torch.tensor([30, 2])]
    for (i, b), want_i in zip(replace(stream, workers=1).loader(iter(order)), order):
        assert torch.equal(i, want_i) and torch.equal(b["x"], memory.batch(want_i)["x"])


def _spec(data, steps, **data_options):
    loop = dict(batch_size=8, log_every=1, eval_every=0, sample_every=0, checkpoint_every=0,
                progress=False, device="cpu", steps=steps)
    return resolve("vae", data=str(data), preset="tiny", train=loop,
                   data_options={"holdout": 4, **data_options})


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_a_streamed_dataset_trains_as_in_memory_and_resumes_exactly(images, tmp_path):
    steps, cut = 6, 3          # 32 training items in batches of 8: the cut crosses an epoch
    memory = _spec(images / "imgs", steps, storage="memory")
    model, train, held = prepare(memory, progress=False, log=lambda *_: None)
    whole = Trainer(model, train, memory.train, held_out=held)
    whole.fit()
    stream = _spec(images / "imgs", steps, storage="stream", workers=1)
    model, train, held = prepare(stream, progress=False, log=lambda *_: None)
    assert getattr(train, "streamed", False) and getattr(held, "streamed", False)
    streamed = Trainer(model, train, stream.train, held_out=held)
    streamed.fit()
    want = _weights(whole)
    assert all(torch.equal(want[k], v) for k, v in _weights(streamed).items())
    assert np.isfinite(list(streamed.evaluate().values())).all()
    run = RunDir.create(tmp_path / "run", stream.to_dict())
    model, train, held = prepare(stream, progress=False, log=lambda *_: None)
    first = Trainer(model, train, stream.train, run=run, held_out=held)
    for _ in range(cut):
        first.train_step()
    first.save()
    model, train, held = prepare(stream, progress=False, log=lambda *_: None)
    resumed = Trainer(model, train, stream.train, run=run, held_out=held)
    assert resumed.step == cut
    resumed.fit()
    assert all(torch.equal(want[k], v) for k, v in _weights(resumed).items())


def test_storage_is_chosen_by_size(images, monkeypatch):
    decoded = 36 * 3 * 8 * 8
    monkeypatch.setattr(streaming, "available_memory", lambda: 4 * decoded + 4)
    assert isinstance(_load(images / "imgs"), TensorDataset)
    monkeypatch.setattr(streaming, "available_memory", lambda: 4 * decoded - 4)
    ds = _load(images / "imgs")
    assert isinstance(ds, StreamingDataset)
    assert any("more than 1/4 of the free memory" in n for n in ds.meta["notes"])
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")     # two processes on the machine: half each
    monkeypatch.setattr(streaming, "available_memory", lambda: 4 * decoded + 4)
    assert isinstance(_load(images / "imgs"), StreamingDataset)
    assert isinstance(_load(images / "imgs", storage="memory"), TensorDataset)
    with pytest.raises(GenzooError, match="data.storage='disk'"):
        _load(images / "imgs", storage="disk")


def test_a_compressed_archive_cannot_stream(images):
    with pytest.raises(GenzooError, match="cannot be streamed: unpack it"):
        _load(images / "imgs.tar.gz", storage="stream")
    assert len(_load(images / "imgs.tar.gz")) == 36


def test_a_bad_image_met_by_a_worker_is_one_line_naming_it(images):
    ds = _load(images / "imgs", storage="stream", workers=1)
    (images / "imgs/owl/11.png").write_bytes(b"not a png")     # beyond the probe, say
    bad = next(i for i in range(len(ds)) if ds.source.entries[ds.index[i]] == "owl/11.png")
    with pytest.raises(GenzooError) as e:
        for _ in ds.loader(iter([torch.tensor([0]), torch.tensor([bad])])):
            pass
    assert "owl/11.png: cannot read image" in str(e.value) and "\n" not in str(e.value)


def test_pack_round_trip_images(images, tmp_path):
    original = _load(images / "imgs.tar", storage="memory")
    out = pack(str(images / "imgs.tar"), tmp_path / "packed", D.DataOptions(storage="stream", workers=0),
               log=lambda *_: None, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["pack.json", "x.npy", "y.npy"]
    x = np.load(out / "x.npy", mmap_mode="r")
    assert x.dtype == np.uint8 and np.array_equal(x, original.x.numpy())
    assert np.array_equal(np.load(out / "y.npy"), original.y.numpy())
    memory, stream = _load(out), _load(out, storage="stream", workers=0)
    assert isinstance(memory, TensorDataset) and isinstance(stream, StreamingDataset)
    assert memory.class_names == stream.class_names == original.class_names
    idx = torch.tensor([7, 3, 30])
    for ds in (memory, stream):
        assert torch.equal(ds.batch(idx)["x"], original.batch(idx)["x"])
        assert torch.equal(ds.batch(idx)["y"], original.batch(idx)["y"])
    # read at another size: adapted as the in-memory reader adapts, per batch when streamed
    small = _load(images / "imgs.tar", storage="memory", image_size=4, channels=1)
    for storage in ("memory", "stream"):
        ds = _load(out, storage=storage, image_size=4, channels=1, workers=0)
        assert ds.shape == (1, 4, 4) and torch.equal(ds.batch(idx)["x"], small.batch(idx)["x"])
    with pytest.raises(GenzooError, match="exists already"):
        pack(str(images / "imgs"), out, log=lambda *_: None, progress=False)


def test_pack_round_trip_text(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    out = pack(str(tmp_path / "corpus.txt"), tmp_path / "corpus-pack", D.DataOptions(context=16),
               log=lambda *_: None, progress=False)
    assert np.load(out / "tokens.npy").dtype == np.uint16
    for context in (16, 7):
        original = _load(tmp_path / "corpus.txt", context=context)
        for storage in ("memory", "stream"):
            ds = _load(out, context=context, storage=storage)
            assert len(ds) == len(original) and ds.meta["tokenizer"] == original.meta["tokenizer"]
            got = ds.batch(torch.arange(len(ds)))
            assert torch.equal(got["x"], original.x) and torch.equal(got["mask"], original.items["mask"])


def _read_in_a_spawned_process(rank, packed, want):
    # a spawned process's default start method is spawn, as forkserver is Python 3.14's default
    stream = _load(packed, storage="stream", workers=1, image_size=4)
    (_, batch), = stream.loader(iter([torch.tensor([5, 0, 9])]))
    assert torch.equal(batch["x"], want)


def test_streamed_workers_start_where_the_default_start_method_is_not_fork(images, tmp_path):
    """The packed set's readers are not picklable (memory maps, a closure): the loader forks
    its workers wherever the platform can, whatever the default start method."""
    out = pack(str(images / "imgs.tar"), tmp_path / "packed", log=lambda *_: None, progress=False)
    want = _load(out, storage="memory", image_size=4).batch(torch.tensor([5, 0, 9]))["x"]
    torch.multiprocessing.start_processes(_read_in_a_spawned_process, args=(str(out), want),
                                          nprocs=1, start_method="spawn")
