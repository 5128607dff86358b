"""Benchmark entry: DCGAN, WGAN-GP and the conditional GAN, training and sampling speed.

    python -m benchmarks.gan            (from the repository root, in the .venv)
    python -m benchmarks.gan --quick    (fewer modes: no torch.compile)

A training step is one generator update plus its discriminator updates (k = 1 for DCGAN,
n_critic = 3 for WGAN-GP and cgan), so items/s counts every batch drawn in a step.
"""
from __future__ import annotations

import argparse
import contextlib

import torch

from benchmarks.harness import (build, machine, markdown, measure_sampling, modes_table,
                                synthetic_images)

COLUMNS = ["family", "precision", "compile", "params", "steps_per_s", "items_per_s", "speedup",
           "peak_mem_mb", "warmup_s", "spread"]


def sampling_rows(family: str, data, model: dict, n: int = 256, compile: bool = True) -> list[dict]:
    """Samples/s in fp32, under bf16 autocast, and with a compiled generator."""
    rows = []
    net = build(family, data, **model)
    for precision in ("fp32", "bf16"):
        ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())
        with ctx:
            rows.append({"family": family, "precision": precision, "compile": False,
                         **measure_sampling(net, n, repeats=5)})
    if compile:
        net.G.compile()
        rows.append({"family": family, "precision": "fp32", "compile": True,
                     **measure_sampling(net, n, repeats=5, warmup=2)})
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="skip torch.compile")
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    print(machine())
    data = synthetic_images(1024, 3, 32)
    model = {"image_size": 32}                      # classic widths (64), 32x32 RGB
    modes = [{"precision": "fp32"}, {"precision": "bf16"}]
    if not args.quick:
        modes.append({"precision": "fp32", "compile": True})
    for family in ("dcgan", "wgan_gp", "cgan"):
        rows = modes_table(family, data, modes, batch_size=64, steps=args.steps, repeats=3,
                           model=model)
        print(f"\n{family}, training, batch 64, 32x32 RGB, widths 64 "
              f"(median of 3 x {args.steps} steps):")
        print(markdown(rows, COLUMNS))
    for family in ("dcgan", "cgan"):
        print(f"\n{family}, sampling 256 images 32x32 RGB:")
        print(markdown(sampling_rows(family, data, model, compile=not args.quick),
                       ["family", "precision", "compile", "n", "samples_per_s", "speedup",
                        "peak_mem_mb"]))
    grey = synthetic_images(512, 1, 64)
    rows = modes_table("dcgan", grey, [{"precision": "fp32"}, {"precision": "bf16"}],
                       batch_size=64, steps=max(2, args.steps // 2), repeats=3)
    print("\ndcgan, the book's recipe: 64x64 grey, widths 64, batch 64:")
    print(markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
