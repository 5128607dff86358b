"""Does a model make new items, or give back its training set?

For each generated item, the distance to its nearest training item; for comparison, the same
distance for held-out real items, which the model never saw: how near a genuinely new item
comes to the training set. A model is called memorising only on evidence of copying: when
more of its samples are *near-copies* of training items than the held-out baseline explains.
A near-copy lies closer to a training item than ``copy_ratio`` (one half) of the distance that
all but ``q`` of the held-out items keep (the ``q``-quantile of their distances); the held-out
items themselves fall below that line only where the data holds near-duplicates, and that
share is the baseline. A model is flagged when the share of its samples that are near-copies
exceeds ``q`` plus ``flag_factor`` times the baseline (Meehan et al. 2020 and Webster et al.
2019 test memorisation in this spirit).

Merely *close* samples are not evidence: a blurry VAE sample, an average of many images, lies
nearer to the training images in pixel space than a sharp new image does without copying any.
The share of samples closer than the ``q``-quantile (``close_fraction``) is reported beside the
verdict, not used for it. In a few dimensions (points in the plane) nearest-neighbour
distances follow the local density, so there only (near-)exact copies count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from genzoo.evaluation.nearest import nearest

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MIN_DIMS = 8        # below this, only near-exact copies count (see the module docstring)


@dataclass
class Novelty:
    sample_distances: list[float]      # quantiles QUANTILES of sample -> nearest training item
    held_out_distances: list[float]    # the same for held-out real items
    close_fraction: float              # share of samples closer than the q-quantile of held-out
    copy_fraction: float               # share of samples that are (near-)exact training items
    near_copy_fraction: float          # share of samples nearer than near_copy_distance
    held_out_near_copy_fraction: float  # the same share of held-out items: the baseline
    near_copy_distance: float          # copy_ratio * q-quantile of held-out (exact: ~0 in few dims)
    q: float                           # the quantile used
    median_ratio: float                # median sample distance / median held-out distance
    memorising: bool                   # near copies > q + flag_factor * baseline
    nearest_index: list[int]           # nearest training item of each of the first samples

    def to_dict(self) -> dict:
        return asdict(self)


def novelty(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor,
            q: float = 0.05, copy_ratio: float = 0.5, flag_factor: float = 2.0,
            keep_index: int = 16) -> Novelty:
    """Nearest-training-item distances of ``samples`` against those of ``held_out``.

    Items may be raw data or features (any shape; they are flattened).
    """
    idx, d_gen = nearest(samples, train)
    _, d_real = nearest(held_out, train)
    d_gen, d_real = d_gen.cpu(), d_real.cpu()
    qs = torch.tensor(QUANTILES, dtype=torch.float64)
    threshold = torch.quantile(d_real, q)
    # exact copies: at distance ~0 (nearest() measures the pair it found in float64)
    exact = 1e-6 * train.flatten(1).double().norm(dim=1).mean().item()
    line = copy_ratio * float(threshold) if samples[0].numel() >= MIN_DIMS else exact
    line = max(line, exact)
    copies = float((d_gen <= exact).double().mean())
    near = float((d_gen <= line).double().mean())
    baseline = float((d_real <= line).double().mean())
    close = max(copies, float((d_gen < threshold).double().mean()))
    ratio = float(d_gen.median() / d_real.median().clamp_min(1e-12))
    flagged = near > q + flag_factor * baseline
    return Novelty(torch.quantile(d_gen, qs).tolist(), torch.quantile(d_real, qs).tolist(),
                   close, copies, near, baseline, line, q, ratio, flagged,
                   idx[:keep_index].tolist())


def verdict(nov: dict, space: str) -> str:
    """One sentence: the memorisation verdict, its evidence, and the space it was made in."""
    said = "memorising" if nov["memorising"] else "no evidence of copying"
    return (f"novelty in {space}: {said}: {nov['near_copy_fraction']:.1%} of samples are "
            f"near-copies of training items (held-out items: "
            f"{nov['held_out_near_copy_fraction']:.1%}); {nov['close_fraction']:.0%} lie nearer "
            f"a training item than {1 - nov['q']:.0%} of held-out items do, which alone is no "
            "sign of copying")
