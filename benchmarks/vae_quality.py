"""Quality run: the classic VAE recipe against the `strong` preset, same data, same budget.

    python -m benchmarks.vae_quality \
        --data ../shared/datasets/fashion-mnist/fashion_mnist_train_first3615.npz \
        --holdout 615 --steps 3000 --out /tmp/vae-quality

Trains each variant with `genzoo train` (28x28 images padded to 32x32 by the recipe's rule,
the last 615 images held out), then reports on the held-out images the ELBO and the
importance-weighted bound (K = 64) in bits per dimension, and the time it took.
"""
from __future__ import annotations

import argparse
import time

import torch

from benchmarks.harness import machine, markdown
from genzoo.cli import main as genzoo
from genzoo.nn.likelihood import bits_per_dim, dequantize
from genzoo.training.launch import load_data
from genzoo.training.run import RunDir, load_model


@torch.no_grad()
def held_out_bounds(run_dir: str, k: int = 64) -> dict:
    model, _ = load_model(run_dir)
    _, held = load_data(RunDir.open(run_dir).description, log=lambda *_: None)
    g = torch.Generator().manual_seed(0)
    elbo, iw = [], []
    for i in range(0, len(held), 128):
        x = held.batch(torch.arange(i, min(len(held), i + 128)))["x"]
        x = dequantize(x, g)
        elbo.append(torch.stack([model.elbo(x, g) for _ in range(4)]).mean(0))
        iw.append(model.iw_bound(x, k=k, generator=g))
    dims = held.shape[0] * held.shape[1] * held.shape[2]
    return {"elbo_bpd": bits_per_dim(torch.cat(elbo), dims).mean().item(),
            f"iw{k}_bpd": bits_per_dim(torch.cat(iw), dims).mean().item(), "held_out": len(held)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--holdout", type=int, default=615)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out", default="/tmp/vae-quality")
    p.add_argument("--presets", default="classic,strong")
    a = p.parse_args()
    print(machine())
    rows = []
    for preset in a.presets.split(","):
        out = f"{a.out}/{preset}"
        args = ["train", "vae", "--data", a.data, "--steps", str(a.steps), "--out", out,
                "--set", f"data.holdout={a.holdout}", "--no-progress"]
        if preset != "classic":
            args += ["--preset", preset]
        t = time.perf_counter()
        assert genzoo(args) == 0
        minutes = (time.perf_counter() - t) / 60
        rows.append({"variant": preset, "steps": a.steps, "train_min": minutes,
                     **held_out_bounds(out), "run": out})
    print(markdown(rows))


if __name__ == "__main__":
    main()
