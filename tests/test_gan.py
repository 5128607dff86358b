"""GANs: the gradient penalty, the networks, the losses, sampling and conditioning."""
from __future__ import annotations

import pytest
import torch

from genzoo import config as C
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.nn.gan import Discriminator, Generator, gradient_penalty, spread

TINY = dict(z_dim=8, g_width=8, d_width=8, image_size=16)


def build(name, shape=(1, 16, 16), classes=4, **settings):
    entry = registry.get(name)
    cfg = C.from_dict(entry.config, {**TINY, **settings}, where=name)
    names = [f"c{i}" for i in range(classes)] if classes else None
    return entry.cls(cfg, DataInfo("image", shape, classes, names))


def batch(n=6, shape=(1, 16, 16), classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, *shape, generator=g), "y": torch.randint(0, classes, (n,), generator=g)}


# -- the gradient penalty ----------------------------------------------------------------------
def test_gradient_penalty_equals_the_hand_computed_value_and_trains_the_critic():
    # D(x) = a * sum(x^2): grad_x D = 2 a x, so ||grad D(x_hat)|| = 2 |a| ||x_hat||.
    a = torch.tensor(0.7, requires_grad=True)
    critic = lambda x: a * x.pow(2).flatten(1).sum(1)   # noqa: E731
    g = torch.Generator().manual_seed(0)
    x, x_tilde = torch.randn(3, 2, 2, 2, generator=g), torch.randn(3, 2, 2, 2, generator=g)
    eps = torch.tensor([0.0, 0.25, 1.0])
    gp = gradient_penalty(critic, x, x_tilde, eps)
    x_hat = eps.view(3, 1, 1, 1) * x + (1 - eps.view(3, 1, 1, 1)) * x_tilde
    r = x_hat.flatten(1).norm(dim=1)                    # ||x_hat|| per sample, all non-batch axes
    expected = ((2 * 0.7 * r - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    gp.backward()                                      # d gp / d a = mean(2 (2 a r - 1) 2 r)
    assert a.grad.item() == pytest.approx(((2 * (2 * 0.7 * r - 1)) * 2 * r).mean().item(), rel=1e-5)


def test_gradient_penalty_of_a_linear_critic_and_its_per_sample_uniform_epsilon():
    w = torch.tensor([3.0, 4.0])                       # ||grad|| = 5 everywhere: penalty 16
    critic = lambda x: x @ w                           # noqa: E731
    x, x_tilde = torch.randn(4, 2), torch.randn(4, 2)
    assert gradient_penalty(critic, x, x_tilde).item() == pytest.approx(16.0)
    quad = lambda x: x.pow(2).sum(1)                   # noqa: E731
    torch.manual_seed(5)
    drawn = gradient_penalty(quad, x, x_tilde)
    torch.manual_seed(5)
    eps = torch.rand(4)                                 # one epsilon per sample, U(0, 1)
    assert drawn.item() == pytest.approx(gradient_penalty(quad, x, x_tilde, eps).item())


def test_wgan_gp_critic_loss_is_the_papers_sum():
    model = build("wgan_gp")
    torch.manual_seed(0)
    out = model.critic_loss(batch())
    assert set(out) >= {"wasserstein", "gradient_penalty", "spread", "spread_ratio"}
    assert out["loss"].item() == pytest.approx(
        (-out["wasserstein"] + 10.0 * out["gradient_penalty"]).item(), rel=1e-5)
    assert out["wasserstein"].item() == pytest.approx((out["d_real"] - out["d_fake"]).item())


# -- the networks ------------------------------------------------------------------------------
@pytest.mark.parametrize("side,channels", [(32, 3), (64, 1)])
def test_dcgan_networks_have_the_classic_shapes(side, channels):
    G = Generator(100, channels, side, width=64)
    D = Discriminator(channels, side, width=64, dropout=0.3)
    first = G.net[0]
    assert first.kernel_size == (4, 4) and first(torch.randn(2, 100, 1, 1)).shape[-1] == 4
    x = G(torch.randn(2, 100))
    assert x.shape == (2, channels, side, side) and x.abs().max() <= 1
    assert D(x).shape == (2,)
    strides = [m.stride for m in D.net if isinstance(m, torch.nn.Conv2d)]
    assert strides[:-1] == [(2, 2)] * (len(strides) - 1)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in D.net)


def test_wgan_critic_has_no_batch_norm_and_is_rejected_with_one():
    model = build("wgan_gp")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.D.modules())
    assert isinstance(model.D.net[-1], torch.nn.Conv2d)        # linear output, no sigmoid
    with pytest.raises(GenzooError, match="d_batch_norm"):
        build("wgan_gp", d_batch_norm=True)


def test_bad_input_gets_clear_errors():
    with pytest.raises(GenzooError, match="4 \\* 2\\^k"):
        build("dcgan", shape=(1, 12, 12))
    with pytest.raises(GenzooError, match="square"):
        build("dcgan", shape=(1, 16, 32))
    with pytest.raises(GenzooError, match="labelled"):
        build("cgan", classes=0)
    with pytest.raises(GenzooError, match="image_size"):
        build("dcgan", image_size=48)


# -- the losses --------------------------------------------------------------------------------
def test_dcgan_noisy_and_smoothed_targets():
    model = build("dcgan", label_noise=0.1)
    real, fake = model.targets(1000, True), model.targets(1000, False)
    assert 0.9 <= real.min() < 0.91 and 0.99 < real.max() <= 1.0
    assert 0.0 <= fake.min() < 0.01 and 0.09 < fake.max() <= 0.1
    smooth = build("dcgan", label_noise=0.0, label_smoothing=0.1)
    assert torch.allclose(smooth.targets(5, True), torch.full((5,), 0.9))
    assert torch.equal(smooth.targets(5, False), torch.zeros(5))


def test_collapse_shows_in_the_logged_spread():
    assert spread(torch.ones(5, 1, 4, 4) * 0.3).item() == 0.0
    model = build("wgan_gp")
    healthy = model.critic_loss(batch())["spread_ratio"].item()
    last = model.G.net[-2]                   # the output layer: zero weights = one image for all z
    torch.nn.init.zeros_(last.weight)
    collapsed = model.critic_loss(batch())
    assert healthy > 0.3
    assert collapsed["spread"].item() == 0.0 and collapsed["spread_ratio"].item() == 0.0


# -- sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "cgan"])
def test_sampling_is_deterministic_under_a_seed(name):
    model = build(name, shape=(3, 16, 16)).eval()
    a = model.sample(5, generator=torch.Generator().manual_seed(1))
    b = model.sample(5, generator=torch.Generator().manual_seed(1))
    c = model.sample(5, generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, 3, 16, 16) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_conditional_sampling_depends_on_the_label():
    model = build("cgan").eval()
    seed = lambda: torch.Generator().manual_seed(3)    # noqa: E731
    zero, one = model.sample(4, seed(), label=0), model.sample(4, seed(), label=1)
    assert (zero - one).abs().mean() > 1e-3
    cycled = model.sample(8, seed())                   # label None: classes 0, 1, 2, 3, 0, ...
    assert torch.equal(cycled, model.sample(8, seed(), label=torch.arange(8) % 4))
    grid = model.class_grid(3, seed())                 # row c: the same 3 codes, label c
    assert grid.shape == (12, 1, 16, 16)
    assert torch.allclose(grid[3:6], model.sample(3, seed(), label=1), atol=1e-6)
    with pytest.raises(GenzooError, match="0..3"):
        model.sample(2, label=4)
    x = batch(2)["x"]
    assert not torch.allclose(model.critic(x, torch.tensor([0, 0])), model.critic(x, torch.tensor([2, 2])))


def test_held_out_evaluation_reports_scores_and_spread():
    dcgan = build("dcgan").eval()
    out = dcgan.evaluate(batch())
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1          # probabilities D(x)
    assert out["d_gap"] == pytest.approx(float(out["d_real"] - out["d_fake"]))
    wgan = build("cgan").eval().evaluate(batch())
    assert {"d_real", "d_fake", "d_gap", "spread", "spread_real", "spread_ratio"} <= set(wgan)
