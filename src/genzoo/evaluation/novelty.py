"""Does a model make new items, or give back its training set?

For each generated item, the distance to its nearest training item; for comparison, the same
distance for held-out real items, which the model never saw. A model that generalises makes
items about as far from the training set as unseen real items are; a model that memorises
makes items much closer. We report both distributions (quantiles) and the share of samples
closer to a training item than all but ``q`` of the held-out items are (the ``q``-quantile of
the held-out distances): about ``q`` for an honest model, far above it for a copying one, which
is then flagged (Meehan et al. 2020 and Webster et al. 2019 test memorisation in this spirit).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from genzoo.evaluation.nearest import nearest

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MIN_DIMS = 8        # below this, only near-exact copies flag a model (see novelty())


@dataclass
class Novelty:
    sample_distances: list[float]      # quantiles QUANTILES of sample -> nearest training item
    held_out_distances: list[float]    # the same for held-out real items
    close_fraction: float              # share of samples closer than the q-quantile of held-out
    copy_fraction: float               # share of samples that are (near-)exact training items
    q: float                           # the quantile used (expected close_fraction when honest)
    median_ratio: float                # median sample distance / median held-out distance
    memorising: bool                   # close_fraction > flag_factor * q (copies > q in < 8-d)
    nearest_index: list[int]           # nearest training item of each of the first samples

    def to_dict(self) -> dict:
        return asdict(self)


def novelty(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor,
            q: float = 0.05, flag_factor: float = 4.0, keep_index: int = 16) -> Novelty:
    """Nearest-training-item distances of ``samples`` against those of ``held_out``.

    Items may be raw data or features (any shape; they are flattened). ``flag_factor``: how
    many times the expected share ``q`` of close samples marks a model as memorising.
    """
    idx, d_gen = nearest(samples, train)
    _, d_real = nearest(held_out, train)
    d_gen, d_real = d_gen.cpu(), d_real.cpu()
    qs = torch.tensor(QUANTILES, dtype=torch.float64)
    threshold = torch.quantile(d_real, q)
    # copies: at distance ~0 (nearest() measures the pair it found in float64), whatever the
    # held-out distances are
    scale = train.flatten(1).double().norm(dim=1).mean().item()
    copies = float((d_gen <= 1e-6 * scale).double().mean())
    close = max(copies, float((d_gen < threshold).double().mean()))
    ratio = float(d_gen.median() / d_real.median().clamp_min(1e-12))
    # In a few dimensions nearest-neighbour distances follow the local density (a model that
    # puts its mass where the data is densest looks "close" without copying), so there only
    # copies flag a model; in many dimensions closeness itself is the sign.
    dims = samples[0].numel()
    flagged = close > flag_factor * q if dims >= MIN_DIMS else copies > q
    return Novelty(torch.quantile(d_gen, qs).tolist(), torch.quantile(d_real, qs).tolist(),
                   close, copies, q, ratio, flagged, idx[:keep_index].tolist())
