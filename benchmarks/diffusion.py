"""Benchmark entry: diffusion (``ddpm``) training speed, sampling speed per sampler and step
count, and quality against sampling steps from one trained model.

    python -m benchmarks.diffusion speed                 (from the repository root, in the .venv)
    python -m benchmarks.diffusion quality RUN_DIR --data SPEC [--n 200] [--out FILE.json]

``quality`` samples the same starting noise with DDPM-1000, DDIM-{10,20,50,100} and
DPM-Solver++(2M)-{10,20} from the run's EMA weights and measures each set against the data with
genzoo's evaluation (Fréchet distance and KID in the feature space ``--features`` names; on a
machine without InceptionV3 weights that is pixel space, and the table says so).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.harness import (build, machine, markdown, measure_sampling, modes_table,
                                synthetic_images)

SMALL = dict(widths=[32, 64], bottleneck=64, image_size=32)     # the CPU-sized U-Net
TABLE = [("ddim", 10), ("ddim", 20), ("ddim", 50), ("ddim", 100), ("dpm++2m", 10),
         ("dpm++2m", 20), ("ddpm", 1000)]


def speed() -> None:
    torch.set_num_threads(1)
    print(machine())
    data = synthetic_images(256, 3, 32, classes=10)
    modes = [{"precision": "fp32"}, {"precision": "bf16"},
             {"precision": "fp32", "model": {**SMALL, "channels_last": True}},
             {"precision": "fp32", "compile": True}]
    rows = modes_table("ddpm", data, modes, model=SMALL, batch_size=32, steps=3, repeats=3)
    for r, name in zip(rows, ["eager fp32", "eager bf16", "eager fp32 channels_last", "compiled fp32"]):
        r["mode"] = name
    print("\nddpm training, 32x32 RGB, U-Net 32/64 + 64, batch 32 (median of 3 x 3 steps):")
    print(markdown(rows, ["mode", "params", "steps_per_s",
                          "items_per_s", "speedup", "peak_mem_mb", "warmup_s", "spread"]))
    big = synthetic_images(64, 3, 64, classes=5)
    rows = modes_table("ddpm", big, [{"precision": "fp32"}, {"precision": "bf16"}],
                       batch_size=16, steps=2, repeats=3)
    print("\nddpm training, the recipe: 64x64 RGB, U-Net 32/64/96 + 128, batch 16:")
    print(markdown(rows, ["precision", "params", "steps_per_s", "items_per_s", "speedup",
                          "peak_mem_mb"]))
    model = build("ddpm", data, **SMALL)
    rows = []
    for sampler, steps in [("ddim", 10), ("ddim", 20), ("ddim", 50), ("dpm++2m", 10),
                           ("dpm++2m", 20), ("ddpm", 100)]:
        for w in (1.0, 3.0):
            r = measure_sampling(model, 16, repeats=3, sampler=sampler, steps=steps, guidance=w)
            # images through the U-Net per second (guidance runs each image twice)
            r["image_evals_per_s"] = r["samples_per_s"] * steps * (2 if w != 1 else 1)
            rows.append(r)
    print("\nddpm sampling, 16 images 32x32 RGB, small U-Net (guidance 3 costs two passes):")
    print(markdown(rows, ["sampler", "steps", "guidance", "samples_per_s", "seconds_per_batch",
                          "image_evals_per_s", "peak_mem_mb"]))


@torch.no_grad()
def quality(run_dir: str, data: str, n: int, features: str, out: str | None, seed: int = 0) -> None:
    from genzoo import data as D
    from genzoo.evaluation.features import get_extractor
    from genzoo.evaluation.frechet import frechet_distance_features, kid
    from genzoo.training.run import load_model
    torch.set_num_threads(1)
    model, desc = load_model(run_dir, "cpu")
    shape = tuple(model.data.shape)
    ref = D.load(data, D.DataOptions(image_size=shape[1], channels=shape[0]))
    x_ref = ref.batch(torch.arange(len(ref)))["x"]
    ex = get_extractor(features, shape)
    f_ref = ex(x_ref)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, *shape, generator=g)
    labels = torch.randint(model.num_classes, (n,), generator=g) if model.num_classes else None
    rows = []
    print(f"{run_dir} (step {desc['step']}), {n} samples vs {len(ref)} images of {data}; "
          f"features: {ex.name} {ex.note}")
    for sampler, steps in TABLE:
        t = time.perf_counter()
        x = model.sample(n, torch.Generator().manual_seed(seed + 1), sampler=sampler,
                         steps=steps, label=labels, noise=noise)
        secs = time.perf_counter() - t
        f = ex(x)
        k_mean, k_std = kid(f_ref, f, subsets=50, subset_size=min(n, 100))
        rows.append({"sampler": sampler, "steps": steps, "FD": frechet_distance_features(f_ref, f),
                     "KIDx1000": 1000 * k_mean, "KID_std_x1000": 1000 * k_std, "seconds": secs})
        print(markdown(rows[-1:]), flush=True)
    print(f"\n{ex.distance_name} in {ex.name}; {n} samples, same noise for every row")
    print(markdown(rows))
    if out:
        with open(out, "w") as fh:
            json.dump({"run": run_dir, "step": desc["step"], "features": ex.name, "n": n,
                       "rows": rows, "machine": machine()}, fh, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("speed")
    q = sub.add_parser("quality")
    q.add_argument("run_dir")
    q.add_argument("--data", required=True)
    q.add_argument("--n", type=int, default=200)
    q.add_argument("--features", default="auto")
    q.add_argument("--out")
    a = p.parse_args()
    if a.what == "speed":
        speed()
    else:
        quality(a.run_dir, a.data, a.n, a.features, a.out)


if __name__ == "__main__":
    main()
