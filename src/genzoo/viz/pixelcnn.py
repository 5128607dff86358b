"""What an autoregressive pixel model shows once trained (both PixelCNN families).

Samples at a few temperatures (one row each: T = 1 is the model itself, lower T sharper and
less varied); completions: held-out images whose top half is kept and whose bottom half the
model draws, twice each, beside the original; and which pixels cost the most bits.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from genzoo.viz.grid import grid, save_png, to_uint8

TEMPERATURES = (1.0, 0.7)


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None,
             per_row: int = 8) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    files = []
    rows = [model.sample(per_row, generator=generator, temperature=t) for t in TEMPERATURES]
    files.append(_save(torch.cat(rows), out / "samples_by_temperature.png", nrow=per_row))

    n = min(len(data), per_row)
    x = data.batch(torch.arange(n, device=data.x.device))["x"].to(model.device)
    x = _as_model_sees(model, x)
    half = x.shape[-2] // 2
    masked = x.clone()
    masked[:, :, half:] = 0
    columns = [x, masked] + [model.complete(x, half, generator) for _ in range(2)]
    # one row per image: original, the kept half, two completions
    files.append(_save(torch.stack(columns, 1).flatten(0, 1), out / "completions.png",
                           nrow=len(columns)))

    files.append(_bits_map(model, x, out / "bits_per_pixel.png"))
    return files


def _save(x: torch.Tensor, path: Path, nrow: int) -> Path:
    """A grid of small images, enlarged (nearest pixels) to about 512 pixels across."""
    g = grid(to_uint8(x), nrow)
    return save_png(g, path, max(1, min(8, 512 // max(g.shape[:2]))))


def _as_model_sees(model, x: torch.Tensor) -> torch.Tensor:
    """The data as the model's levels (for the K-level PixelCNN), so originals compare fairly."""
    levels = getattr(model.config, "levels", 256)
    if levels == 256:
        return x
    from genzoo.models.pixelcnn import quantize
    return quantize(x, levels).float() / (levels - 1)


def _bits_map(model, x: torch.Tensor, path: Path) -> Path:
    """Per-pixel information -log2 p(x_ij | x_<ij), summed over colours, as grey maps
    (white = the most bits of the batch) under the images."""
    if hasattr(model, "logits"):
        from genzoo.models.pixelcnn import quantize
        import torch.nn.functional as F
        k = quantize(x, model.config.levels)
        nats = F.cross_entropy(model.logits(k), k, reduction="none").sum(1)
    else:
        from genzoo.nn import logistic_mixture as dmol
        g = dmol.to_grid(x)
        nats = -dmol.log_prob(model.params(g), g, model.config.mixtures)
    bits = (nats / math.log(2))[:, None]
    heat = (bits / bits.max().clamp(min=1e-8)).expand(-1, x.shape[1], -1, -1)
    return _save(torch.cat([x, heat]), path, nrow=len(x))
