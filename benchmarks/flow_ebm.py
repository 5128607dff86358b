"""Benchmark entry: RealNVP (2-d points and multiscale images) and the energy-based model,
training steps/s and the time to sample a batch of 16.

    python -m benchmarks.flow_ebm              (from the repository root, in the .venv)
    python -m benchmarks.flow_ebm --compile    (adds torch.compile rows: minutes of compiling)

An EBM training step holds ``steps`` (60) Langevin steps, each a forward and a backward pass
of the energy net on the batch, so it costs about 60 times a classifier step; its sampling
from noise runs ``sample_steps`` (1000) of them. RealNVP samples in one inverse pass.
"""
from __future__ import annotations

import argparse

import torch
from sklearn.datasets import make_moons

from benchmarks.harness import (build, machine, markdown, measure_sampling, modes_table,
                                synthetic_images)
from genzoo.data.dataset import TensorDataset

COLUMNS = ["family", "preset", "precision", "compile", "batch_size", "params", "steps_per_s",
           "items_per_s", "speedup", "peak_mem_mb", "warmup_s", "spread"]


def moons(n: int = 4096) -> TensorDataset:
    x, _ = make_moons(n, noise=0.05, random_state=0)
    return TensorDataset(x=torch.tensor(x, dtype=torch.float32), modality="points", source="moons")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    args = p.parse_args()
    print(machine())
    modes = [{"precision": "fp32"}, {"precision": "bf16"}]
    if args.compile:
        modes.append({"precision": "fp32", "compile": True})

    points = moons()
    rows = modes_table("realnvp", points, modes, batch_size=64, steps=20, repeats=3)
    print("\nrealnvp, 2-d points (6 couplings, MLPs 4 x 256), training, batch 64 (median of 3 x 20 steps):")
    print(markdown(rows, COLUMNS))

    images = synthetic_images(512, 1, 28)
    rows = []
    for preset in ("small", None):
        rows += modes_table("realnvp", images, modes, preset=preset, batch_size=64, steps=3,
                            repeats=3)
    print("\nrealnvp, 28x28 grey, 2 scales, training, batch 64 (median of 3 x 3 steps):")
    print(markdown(rows, COLUMNS))

    digits = synthetic_images(512, 1, 32)
    rows = modes_table("ebm", digits, modes, batch_size=128, steps=2, repeats=3)
    print("\nebm, 32x32 grey, 60 Langevin steps per batch, training, batch 128 (median of 3 x 2 steps):")
    print(markdown(rows, COLUMNS))

    rows = []
    for name, data, preset, kw in [("realnvp points", points, None, {}),
                                   ("realnvp 28x28 small", images, "small", {}),
                                   ("realnvp 28x28", images, None, {}),
                                   ("ebm 32x32, 1000 Langevin steps", digits, None, {}),
                                   ("ebm 32x32, 60 Langevin steps", digits, None, {"steps": 60})]:
        family = "ebm" if name.startswith("ebm") else "realnvp"
        model = build(family, data, preset)
        rows.append({"model": name, **measure_sampling(model, 16, repeats=3, **kw)})
    print("\nsampling a batch of 16 (fp32, median of 3):")
    print(markdown(rows, ["model", "n", "steps", "seconds_per_batch", "samples_per_s",
                          "peak_mem_mb"]))


if __name__ == "__main__":
    main()
