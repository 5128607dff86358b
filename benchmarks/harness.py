"""The benchmark harness every family's entry uses.

Numbers on shared, noisy machines: every figure is the median of several timed repeats after
warm-up, and comparisons (eager vs compiled, fp32 vs bf16) are ratios measured in one process,
one after the other, on the same data, so that machine drift cancels as far as it can.

    from benchmarks.harness import measure_training, measure_sampling, modes_table
    row = measure_training("vae", synthetic_images(512, 1, 32), steps=20)

Peak memory: on CUDA, torch's max allocated; on CPU the process's resident high-water mark
(VmHWM), reset before each measurement through /proc/self/clear_refs.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from genzoo import config as C
from genzoo import registry
from genzoo.data.dataset import TensorDataset
from genzoo.models.base import DataInfo, Family
from genzoo.training.trainer import TrainConfig, Trainer, resolve_device


def synthetic_images(n: int, channels: int, side: int, classes: int = 10, seed: int = 0) -> TensorDataset:
    """Random uint8 images with labels: shapes as real data, content irrelevant for speed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, channels, side, side), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n,), generator=g)
    return TensorDataset(x=x, modality="image", source="synthetic", y=y,
                         class_names=[str(i) for i in range(classes)])


# -- memory ---------------------------------------------------------------------------------
def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` (after the caller's warm-up)."""
    out = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def interleaved(variants: dict[str, Callable[[], object]], device, steps: int, repeats: int,
                warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each variant, one list per variant: ``repeats`` timings of
    ``steps`` calls each, taken in turns after ``warmup`` calls of each."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
        _sync(device)
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _sync(device)
            t = time.perf_counter()
            for _ in range(steps):
                variants[name]()
            _sync(device)
            times[name].append((time.perf_counter() - t) / steps)
    return times


def table(times: dict[str, list[float]], base: str, items: int, unit: str,
          flops: dict[str, float] | None = None, peak: dict[str, float] | None = None) -> list[dict]:
    """Rows: median time per call, spread, items/s, ratio to ``base`` (time / base time)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for name, t in med.items():
        row = {"variant": name, "ms": 1e3 * t, "spread": (max(times[name]) - min(times[name])) / t,
               unit: items / t, f"time / {base}": t / med[base]}
        if flops and name in flops and peak:
            dtype = "bf16" if "bf16" in name else "fp32"
            row["mfu"] = flops[name] / t / peak[dtype]
        rows.append(row)
    return rows


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call (matmuls, convolutions, attention: forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


# -- building -------------------------------------------------------------------------------
def build(family: str, data: TensorDataset, preset: str | None = None, **model) -> Family:
    entry = registry.get(family)
    chosen = entry.cls.presets.get(preset, {}) if preset else {}
    settings = {**{k: v for k, v in chosen.items() if "." not in k}, **model}   # model part
    cfg = C.from_dict(entry.config, settings, where=f"{family} config")
    return entry.cls(cfg, DataInfo.of(data))


# -- measurements ---------------------------------------------------------------------------
def measure_training(family: str, data: TensorDataset, *, steps: int = 20, warmup: int = 3,
                     repeats: int = 3, preset: str | None = None, model: dict | None = None,
                     **train) -> dict:
    """Median training steps/s and items/s of ``family`` on ``data``; ``train`` are
    TrainConfig settings (batch_size, precision, compile, device...)."""
    net = build(family, data, preset, **(model or {}))
    settings = {**net.train_defaults, "progress": False, "eval_every": 0, **train}
    cfg = C.from_dict(TrainConfig, settings, where="train config")
    trainer = Trainer(net, data, cfg)
    device = trainer.device
    t = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    _sync(device)
    warm_s = time.perf_counter() - t
    reset_peak_memory(device)
    times = timed(lambda: [trainer.train_step() for _ in range(steps)], device, repeats)
    med = statistics.median(times)
    per_step = sum(o.repeats for o in trainer.objectives)   # batches drawn per step
    return {"family": family, "preset": preset or "", **{k: train[k] for k in sorted(train)},
            "params": net.num_parameters(), "steps_per_s": steps / med,
            "items_per_s": steps * per_step * trainer.batches.batch_size / med,
            "warmup_s": warm_s, "peak_mem_mb": peak_memory_mb(device),
            "spread": (max(times) - min(times)) / med}


def measure_sampling(model: Family, n: int, *, repeats: int = 3, warmup: int = 1, **kwargs) -> dict:
    """Median samples/s of ``model.sample(n, **kwargs)``."""
    model.eval()
    device = model.device
    g = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        for _ in range(warmup):
            model.sample(n, generator=g, **kwargs)
        reset_peak_memory(device)
        times = timed(lambda: model.sample(n, generator=g, **kwargs), device, repeats)
    med = statistics.median(times)
    return {"n": n, **kwargs, "samples_per_s": n / med, "seconds_per_batch": med,
            "peak_mem_mb": peak_memory_mb(device)}


def peak_matmul_flops(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                      n: int = 2048, repeats: int = 5) -> float:
    """This machine's attainable matmul FLOP/s: median of timed n x n x n products."""
    device = resolve_device(str(device)) if isinstance(device, str) else device
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = timed(lambda: a @ b, device, repeats)
    return 2 * n ** 3 / statistics.median(times)


def modes_table(family: str, data: TensorDataset, modes: list[dict], base: int = 0,
                **common) -> list[dict]:
    """One row per mode (e.g. fp32, bf16, compiled), each with its ratio to ``modes[base]``."""
    rows = [measure_training(family, data, **{**common, **m}) for m in modes]
    for r in rows:
        r["speedup"] = r["steps_per_s"] / rows[base]["steps_per_s"]
    return rows


def markdown(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows as a Markdown table (floats to 3 significant digits)."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}")
