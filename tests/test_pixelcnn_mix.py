"""PixelCNN++: the discretised logistic mixture, causality by gradient (no blind spot),
the exact cached/windowed sampler, and bits per dimension computed two ways."""
from __future__ import annotations

import math

import pytest
import torch

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.pixelcnn_mix import PixelCNNMix, PixelCNNMixConfig
from genzoo.nn import logistic_mixture as dmol
from genzoo.nn.likelihood import bits_per_dim
from genzoo.training import TrainConfig, Trainer

TINY = dict(filters=8, resnet_blocks=1, hierarchies=2, mixtures=3, dropout=0.0)


def tiny(colours=1, side=8, **kw):
    torch.manual_seed(0)
    return PixelCNNMix(PixelCNNMixConfig(image_size=side, **{**TINY, **kw}),
                       DataInfo("image", (colours, side, side))).eval()


GRID = torch.arange(256).double() / 255 * 2 - 1          # the 256 levels on [-1, 1]


def test_one_logistic_sums_to_one_over_the_256_levels_even_in_the_tails():
    for mu, log_s in [(0.0, -3.0), (0.7, -1.0), (-1.3, -6.5), (0.999, 2.0), (5.0, -7.0)]:
        lp = dmol.discretized_logistic_log_prob(GRID, torch.tensor(mu).double(),
                                                torch.tensor(log_s).double())
        assert torch.isfinite(lp).all()
        assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-9)


def test_the_mixture_over_two_coupled_channels_sums_to_one():
    """A 2-colour pixel (so 256^2 values) with 4 components and the mean of channel 2 moved
    by channel 1: the joint probabilities still sum to 1."""
    torch.manual_seed(1)
    M, C = 4, 2
    params = torch.randn(1, dmol.num_params(C, M), 1, 1).double()
    a, b = torch.meshgrid(GRID, GRID, indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()])[None, :, :, None]      # (1, 2, 65536, 1)
    lp = dmol.log_prob(params.expand(-1, -1, x.shape[2], 1).double(), x, M)
    assert float(torch.logsumexp(lp.flatten(), 0)) == pytest.approx(0.0, abs=1e-6)


def test_sampling_draws_the_discretised_distribution():
    torch.manual_seed(2)
    M = 3
    params = torch.randn(1, dmol.num_params(1, M), 1, 1) * torch.tensor([1, 1, 1, .3, .3, .3, 1, 1, 1])[:, None, None]
    x = dmol.sample(params.expand(20000, -1, -1, -1), 1, M, torch.Generator().manual_seed(0))
    counts = torch.bincount(((x.flatten() + 1) * 127.5).round().long(), minlength=256).double()
    lp = dmol.log_prob(params.double().expand(256, -1, -1, -1), GRID.view(256, 1, 1, 1), M)
    tv = 0.5 * (counts / counts.sum() - lp.flatten().exp()).abs().sum()
    assert tv < 0.06          # total variation between the draw's histogram and the pmf
    v = (x + 1) * 127.5
    torch.testing.assert_close(v, v.round(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("colours", [1, 3])
def test_no_output_depends_on_its_own_or_a_later_pixel_and_there_is_no_blind_spot(colours):
    model = tiny(colours)
    side = 8
    x = torch.rand(4, colours, side, side, requires_grad=True)
    out = model.params(x)
    for i in range(side):
        for j in range(side):
            (g,) = torch.autograd.grad(out[:, :, i, j].sum(), x, retain_graph=True)
            seen = g.abs().sum((0, 1))
            assert torch.all(seen.flatten()[i * side + j:] == 0), (i, j)   # itself and later
            # no blind spot: the two rows above (2 columns either side) and 4 pixels to the left
            assert torch.all(seen[i, max(0, j - 4):j] > 0), (i, j)
            assert torch.all(seen[max(0, i - 2):i, max(0, j - 2):j + 3] > 0), (i, j)


def test_cached_down_stream_and_window_give_the_full_pass():
    """What the sampler computes for pixel (i, j) -- u from before row i was drawn, ul on the
    top-left window -- equals the network's output on the whole current image."""
    model = tiny(colours=3, side=8)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    for i, j in [(0, 0), (2, 3), (3, 7), (5, 0), (7, 6)]:
        u = model._down(model._mark(x))
        x[:, :, i, :] = torch.rand(2, 3, 8) * 2 - 1      # row i changes while it is drawn
        rows, cols = min(8, math.ceil((i + 1) / 2) * 2), min(8, math.ceil((j + 2) / 2) * 2)
        window = model._down_right(model._mark(x[:, :, :rows, :cols]), *u)[:, :, i, j]
        torch.testing.assert_close(window, model.params(x)[:, :, i, j], rtol=1e-5, atol=1e-5)


def test_bits_per_dimension_two_ways():
    """From the loss, and from the explicit 256-level table of each pixel's distribution."""
    model = tiny(colours=1)
    x01 = torch.randint(0, 256, (3, 1, 8, 8)).float() / 255
    with torch.no_grad():
        bpd = model.loss({"x": x01})["bpd"]
        params = model.params(x01 * 2 - 1)                                    # (3, 9, 8, 8)
        logit_pi, mu, log_s, _ = dmol.split_params(params, 1, 3)
        table = dmol.discretized_logistic_log_prob(GRID.float().view(256, 1, 1, 1, 1, 1),
                                                   mu, log_s)[:, :, 0]        # (256,3,M,8,8)
        pmf = torch.logsumexp(table + torch.log_softmax(logit_pi, 1), 2)      # (256, 3, 8, 8)
        assert torch.allclose(pmf.exp().sum(0), torch.ones(3, 8, 8), atol=1e-5)
        v = (x01[:, 0] * 255).round().long()
        log_p = pmf.gather(0, v[None])[0].flatten(1).sum(1)
        other = bits_per_dim(log_p, 64, continuous=False).mean()
    torch.testing.assert_close(bpd, other, rtol=1e-5, atol=1e-5)


def test_loss_goes_down_on_a_tiny_set(image_data):
    torch.manual_seed(0)
    model = PixelCNNMix(PixelCNNMixConfig(image_size=16, **{**TINY, "lr": 1e-2}),
                        DataInfo.of(image_data))
    trainer = Trainer(model, image_data, TrainConfig(steps=20, batch_size=16, progress=False))
    first = float(trainer.train_step()["bpd"])
    trainer.fit()
    assert trainer.last_metrics["bpd"] < 0.65 * first


def test_sampling_shape_levels_seeds_and_completion():
    model = tiny(colours=3, side=4).train()
    g = lambda s: torch.Generator().manual_seed(s)   # noqa: E731
    a = model.sample(2, generator=g(1))
    assert model.training                            # sample() restores the mode
    assert a.shape == (2, 3, 4, 4) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a * 255, (a * 255).round(), rtol=0, atol=1e-4)
    assert torch.equal(a, model.sample(2, generator=g(1)))
    assert not torch.equal(a, model.sample(2, generator=g(2)))
    x = torch.randint(0, 256, (2, 3, 4, 4)).float() / 255
    done = model.complete(x, 2, g(0), temperature=0.5)
    torch.testing.assert_close(done[:, :, :2], x[:, :, :2])
    with pytest.raises(GenzooError, match="temperature"):
        model.sample(1, temperature=-1.0)


def test_bad_sizes_are_clear_errors():
    from genzoo import config as C
    with pytest.raises(GenzooError, match="image_size 30 must be divisible by 2"):
        C.from_dict(PixelCNNMixConfig, {"image_size": 30, "hierarchies": 3})
    with pytest.raises(GenzooError, match=r"image size \(7, 7\) must be divisible by 2"):
        PixelCNNMix(PixelCNNMixConfig(image_size=8), DataInfo("image", (1, 7, 7)))


def test_train_show_and_sample_from_the_command_line(image_npz, tmp_path):
    import numpy as np
    from genzoo.cli import main
    run = tmp_path / "run"
    assert main(["train", "pixelcnn_mix", "--data", str(image_npz), "--steps", "2",
                 "--batch-size", "8", "--set", "filters=8", "--set", "mixtures=2",
                 "--set", "image_size=8", "--set", "train.sample_every=0", "--out", str(run),
                 "--no-progress"]) == 0
    for name in ("samples_by_temperature.png", "completions.png", "bits_per_pixel.png"):
        assert (run / "showcase" / name).is_file()
    out = tmp_path / "s"
    assert main(["sample", str(run), "-n", "2", "--temperature", "0.9", "--out", str(out)]) == 0
    assert np.load(out.with_suffix(".npz"))["x"].shape == (2, 8, 8, 1)
