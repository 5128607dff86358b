"""What the vector-quantised families show once trained.

VQ-VAE: held-out images above their reconstructions (through the code map), how often each
codebook vector is used on the held-out images (sorted, with the perplexity: a collapsed
codebook shows a few tall bars), and images decoded from codes drawn independently (what a
model without a prior makes). Prior: samples decoded through the first stage at a few
temperatures, decoded held-out code maps beside them, and the bits each code position costs.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from genzoo.nn.quantize import perplexity
from genzoo.viz.grid import save_grid
from genzoo.viz.plots import plt, save_figure

TEMPERATURES = (1.0, 0.8)


def _begin(model, data, out: Path, n: int) -> tuple[Path, dict]:
    """The showcase's folder, made, and the first ``n`` items of ``data`` on the model's
    device; the model in eval mode."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    b = data.batch(torch.arange(min(n, len(data)), device=data.x.device))
    return out, {k: v.to(model.device) for k, v in b.items()}


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None,
             per_row: int = 8) -> list[Path]:
    out, b = _begin(model, data, out, 1000)
    x = b["x"]
    codes = torch.cat([model.encode_codes(x[i:i + 250]) for i in range(0, len(x), 250)])
    files = []
    k = min(2 * per_row, len(x))    # rows: originals, their reconstructions, twice
    rec = model.decode_codes(codes[:k])
    pairs = [t for i in range(0, k, per_row) for t in (x[i:i + per_row], rec[i:i + per_row])]
    files.append(save_grid(torch.cat(pairs), out / "reconstructions.png", nrow=per_row))
    counts = torch.bincount(codes.flatten(), minlength=model.config.codebook_size)
    files.append(usage_histogram(counts, out / "codebook_usage.png"))
    samples = model.sample(per_row * per_row, generator=generator)
    files.append(save_grid(samples, out / "samples_independent_codes.png", nrow=per_row))
    return files


def usage_histogram(counts: torch.Tensor, path: Path) -> Path:
    """Bars of each code's share of the positions, most used first."""
    counts = counts.float().cpu()
    K = len(counts)
    share = (counts / counts.sum().clamp_min(1)).sort(descending=True).values.numpy()
    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    ax.bar(np.arange(K), share, width=1.0)
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("share of code positions")
    ax.set_title(f"codebook usage: {int((counts > 0).sum())} of {K} codes used, "
                 f"perplexity {float(perplexity(counts)):.0f}")
    return save_figure(fig, path)


@torch.no_grad()
def prior_showcase(model, data, out: Path, generator: torch.Generator | None = None,
                   per_row: int = 8) -> list[Path]:
    out, b = _begin(model, data, out, 500)
    files = [_bits_map(model, b, out / "bits_per_position.png")]
    first = model.first_stage
    if first is None:                    # code maps alone cannot be drawn as images
        return files
    rows = [model.sample(per_row, generator=generator, temperature=t) for t in TEMPERATURES]
    files.append(save_grid(torch.cat(rows), out / "samples_by_temperature.png", nrow=per_row))
    held = first.decode_codes(b["x"][:per_row].view(-1, *model.code_shape))
    files.append(save_grid(torch.cat([held, rows[0]]), out / "held_out_vs_samples.png",
                           nrow=per_row))
    return files


def _bits_map(model, batch: dict, path: Path) -> Path:
    """Mean -log2 p(k_t | k_<t) of the held-out maps at every position of the code map."""
    k = batch["x"].long().flatten(1)
    nats = torch.nn.functional.cross_entropy(model.logits(k, batch.get("y")).transpose(1, 2), k,
                                             reduction="none")
    bits = (nats.mean(0) / math.log(2)).view(model.code_shape).float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=100)
    im = ax.imshow(bits, cmap="magma")
    fig.colorbar(im, ax=ax, label="bits")
    ax.set_title(f"bits per code position (mean {bits.mean():.2f}; "
                 f"uniform {math.log2(model.K):.1f})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, path)
