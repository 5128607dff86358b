"""Benchmark entry: PixelCNN and PixelCNN++ (pixelcnn_mix) training and sampling speed.

    python -m benchmarks.pixelcnn              (from the repository root, in the .venv)
    python -m benchmarks.pixelcnn --part sampling

Autoregressive sampling is the slow part: H * W (* C for pixelcnn) network passes for a
batch. The figures compare each family's sampler with the naive one that runs the whole
network on the whole image for every (sub-)pixel: pixelcnn's window of rows i - reach .. i
and columns j - reach .. j + reach, and pixelcnn_mix's once-per-row down stream with the
down-right stream on the top-left window only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.harness import build, machine, markdown, modes_table, synthetic_images
from genzoo.nn import logistic_mixture as dmol


@torch.no_grad()
def naive_mix_seconds(model, n: int, generator, rows: int = 2) -> float:
    """Seconds to sample pixelcnn_mix naively (a full network pass on the whole image for
    every pixel), timed over the first ``rows`` rows and scaled to the image: every pass of
    the naive sampler costs the same, so the extrapolation is fair (and spares minutes)."""
    x = torch.zeros(n, *model.data.shape)
    C, H, W = model.data.shape
    t = time.perf_counter()
    for i in range(rows):
        for j in range(W):
            p = model.params(x)[:, :, i:i + 1, j:j + 1]
            x[:, :, i:i + 1, j:j + 1] = dmol.sample(p, C, model.config.mixtures, generator)
    return (time.perf_counter() - t) * H / rows


def seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def training() -> None:
    modes = [{"precision": "fp32"}, {"precision": "bf16"}, {"precision": "fp32", "compile": True}]
    rows = modes_table("pixelcnn", synthetic_images(1024, 1, 16), modes, batch_size=128,
                       steps=5, repeats=3)
    print("\npixelcnn, training, batch 128, 16x16 grey, 4 levels (median of 3 x 5 steps):")
    print(markdown(rows, ["family", "precision", "compile", "params", "steps_per_s",
                          "items_per_s", "speedup", "peak_mem_mb", "warmup_s", "spread"]))
    for side, ch in ((28, 1), (32, 3)):
        rows = modes_table("pixelcnn_mix", synthetic_images(512, ch, side),
                           [{"precision": "fp32"}, {"precision": "bf16"}], batch_size=64,
                           steps=3, repeats=3, model={"image_size": side})
        print(f"\npixelcnn_mix, training, batch 64, {side}x{side}x{ch} (median of 3 x 3 steps):")
        print(markdown(rows, ["family", "precision", "params", "steps_per_s", "items_per_s",
                              "speedup", "peak_mem_mb", "warmup_s", "spread"]))


def sampling(n: int = 16) -> None:
    rows = []
    g = lambda: torch.Generator().manual_seed(0)   # noqa: E731
    for ch, levels in ((1, 4), (3, 4), (1, 256)):
        model = build("pixelcnn", synthetic_images(64, ch, 16), levels=levels).eval()
        window = seconds(lambda: model.sample(n, generator=g()), 3)
        reach, model.reach = model.reach, 10 ** 6          # a window as big as the image
        full = seconds(lambda: model.sample(n, generator=g()), 1)
        model.reach = reach
        rows.append({"family": "pixelcnn", "image": f"16x16x{ch}", "levels": levels, "n": n,
                     "passes": 16 * 16 * ch, "seconds": window, "naive_seconds": full,
                     "speedup": full / window})
    for side, ch in ((28, 1), (32, 3)):
        model = build("pixelcnn_mix", synthetic_images(64, ch, side), image_size=side).eval()
        cached = seconds(lambda: model.sample(n, generator=g()), 1)
        full = naive_mix_seconds(model, n, g())
        rows.append({"family": "pixelcnn_mix", "image": f"{side}x{side}x{ch}", "levels": 256,
                     "n": n, "passes": side * side, "seconds": cached, "naive_seconds": full,
                     "speedup": full / cached})
    print(f"\nsampling a batch of {n} (fp32; seconds for the batch; naive = whole network on "
          "the whole image per pass, for pixelcnn_mix timed over 2 rows and scaled):")
    print(markdown(rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["all", "training", "sampling"], default="all")
    args = parser.parse_args()
    print(machine())
    if args.part in ("all", "training"):
        training()
    if args.part in ("all", "sampling"):
        sampling()


if __name__ == "__main__":
    main()
