"""``genzoo data pack SPEC OUT``: a dataset decoded once into memory-mapped arrays.

Decoding (JPEG, PNG, tokenizing) is the slow part of reading data. A pack holds the result, so
that training reads it at the speed of memory: in memory when it fits (see streaming.py), else
memory-mapped, each batch a gather of rows that the operating system pages in.

    OUT/pack.json    {"format": "genzoo-pack", "version": 1, "kind": "items" | "tokens",
                      "modality", "source": SPEC, "count": N, "arrays": {name: {dtype, shape}},
                      "class_names", "meta"}
    OUT/x.npy        kind "items": the items as stored (uint8 images (N, C, H, W), ...)
    OUT/y.npy        int64 labels, when the data has them
    OUT/FIELD.npy    the other fields of an item
    OUT/tokens.npy   kind "tokens": a packed text corpus as one token stream (uint16 or int32);
                     the windows (data.context + 1 tokens, overlapping by one) are cut when it
                     is read, so one pack serves every context.

The arrays are .npy files (numpy's format: a header, then the raw array), so any tool reads
them. The folder is written under a temporary name and renamed when whole.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genzoo.data import DataOptions, reader
from genzoo.data import tokenizers as tk
from genzoo.data.dataset import TensorDataset
from genzoo.data.streaming import (ArraySource, Field, StreamingDataset, TokenWindows, streams,
                                   why)
from genzoo.errors import GenzooError

FORMAT, VERSION = "genzoo-pack", 1
CHUNK = 1024                    # items decoded and written at a time


def is_pack(path: Path) -> bool:
    return path.is_dir() and (path / "pack.json").is_file()


# -- reading ----------------------------------------------------------------------------------
@reader(is_pack)
def read_pack(path: Path, options: DataOptions):
    spec = str(path)
    try:
        desc = json.loads((path / "pack.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GenzooError(f"{path / 'pack.json'}: not readable ({e})") from None
    if desc.get("format") != FORMAT or desc.get("version") != VERSION:
        raise GenzooError(f"{path / 'pack.json'}: not a {FORMAT} version {VERSION} description")
    meta = dict(desc.get("meta") or {})
    meta["notes"] = [f"packed from {desc.get('source')}"]
    try:
        if desc["kind"] == "tokens":
            return _tokens(path, spec, options, meta)
        return _items(path, spec, options, desc, meta)
    except (OSError, ValueError, KeyError) as e:
        raise GenzooError(f"{spec}: a damaged pack ({e})") from None


def _tokens(path: Path, spec: str, options: DataOptions, meta: dict):
    T = options.context
    tokens = np.load(path / "tokens.npy", mmap_mode="r")
    if T < 1 or len(tokens) < T + 1:
        raise GenzooError(f"{spec}: {len(tokens) - 1} tokens do not fill one window of "
                          f"data.context + 1 = {T + 1}")
    windows = TokenWindows(tokens, T, tk.PAD)
    n_bytes = len(windows) * (T + 1) * 9          # int64 ids and a bool mask
    fields = {"x": Field((T + 1,), torch.int64, "text"), "mask": Field((T + 1,), torch.bool)}
    if streams(options.storage, n_bytes):
        meta["notes"].append(f"streaming {len(windows)} windows of {T + 1} tokens from the "
                             f"memory-mapped stream ({_reason(options, n_bytes)})")
        return StreamingDataset(windows, "text", spec, fields, meta=meta, workers=options.workers)
    whole = TokenWindows(np.asarray(tokens), T, tk.PAD).fetch(np.arange(len(windows)))
    meta["notes"].append(f"{len(tokens):,} tokens -> {len(windows)} packed windows of {T + 1}")
    return TensorDataset(x=whole["x"], modality="text", source=spec, meta=meta,
                         items={"mask": whole["mask"]})


def _items(path: Path, spec: str, options: DataOptions, desc: dict, meta: dict):
    from genzoo.data.images import adapt_images, image_dataset
    names = [k for k in desc["arrays"] if k != "y"]
    arrays = {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in names}
    y = np.load(path / "y.npy") if "y" in desc["arrays"] else None
    modality, classes = desc["modality"], desc.get("class_names")
    n_bytes = sum(a.nbytes for a in arrays.values())
    image = modality == "image"
    if not streams(options.storage, n_bytes):
        loaded = {k: np.array(a) for k, a in arrays.items()}
        if image and len(loaded) == 1:
            return image_dataset(loaded["x"], spec, options, y=y, class_names=classes, meta=meta)
        x = torch.from_numpy(loaded.pop("x"))
        return TensorDataset(x=x, modality=modality, source=spec, meta=meta, class_names=classes,
                             y=torch.from_numpy(y) if y is not None else None,
                             items={k: torch.from_numpy(v) for k, v in loaded.items()})
    transform = None
    if image:
        def transform(x):
            return adapt_images(x, options.image_size, options.resize, options.channels)[0]
        probe, note = adapt_images(np.zeros((1, *arrays["x"].shape[1:]), np.uint8),
                                   options.image_size, options.resize, options.channels)
        if note:
            meta["notes"].append(note + " (as each batch is read)")
    shape = tuple(probe.shape[1:]) if image else arrays["x"].shape[1:]
    kinds = meta.get("field_modality", {})
    fields = {k: Field(tuple(a.shape[1:]), torch.from_numpy(np.empty(0, a.dtype)).dtype, kinds.get(k, "tensor"))
              for k, a in arrays.items()}
    fields["x"] = Field(tuple(shape), fields["x"].dtype, modality)
    meta["notes"].append(f"streaming {len(arrays['x'])} items from the memory-mapped arrays "
                         f"({_reason(options, n_bytes)})")
    return StreamingDataset(ArraySource(arrays, transform), modality, spec, fields,
                            y=torch.from_numpy(y) if y is not None else None,
                            class_names=classes, meta=meta, workers=options.workers)


def _reason(options: DataOptions, n_bytes: int) -> str:
    return "data.storage=stream" if options.storage == "stream" else why(n_bytes)


# -- writing ----------------------------------------------------------------------------------
def pack(spec: str, out: str | Path, options: DataOptions | None = None, log=print,
         progress: bool = True) -> Path:
    """Read ``spec`` as training would (``options``: image size, channels, tokenizer...) and
    write it as a pack in the new folder ``out``."""
    from genzoo import data as D
    options = options or DataOptions()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenzooError(f"{out}: exists already (choose a new folder for the pack)")
    ds = D.load(spec, options)
    for note in ds.meta.get("notes", []):
        log(f"data: {note}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if ds.modality == "text" and ds.meta.get("packed") and not getattr(ds, "streamed", False):
            desc = _write_tokens(ds, tmp)
        else:
            desc = _write_items(ds, tmp, progress)
        desc = {"format": FORMAT, "version": VERSION, **desc, "modality": ds.modality,
                "source": spec, "class_names": ds.class_names,
                "meta": {k: v for k, v in ds.meta.items() if k != "notes"}}
        (tmp / "pack.json").write_text(json.dumps(desc, indent=1))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_tokens(ds: TensorDataset, folder: Path) -> dict:
    """The token stream of a packed corpus, read back from its windows (window i holds tokens
    i T .. i T + T, so their first T tokens and the last window's tail are the stream)."""
    x, mask = ds.x, ds.items["mask"]
    T = x.shape[1] - 1
    stream = torch.cat([x[:, :T][mask[:, :T]], x[-1, T:][mask[-1, T:]]]).numpy()
    dtype = np.uint16 if ds.meta["vocab_size"] <= np.iinfo(np.uint16).max + 1 else np.int32
    np.save(folder / "tokens.npy", stream.astype(dtype))
    return {"kind": "tokens", "count": int(len(stream)),
            "arrays": {"tokens": {"dtype": np.dtype(dtype).name, "shape": [len(stream)]}}}


def _write_items(ds, folder: Path, progress: bool = True) -> dict:
    """Every field of every item, as stored, in chunks (a streamed set never whole in memory)."""
    n = len(ds)
    first = _stored(ds, torch.arange(1))
    files = {k: np.lib.format.open_memmap(folder / f"{k}.npy", mode="w+", shape=(n, *v.shape[1:]),
                                          dtype=v.numpy().dtype) for k, v in first.items()}
    chunks = (torch.arange(s, min(n, s + CHUNK)) for s in range(0, n, CHUNK))
    if getattr(ds, "streamed", False):
        ahead = ds.read_ahead(chunks)
    else:
        ahead = ((idx, _stored(ds, idx)) for idx in chunks)
    for idx, fields in tqdm(ahead, total=-(-n // CHUNK), unit="chunk", disable=not progress,
                            desc=f"packing {n} items"):
        for k, v in fields.items():
            files[k][int(idx[0]):int(idx[-1]) + 1] = v.numpy()
    arrays = {k: {"dtype": f.dtype.name, "shape": list(f.shape)} for k, f in files.items()}
    for f in files.values():
        f.flush()
    del files
    if ds.y is not None:
        y = ds.y[torch.as_tensor(ds.index)] if getattr(ds, "streamed", False) else ds.y
        np.save(folder / "y.npy", y.numpy().astype(np.int64))
        arrays["y"] = {"dtype": "int64", "shape": [n]}
    return {"kind": "items", "count": n, "arrays": arrays}


def _stored(ds, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Items ``idx`` as stored (uint8 images), not as a batch (float)."""
    if getattr(ds, "streamed", False):
        return ds.source.fetch(ds.index[idx.numpy()])
    return {"x": ds.x[idx], **{k: v[idx] for k, v in ds.items.items()}}
