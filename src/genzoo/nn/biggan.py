"""Three parts of the BigGAN toolkit (Brock, Donahue & Simonyan 2019), usable by any GAN.

- Class-conditional batch norm (de Vries et al. 2017; Dumoulin et al. 2017): the batch norm's
  gain and bias are functions of the class, y = BN(x) (1 + gamma(e)) + beta(e), where e is the
  class's embedding. BigGAN shares one embedding among all layers; each layer has its own
  linear maps gamma and beta from it (fewer parameters than a table per layer, and classes
  that look alike can share).
- Orthogonal regularisation, BigGAN's relaxed form: R_beta(W) = beta ||W W^T o (1 - I)||_F^2
  with the filters as the rows of W: it pushes the filters towards mutual orthogonality
  without constraining their norms. It makes G amenable to truncation.
- The truncation trick: z drawn from a normal truncated at a threshold (values outside are
  drawn again). Lower thresholds trade variety for fidelity.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class ConditionalBatchNorm2d(nn.Module):
    """x (N, C, H, W), e (N, embed_dim) -> BN(x) * (1 + gamma(e)) + beta(e)."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Linear(embed_dim, channels, bias=False)
        self.beta = nn.Linear(embed_dim, channels, bias=False)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        gamma, beta = self.gamma(e)[:, :, None, None], self.beta(e)[:, :, None, None]
        return self.bn(x) * (1 + gamma) + beta


def orthogonal_regularisation(weights, beta: float = 1e-4) -> Tensor:
    """beta * sum over W of ||W W^T (1 - I)||_F^2, each W read as a matrix (out, rest): the
    off-diagonal inner products of its filters (BigGAN eq. 3)."""
    total = None
    for W in weights:
        M = W.float().flatten(1)
        gram = M @ M.t()
        off = gram - torch.diag_embed(gram.diagonal())
        r = off.pow(2).sum()
        total = r if total is None else total + r
    if total is None:
        raise ValueError("orthogonal_regularisation: no weights given")
    return beta * total


def matrix_weights(network: nn.Module) -> list[Tensor]:
    """The weights of ``network``'s convolutions and linear maps (their trained originals
    where a parametrization such as spectral normalisation wraps them), not embeddings."""
    out = []
    for m in network.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            p = getattr(m, "parametrizations", None)
            out.append(p.weight.original if p is not None and "weight" in p else m.weight)
    return out


def truncated_normal(shape, threshold: float, generator: torch.Generator | None = None,
                     device=None) -> Tensor:
    """N(0, I) with every value outside [-threshold, threshold] drawn again until it falls
    inside (BigGAN's truncation trick)."""
    if threshold <= 0:
        raise ValueError(f"truncation threshold must be > 0, got {threshold}")
    z = torch.randn(shape, generator=generator, device=device)
    while True:
        outside = z.abs() > threshold
        count = int(outside.sum())
        if count == 0:
            return z
        z[outside] = torch.randn(count, generator=generator, device=device)
