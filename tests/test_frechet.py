"""Fréchet distance, KID and precision/recall against what theory says they must be."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genzoo.evaluation.frechet import (frechet_distance, frechet_distance_features,
                                       gaussian_stats, kid, mmd2_unbiased, polynomial_kernel,
                                       precision_recall)


def test_frechet_closed_form_1d_and_diagonal():
    # 1-d: (mu1 - mu2)^2 + (s1 - s2)^2 with s the standard deviations
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 2.0, 3.0]), np.array([4.0, 0.5, 3.0])
    expected = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def test_frechet_closed_form_non_commuting_2d():
    # For a 2x2 matrix A with real non-negative eigenvalues, Tr A^(1/2) = sqrt(Tr A + 2 sqrt(det A)).
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    a = s1 @ s2
    tr_sqrt = math.sqrt(np.trace(a) + 2 * math.sqrt(np.linalg.det(a)))
    mu1, mu2 = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1))


def test_frechet_of_samples_approaches_the_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 2, generator=g, dtype=torch.float64) * 2 + 1   # N(1, 4 I)
    # closed form: |mu|^2 = 2, trace terms 2 * (1 + 4 - 2 * 2) = 2
    assert frechet_distance_features(a, b) == pytest.approx(4.0, rel=0.05)
    mu, sigma = gaussian_stats(b)
    assert mu == pytest.approx([1, 1], abs=0.05) and sigma[0, 0] == pytest.approx(4, rel=0.05)


def _images(n=300, side=16, seed=0):
    """Smooth random images: a few Gaussian blobs each, values in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linspace(0, 1, side)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    c = torch.rand(n, 3, 2, generator=g)
    w = 0.05 + 0.1 * torch.rand(n, 3, 1, 1, generator=g)
    blobs = torch.exp(-((xx - c[..., 0, None, None]) ** 2 + (yy - c[..., 1, None, None]) ** 2) / w ** 2)
    return blobs.sum(1, keepdim=True).clamp(0, 1)


def _blur(x, r):
    if r == 0:
        return x
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)


def test_frechet_grows_with_noise_and_blur():
    x = _images()
    feats = lambda t: t.flatten(1)
    assert frechet_distance_features(feats(x), feats(x)) == pytest.approx(0, abs=1e-8)
    g = torch.Generator().manual_seed(1)
    noisy = [frechet_distance_features(feats(x), feats((x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)))
             for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy
    blurred = [frechet_distance_features(feats(x), feats(_blur(x, r))) for r in (1, 2, 3, 4)]
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred
    assert noisy[0] > 1e-3 and blurred[0] > 1e-3


def test_same_samples_same_numbers():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g) + 0.3
    assert frechet_distance_features(a, b) == frechet_distance_features(a.clone(), b.clone())
    assert kid(a, b, subsets=10, subset_size=50) == kid(a, b, subsets=10, subset_size=50)
    assert precision_recall(a, b) == precision_recall(a, b)


def test_kid_is_unbiased_on_identical_distributions():
    rng = np.random.default_rng(0)
    m, d, trials = 40, 4, 300
    unbiased, biased = [], []
    for _ in range(trials):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(mmd2_unbiased(x, y))
        biased.append(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean()
                      - 2 * polynomial_kernel(x, y).mean())
    se = np.std(unbiased) / math.sqrt(trials)
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(biased) > 10 * se         # the V-statistic is biased upwards: the test can fail
    mean, std = kid(rng.normal(size=(500, d)), rng.normal(size=(500, d)), subsets=50, subset_size=100)
    assert abs(mean) < 3 * std and std > 0
    far_mean, _ = kid(rng.normal(size=(500, d)), rng.normal(size=(500, d)) + 1, subsets=20, subset_size=100)
    assert far_mean > 10 * std


def test_precision_recall_self_and_disjoint():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 5, generator=g)
    assert precision_recall(a, a) == (1.0, 1.0)
    assert precision_recall(a, a + 100.0) == (0.0, 0.0)
    # real data has two far modes, the model only one (mode collapse): recall ~ 1/2, precision 1
    real = torch.cat([a[:150], a[150:] + 50.0])
    p, r = precision_recall(real, torch.randn(300, 5, generator=g))
    assert p > 0.85 and 0.4 < r < 0.55


def test_errors_on_too_few_items():
    with pytest.raises(ValueError):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


def test_kid_spread_is_measured_on_real_subsets_when_sets_are_small():
    import numpy as np

    from genzoo.evaluation.frechet import kid
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(0.3, 1, size=(300, 8))
    mean, std = kid(a, b, subsets=20, subset_size=1000)
    assert mean > 0 and std > 1e-6      # halves of 300, not 300 of 300 twenty times
