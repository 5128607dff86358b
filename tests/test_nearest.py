import torch

from genzoo.evaluation.nearest import nearest


def test_nearest_finds_exact_copies_at_distance_zero_and_the_true_neighbour():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(300, 3, 8, 8, generator=g) * 100     # large values: cancellation-prone
    samples = torch.cat([ref[[5, 17, 299]], ref[[40]] + 0.5])
    idx, dist = nearest(samples, ref, chunk=64)           # several chunks
    assert idx.tolist() == [5, 17, 299, 40]
    assert dist[:3].tolist() == [0.0, 0.0, 0.0]
    assert abs(dist[3].item() - 0.5 * (3 * 8 * 8) ** 0.5) < 1e-4
    brute = torch.cdist(samples.flatten(1).double(), ref.flatten(1).double()).min(1)
    assert torch.equal(idx, brute.indices)
