"""Evaluation and derived data on a streamed dataset (data/passes.py).

A tiny image folder forced to stream (data.storage=stream) is read a batch at a time, never
whole: `genzoo eval`'s reference features and novelty, a text run's n-gram statistics, and a
component's derive() give what the same data held in memory gives, and the caches they key
by content are shared between the two storages.
"""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo import data as D
from genzoo.data import passes
from genzoo.data.cache import cache_dir
from genzoo.data.image_stream import FileImages
from genzoo.data.packed import pack
from genzoo.data.streaming import ArraySource, StreamingDataset, TokenWindows
from genzoo.evaluation import features as Fe
from genzoo.evaluation import run_eval, text
from genzoo.training import launch
from genzoo.training.components import derive, derived_data, pin
from genzoo.training.run import RunDir, load_model

from conftest import CORPUS, blobs
from test_components import Coder, toys  # noqa: F401 (a fixture)

SMALL = 4           # the most items any read may ask for, with the batch sizes set below


@pytest.fixture
def folder(tmp_path):
    """40 16x16 grey blobs (conftest.blobs) as PNG files in 4 class folders."""
    x, y = blobs(40)
    for i, (image, c) in enumerate(zip(x, y)):
        path = tmp_path / "imgs" / f"c{c}" / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buf, format="PNG")
        path.write_bytes(buf.getvalue())
    return tmp_path / "imgs"


@pytest.fixture
def reads(monkeypatch):
    """The number of items of each read of a streamed source (workers=0: in this process),
    with every batch size of the passes set to SMALL."""
    seen = []
    for source in (FileImages, ArraySource, TokenWindows):
        fetch = source.fetch
        monkeypatch.setattr(source, "fetch", lambda self, p, f=fetch: seen.append(len(p)) or f(self, p))
    monkeypatch.setattr(passes, "CHUNK", SMALL)
    monkeypatch.setattr(run_eval, "HELD_OUT_BATCH", SMALL)
    monkeypatch.setattr(text, "ROWS", SMALL)

    def pixels_small(arg, shape):
        ex = Fe.pixels(arg, shape)
        ex.batch_size = SMALL
        return ex
    monkeypatch.setitem(Fe._FACTORIES, "pixels-small", pixels_small)
    return seen


def _load(spec, **options):
    return D.load(str(spec), D.DataOptions(**options))


def test_a_pass_reads_a_streamed_set_in_batches_as_memory_holds_it(folder, reads):
    memory, stream = _load(folder, storage="memory"), _load(folder, storage="stream", workers=0)
    assert isinstance(stream, StreamingDataset)
    got = list(passes.batches(stream, 3, limit=10))
    want = list(passes.batches(memory, 3, limit=10))
    assert [len(b["x"]) for b in got] == [3, 3, 3, 1]
    assert all(torch.equal(g[k], w[k]) for g, w in zip(got, want) for k in ("x", "y"))
    assert passes.fields_hash(stream) == passes.fields_hash(memory)       # one cache key
    assert set(passes.fields_hash(memory)) == {"x", "y"}
    assert torch.equal(passes.labels(stream.head(7)), memory.y[:7])
    assert reads and max(reads) <= SMALL


def _train(family, data, out, storage, preset="tiny"):
    spec = launch.resolve(family, data=str(data), preset=preset,
                          train={"steps": 2, "batch_size": 8, "progress": False,
                                 "checkpoint_every": 2, "eval_every": 0, "sample_every": 0},
                          data_options={"holdout": 8, "storage": storage, "workers": 0})
    return launch.train(spec, out, progress=False, log=lambda *_: None)


def _in_memory(run):
    """(train, held-out) of a run's data read as it read it, but held in memory."""
    description = RunDir.open(run.path).spec.to_dict()
    description["data"]["storage"] = "memory"
    train, held = run_eval.load_reference(description)
    assert not passes.streamed(held)
    return train, held


def test_eval_of_a_streamed_run_reads_a_batch_at_a_time_and_matches_memory(folder, reads, tmp_path):
    run = _train("vae", folder, tmp_path / "vae", "stream")
    reads.clear()
    streamed = run_eval.evaluate_run(run.path, n=12, features="pixels-small", write=False)
    assert reads and max(reads) <= SMALL                   # the reference never read whole
    assert streamed["reference"] == {"source": f"{folder}[held-out]", "items": 8}
    assert streamed["held_out"] and streamed["novelty"]
    assert not streamed["features"]["cached_reference"]
    shutil.rmtree(cache_dir() / "reference")               # memory computes its own features
    memory = run_eval.evaluate_run(run.path, n=12, features="pixels-small", write=False,
                                   reference=_in_memory(run))
    assert not memory["features"]["cached_reference"]
    for key in ("metrics", "novelty", "held_out"):
        assert memory[key] == streamed[key], key
    again = run_eval.evaluate_run(run.path, n=12, features="pixels-small", write=False)
    assert again["features"]["cached_reference"]           # keyed by content: memory's entry


def test_eval_of_a_text_run_on_a_streamed_pack_matches_memory(tmp_path, reads):
    (tmp_path / "corpus.txt").write_text(CORPUS)
    out = pack(str(tmp_path / "corpus.txt"), tmp_path / "corpus-pack",
               D.DataOptions(context=16), log=lambda *_: None, progress=False)
    run = _train("lstm", out, tmp_path / "lm", "stream")
    reads.clear()
    streamed = run_eval.evaluate_run(run.path, n=6, write=False)
    assert reads and max(reads) <= SMALL
    memory = run_eval.evaluate_run(run.path, n=6, write=False, reference=_in_memory(run))
    for key in ("metrics", "held_out"):         # NaN where samples are shorter than an n-gram
        np.testing.assert_equal(streamed[key], memory[key])
    assert 0 <= streamed["metrics"]["held_out_novelty_2"] <= 1


def test_derived_data_of_a_streamed_set_equals_memory_and_shares_its_cache(toys, folder, reads,  # noqa: F811
                                                                          tmp_path):
    a = _train("toy_coder", folder, tmp_path / "a", "stream", preset=None)
    comp, (model, _) = pin(str(a.path)), load_model(a.path)
    quiet = dict(progress=False, log=lambda *_: None)
    reads.clear()
    streamed = derive(_load(folder, storage="stream", workers=0), model, comp, batch_size=3, **quiet)
    assert reads and max(reads) <= SMALL and Coder.derive_calls == -(-40 // 3)
    memory = derive(_load(folder, storage="memory"), model, comp, **quiet)
    assert Coder.derive_calls == -(-40 // 3)               # the streamed pass's cache, read back
    assert torch.equal(memory.x, streamed.x) and torch.equal(memory.y, streamed.y)
    assert streamed.shape == (3,) and streamed.source == str(folder)
    assert streamed.meta["source_info"]["shape"] == [1, 16, 16]
    again = derived_data(str(a.path), **quiet)             # --data derived:RUN, streamed as it was
    assert torch.equal(again.x, memory.x) and Coder.derive_calls == -(-40 // 3)


def test_derived_fields_of_a_streamed_pack_are_carried_over(toys, tmp_path, reads):  # noqa: F811
    x = torch.randint(0, 255, (24, 1, 4, 4), dtype=torch.uint8)
    np.savez(tmp_path / "x.npz", x=x.permute(0, 2, 3, 1).numpy())
    a = _train("toy_coder", tmp_path / "x.npz", tmp_path / "a", "memory", preset=None)
    comp, (model, _) = pin(str(a.path)), load_model(a.path)
    with_caption = D.load(str(tmp_path / "x.npz"), D.DataOptions(storage="memory"))
    with_caption.items["c"] = torch.arange(24 * 3).view(24, 3)
    with_caption.meta["field_modality"] = {"c": "text"}
    packed = pack(str(tmp_path / "x.npz"), tmp_path / "p", log=lambda *_: None, progress=False)
    np.save(packed / "c.npy", with_caption.items["c"].numpy())      # a field beside the images
    desc = json.loads((packed / "pack.json").read_text())
    desc["arrays"]["c"] = {"dtype": "int64", "shape": [24, 3]}
    desc["meta"]["field_modality"] = {"c": "text"}
    (packed / "pack.json").write_text(json.dumps(desc))
    stream = D.load(str(packed), D.DataOptions(storage="stream", workers=0))
    assert isinstance(stream, StreamingDataset) and "c" in stream.fields
    quiet = dict(progress=False, log=lambda *_: None)
    got = derive(stream, model, comp, batch_size=5, **quiet)
    want = derive(with_caption, model, comp, **quiet)
    assert torch.equal(got.items["c"], want.items["c"]) and torch.equal(got.x, want.x)
    assert got.meta["field_modality"] == {"c": "text"}
