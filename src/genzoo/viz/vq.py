"""What the vector-quantised families show once trained.

VQ-VAE: held-out images above their reconstructions (through the code map), how often each
codebook vector is used on the held-out images (sorted, with the perplexity: a collapsed
codebook shows a few tall bars), and images decoded from codes drawn independently (what a
model without a prior makes). VQ-GAN: the same; reconstructions through only the m most used
codes for a few m (how much of the codebook the images need: one trained codebook restricted,
not codebooks trained at those sizes); and its curves: the reconstruction error before and
after the discriminator is switched on, the adaptive weight, D's scores. Prior:
samples decoded through the first stage at a few temperatures, decoded held-out code maps
beside them, the bits each code position costs, and the samples beside their nearest decoded
training code maps (the memorisation check of the GAN chapter).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from genzoo.nn.quantize import perplexity
from genzoo.viz.gan import curves, nearest_training
from genzoo.viz.grid import grid, readable_scale, save_grid, to_uint8
from genzoo.viz.plots import plt, save_figure, titled_image

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
                   per_row: int = 8, train=None, n_samples: int = 128) -> list[Path]:
    out, b = _begin(model, data, out, 500)
    files = [_bits_map(model, b, out / "bits_per_position.png")]
    first = model.first_stage
    if first is None:                    # code maps alone cannot be drawn as images
        return files
    label = 0 if model.config.class_conditional else None
    rows = [model.sample(per_row, generator=generator, temperature=t, label=label)
            for t in TEMPERATURES]
    files.append(save_grid(torch.cat(rows), out / "samples_by_temperature.png", nrow=per_row))
    held = _decoded(model, b["x"])
    files.append(save_grid(torch.cat([held[:per_row], rows[0]]), out / "held_out_vs_samples.png",
                           nrow=per_row))
    if train is not None:                # the nearest decoded training map of each sample
        _, t = _begin(model, train, out, 5000)
        x_g = model.sample(n_samples, generator=generator, label=label)
        files += nearest_training(x_g, _decoded(model, t["x"]), held if train is not data
                                  else None, out, label="training\n(decoded)")
    return files


def _decoded(model, codes: torch.Tensor) -> torch.Tensor:
    """Code maps (N, T) or (N, h, w) -> images through the first stage, in chunks."""
    codes = codes.view(-1, *model.code_shape)
    return torch.cat([model.first_stage.decode_codes(codes[i:i + 250])
                      for i in range(0, len(codes), 250)])


VQGAN_PANELS = [("reconstruction (normalised MSE)", ["autoencoder/recon_nmse", "val/recon_nmse"]),
                ("adversarial part", ["autoencoder/g_loss", "autoencoder/adaptive_weight"]),
                ("the discriminator", ["discriminator/d_real", "discriminator/d_fake"]),
                ("codebook", ["autoencoder/perplexity", "val/perplexity"])]


@torch.no_grad()
def vqgan_showcase(model, data, out: Path, generator: torch.Generator | None = None,
                   per_row: int = 8) -> list[Path]:
    """The VQ-VAE's pictures, reconstructions through smaller codebooks, and the curves with
    the step where D was switched on."""
    files = showcase(model, data, out, generator, per_row)
    _, b = _begin(model, data, out, 1000)
    files.append(codebook_sizes(model, b["x"], Path(out) / "codebook_sizes.png", per_row))
    metrics = Path(out).parent / "metrics.jsonl"
    if metrics.is_file():
        files.append(curves(metrics, Path(out) / "curves.png", VQGAN_PANELS,
                            {"D switched on": model.config.disc_start}))
    return files


@torch.no_grad()
def codebook_sizes(model, x: torch.Tensor, path: Path, columns: int = 8) -> Path:
    """Originals above their reconstructions through the m most used codes on ``x`` only,
    m = K, K/4, K/16, K/64 (those >= 2)."""
    z_e = torch.cat([model.encode(x[i:i + 250]) for i in range(0, len(x), 250)])
    K = model.config.codebook_size
    counts = torch.bincount(model.quantizer.nearest(z_e).flatten(), minlength=K)
    order = counts.argsort(descending=True)
    sizes = [m for m in (K, K // 4, K // 16, K // 64) if m >= 2]
    rows, labels = [x[:columns]], ["originals"]
    for m in sizes:
        allowed = torch.zeros(K, dtype=torch.bool, device=x.device)
        allowed[order[:m]] = True
        rows.append(model.decode_codes(model.quantizer.nearest(z_e[:columns], allowed)))
        labels.append(f"{m} codes")
    image = grid(to_uint8(torch.cat(rows)), nrow=len(rows[0]))
    cell = x.shape[-1]
    scale = readable_scale(image, cell)
    return titled_image(image, path, f"reconstructions through the m most used of {K} codes",
                        scale, labels, cell * scale, 2 * scale)


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
