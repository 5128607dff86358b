"""Nearest training items of generated samples, to catch a model that memorises."""
from __future__ import annotations

import torch


@torch.no_grad()
def nearest(samples: torch.Tensor, reference: torch.Tensor, chunk: int = 1024
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, (index of the nearest reference item, its Euclidean distance in float64).

    Items are flattened, so any shape works (images, points, feature vectors); the search is
    exact, in chunks of the reference set so that memory stays bounded.
    """
    a = samples.flatten(1).float()
    best_d = torch.full((len(a),), float("inf"), device=a.device)
    best_i = torch.zeros(len(a), dtype=torch.long, device=a.device)
    for start in range(0, len(reference), chunk):
        b = reference[start:start + chunk].flatten(1).float().to(a.device)
        d, i = torch.cdist(a, b).min(1)
        better = d < best_d
        best_d = torch.where(better, d, best_d)
        best_i = torch.where(better, i + start, best_i)
    # cdist's matrix-product form loses precision (a copy can sit at ~0.03): the winners'
    # distances are computed again directly, in float64
    ref = reference.flatten(1).to(a.device, torch.float64)[best_i]
    return best_i, (a.double() - ref).norm(dim=1)
