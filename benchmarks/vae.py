"""Benchmark entry: autoencoder and VAE training and sampling speed.

    python -m benchmarks.vae            (from the repository root, in the .venv)
"""
from __future__ import annotations

from benchmarks.harness import (build, machine, markdown, measure_sampling, modes_table,
                                synthetic_images)


def main() -> None:
    print(machine())
    data = synthetic_images(1024, 1, 32)
    modes = [{"precision": "fp32"}, {"precision": "bf16"}, {"precision": "fp32", "compile": True}]
    for family in ("autoencoder", "vae"):
        rows = modes_table(family, data, modes, batch_size=100, steps=20, repeats=5)
        print(f"\n{family}, training, batch 100, 32x32 grey (median of 5 x 20 steps):")
        print(markdown(rows, ["family", "precision", "compile", "params", "steps_per_s",
                              "items_per_s", "speedup", "peak_mem_mb", "warmup_s", "spread"]))
    rows = [measure_sampling(build("vae", data), n, repeats=5) for n in (16, 256)]
    print("\nvae, sampling:")
    print(markdown(rows))
    strong = modes_table("vae", synthetic_images(1024, 3, 64), [{"precision": "fp32"},
                         {"precision": "bf16"}], preset="celeba", batch_size=32, steps=5, repeats=3)
    print("\nvae preset celeba (deep BN variant, 64x64 RGB, z=200), batch 32:")
    print(markdown(strong, ["family", "preset", "precision", "params", "steps_per_s",
                            "items_per_s", "speedup", "peak_mem_mb"]))


if __name__ == "__main__":
    main()
