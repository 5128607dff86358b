"""Reading speed of the data paths, and the memory a stream keeps, on real image sets.

    OMP_NUM_THREADS=1 python -m benchmarks.streaming --datasets /work/shared/datasets
    python -m benchmarks.streaming --quick           (a few seconds: to see it runs)

For CIFAR-10 (50,000 JPEGs in a tar, read in place) and flowers (1,500 PNGs): items/s of
batches of 128 in random order through each path, in one process:
  memory        decoded once into one tensor (the fast path), a batch is an index
  stream, W     decoded as the loop asks, by W DataLoader worker processes (W = 0, 1, 2, ...)
  pack/memory   the ``genzoo data pack`` arrays loaded whole
  pack/stream   the same arrays memory-mapped, a batch a gather of rows
with the time to decode or pack the set once. Then a larger-than-memory set simulated by a
sparse memory-mapped pack of twice the free memory (nothing is written but its header; pages
read back as zeros, through the page cache like any file): the peak resident memory of this
process and its workers while streaming from it stays near the batches in flight.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import machine, markdown
from genzoo import data as D
from genzoo.data import streaming
from genzoo.data.packed import FORMAT, VERSION, pack

BATCH = 128


def _kib(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> list[int]:
    out = []
    for task in Path("/proc/self/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def rate(ds, batches: int, workers: int | None) -> tuple[float, float]:
    """(items/s, peak resident MiB of this process plus its workers) over ``batches``
    random batches, after one batch of warm-up."""
    g = torch.Generator().manual_seed(0)
    order = [torch.randint(len(ds), (BATCH,), generator=g) for _ in range(batches + 1)]
    peak = 0
    if getattr(ds, "streamed", False):
        it = replace(ds, workers=workers).loader(iter(order))
        next(it)
        t = time.perf_counter()
        for _ in it:
            peak = max(peak, _kib("self", "VmRSS") + sum(_kib(c, "VmRSS") for c in _children()))
    else:
        ds.batch(order[0])
        t = time.perf_counter()
        for idx in order[1:]:
            ds.batch(idx)
        peak = _kib("self", "VmRSS")
    return batches * BATCH / (time.perf_counter() - t), peak / 1024


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one_set(spec: str, name: str, batches: int, workers: list[int], scratch: Path) -> list[dict]:
    rows = []
    memory, secs = timed(lambda: D.load(spec, D.DataOptions(storage="memory")))
    r, mib = rate(memory, batches, None)
    rows.append({"set": name, "path": "memory", "items": len(memory), "once_s": secs,
                 "items_per_s": r, "rss_mib": mib})
    stream = D.load(spec, D.DataOptions(storage="stream"))
    for w in workers:
        r, mib = rate(stream, batches, w)
        rows.append({"set": name, "path": f"stream, {w} workers", "items": len(stream),
                     "items_per_s": r, "rss_mib": mib})
    out, secs = timed(lambda: pack(spec, scratch / name, D.DataOptions(storage="stream"),
                                   log=lambda *_: None, progress=False))
    for storage in ("memory", "stream"):
        ds = D.load(str(out), D.DataOptions(storage=storage))
        r, mib = rate(ds, batches, 1 if storage == "stream" else None)
        rows.append({"set": name, "path": f"pack/{storage}", "items": len(ds),
                     "once_s": secs if storage == "memory" else "", "items_per_s": r,
                     "rss_mib": mib})
    return rows


def larger_than_memory(scratch: Path, batches: int, factor: float) -> dict:
    """A sparse pack of ``factor`` x the free memory, streamed: peak RSS against its size."""
    free = streaming.available_memory()
    shape = (3, 64, 64)
    n = int(factor * free) // int(np.prod(shape))
    folder = scratch / "huge"
    folder.mkdir()
    np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.uint8, shape=(n, *shape)).flush()
    (folder / "pack.json").write_text(json.dumps({
        "format": FORMAT, "version": VERSION, "kind": "items", "modality": "image",
        "source": "sparse", "count": n, "arrays": {"x": {"dtype": "uint8", "shape": [n, *shape]}},
        "class_names": None, "meta": {}}))
    ds = D.load(str(folder))           # auto: far beyond the budget, so streamed
    r, mib = rate(ds, batches, 2)
    return {"set": f"sparse {n * np.prod(shape) / 2**30:.1f} GiB ({factor:g} x free memory)",
            "path": "pack/stream (auto), 2 workers", "items": n, "items_per_s": r,
            "rss_mib": mib, "streamed": bool(getattr(ds, "streamed", False))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="/work/shared/datasets")
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--workers", default="0,1,2,4")
    ap.add_argument("--factor", type=float, default=2.0, help="the simulated set / free memory")
    ap.add_argument("--scratch", help="folder for packs (default: a temporary one)")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    root = Path(a.datasets)
    sets = [(str(root / "cifar10/cifar10_jpg.tar") + ":train", "cifar10"),
            (str(root / "flowers/flowers64.tar"), "flowers")]
    workers = [int(w) for w in a.workers.split(",")]
    if a.quick:
        sets, a.batches, workers = sets[1:], 3, [0, 1]
    print(machine(), f"| load {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=a.scratch) as tmp:
        for spec, name in sets:
            rows += one_set(spec, name, a.batches, workers, Path(tmp))
            print(markdown(rows[-len(workers) - 3:]), flush=True)
        rows.append(larger_than_memory(Path(tmp), a.batches, a.factor))
    print(f"\nbatches of {BATCH} in random order; load after {os.getloadavg()[0]:.2f}\n")
    print(markdown(rows, ["set", "path", "items", "once_s", "items_per_s", "rss_mib", "streamed"]))
    if a.quick:
        print("(quick run: a check that it runs, not a measurement)")


if __name__ == "__main__":
    main()
