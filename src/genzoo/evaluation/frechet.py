"""Distances between a set of real and a set of generated items, in a feature space.

- Fréchet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule"): fit a
  Gaussian to each set of features and take the 2-Wasserstein distance between them,
      FD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
  In the InceptionV3 pool space of pytorch-fid this is the FID; in any other space it is an FD.
- Kernel inception distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
  averaged over random subsets, with its standard deviation over them.
- Precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric"):
  each set's manifold is the union of balls around its items reaching their k-th nearest
  neighbour; precision is the share of generated items inside the real manifold, recall the
  share of real items inside the generated one.

Arithmetic in float64, so the same features always give the same number.
"""
from __future__ import annotations

import numpy as np
import torch


def _np64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu, Sigma) of features (N, D): the mean and the unbiased covariance."""
    f = _np64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the inner matrix is symmetric PSD,
    so its eigenvalues are real and >= 0 and no complex square root is needed.
    """
    mu1, mu2, s1, s2 = _np64(mu1), _np64(mu2), _np64(sigma1), _np64(sigma2)
    r1 = _sqrt_psd(s1)
    inner = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean))


def frechet_distance_features(real, fake) -> float:
    """FD between the Gaussians fitted to two sets of features."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of MMD^2 between the distributions of x (m, D) and y (n, D):
    the means of k over distinct pairs within each set minus twice the cross mean."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kid(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0
        ) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of each set (of
    ``subset_size`` items, or half the smaller set when that is not larger)."""
    r, f = _np64(real), _np64(fake)
    n = min(len(r), len(f))
    # with subsets as large as a set, every subset is the whole set and the spread says
    # nothing: draw halves then
    m = subset_size if subset_size < n else n // 2
    if m < 2:
        raise ValueError("KID needs at least 2 items in each set")
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(r[rng.choice(len(r), m, replace=False)],
                            f[rng.choice(len(f), m, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([torch.cdist(a[i:i + chunk], b) for i in range(0, len(a), chunk)])


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Distance from each item to its k-th nearest neighbour in its own set (itself excluded)."""
    d = _pairwise(features, features)
    return d.kthvalue(k + 1, dim=1).values      # the 1st smallest is the item itself (0)


def manifold_coverage(points: torch.Tensor, support: torch.Tensor, radii: torch.Tensor,
                      chunk: int = 2048) -> float:
    """Share of ``points`` inside the union of balls B(support_i, radii_i)."""
    inside = []
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], support)
        inside.append((d <= radii[None, :]).any(1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """(precision, recall) with k-NN manifolds (Kynkäänniemi et al. 2019; k = 3 there)."""
    r = torch.as_tensor(_np64(real))
    f = torch.as_tensor(_np64(fake))
    if len(r) <= k or len(f) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} items in each set")
    precision = manifold_coverage(f, r, knn_radii(r, k))
    recall = manifold_coverage(r, f, knn_radii(f, k))
    return precision, recall
