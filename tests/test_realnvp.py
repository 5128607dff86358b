"""RealNVP: exact invertibility and log-determinants, the likelihood in closed form, bits per
dimension, learning on two moons and on images, the showcase, clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from genzoo import config as C
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.realnvp import RealNVP, RealNVPConfig
from genzoo.viz.samples import save_samples
from genzoo.nn.coupling import (alternating_mask, channel_mask, checkerboard_mask, squeeze,
                                unsqueeze)
from genzoo.nn.likelihood import bits_per_dim
from genzoo.training import TrainConfig, Trainer
from genzoo.training.run import RunDir

TINY_POINTS = dict(coupling_layers=4, hidden=32, depth=2)
TINY_IMAGES = dict(scales=2, features=8, res_blocks=1)


def points_flow(**kw):
    return RealNVP(RealNVPConfig(**{**TINY_POINTS, **kw}), DataInfo("points", (2,)))


def image_flow(shape=(1, 8, 8), **kw):
    return RealNVP(RealNVPConfig(**{**TINY_IMAGES, **kw}), DataInfo("image", shape))


def randomize(model, std=0.1, seed=0):
    """Move every weight off its identity initialisation, so the flow does something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return model


def moons(n, seed=0):
    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return TensorDataset(x=torch.tensor(x, dtype=torch.float32), modality="points", source="moons")


# -- the building blocks ---------------------------------------------------------------------

def test_masks_are_complementary_and_squeeze_is_a_permutation():
    assert alternating_mask(5, 0).tolist() == [1, 0, 1, 0, 1]
    assert torch.equal(alternating_mask(5, 0) + alternating_mask(5, 1), torch.ones(5))
    cb = checkerboard_mask(4, 4, 0)
    assert cb.shape == (1, 1, 4, 4) and cb.sum() == 8
    assert torch.equal(cb + checkerboard_mask(4, 4, 1), torch.ones(1, 1, 4, 4))
    assert cb[0, 0, 0, 0] == 1 and cb[0, 0, 0, 1] == 0 and cb[0, 0, 1, 0] == 0
    assert channel_mask(4, 0).flatten().tolist() == [1, 1, 0, 0]
    assert channel_mask(4, 1).flatten().tolist() == [0, 0, 1, 1]
    x = torch.arange(2 * 3 * 4 * 6.).reshape(2, 3, 4, 6)
    s = squeeze(x)
    assert s.shape == (2, 12, 2, 3)
    # the 2x2 block at the top left of channel 0 becomes 4 channels at pixel (0, 0)
    assert s[0, :4, 0, 0].tolist() == [x[0, 0, 0, 0], x[0, 0, 0, 1], x[0, 0, 1, 0], x[0, 0, 1, 1]]
    assert torch.equal(unsqueeze(s), x)


# -- invertibility and log-determinants --------------------------------------------------------

@pytest.mark.parametrize("kind", ["points", "image"])
def test_inverse_undoes_forward_and_logdets_cancel(kind):
    model = randomize(points_flow() if kind == "points" else image_flow((1, 8, 8)))
    x = torch.randn(16, 2) if kind == "points" else torch.rand(4, 1, 8, 8) * 0.98 + 0.01
    z, logdet = model.f(x)
    assert z.shape == x.shape and logdet.shape == (len(x),)
    assert logdet.abs().max() > 0.1                    # the flow is not the identity
    x_back, logdet_inv = model.g(z)
    assert torch.allclose(x_back, x, atol=1e-5)
    assert torch.allclose(logdet + logdet_inv, torch.zeros_like(logdet), atol=1e-4)


@pytest.mark.parametrize("kind", ["points", "image"])
def test_logdet_equals_the_log_determinant_of_the_jacobian(kind):
    torch.set_default_dtype(torch.float64)
    try:
        model = randomize(points_flow() if kind == "points" else image_flow((1, 4, 4)), std=0.2)
        shape = (2,) if kind == "points" else (1, 4, 4)
        x = torch.rand(*shape) * 0.8 + 0.1
        _, logdet = model.f(x[None])
        jac = torch.autograd.functional.jacobian(lambda v: model.f(v[None])[0][0], x)
        d = x.numel()
        expected = torch.linalg.slogdet(jac.reshape(d, d))[1]
        assert float(logdet[0].detach()) == pytest.approx(float(expected), abs=1e-8)
    finally:
        torch.set_default_dtype(torch.float32)


def test_identity_initialised_flow_gives_the_closed_form_likelihood():
    """Fresh couplings are the identity, so log p(x) is the standard normal's log-density."""
    model = points_flow()
    x = torch.randn(64, 2)
    closed = -0.5 * (x.pow(2).sum(1) + 2 * math.log(2 * math.pi))
    assert torch.allclose(model.log_prob(x), closed, atol=1e-5)
    # images: only the logit transform remains: log N(y) + sum log dy/dx, y = logit(a + (1-2a)x)
    alpha = 0.05
    model = image_flow((1, 8, 8), alpha=alpha)
    x = torch.rand(3, 1, 8, 8)
    p = alpha + (1 - 2 * alpha) * x
    y = torch.log(p / (1 - p))
    dy_dx = (1 - 2 * alpha) / (p * (1 - p))
    closed = (-0.5 * (y.pow(2) + math.log(2 * math.pi)) + torch.log(dy_dx)).flatten(1).sum(1)
    assert torch.allclose(model.log_prob(x), closed, rtol=1e-5)


def test_points_are_standardised_from_the_first_training_batch_with_the_log_det_counted():
    model = points_flow()
    x = torch.randn(256, 2) * torch.tensor([1000.0, 0.01]) + torch.tensor([5000.0, -3.0])
    model.loss({"x": x})
    mu, sigma = x.mean(0), x.std(0)
    assert torch.allclose(model.pre.mu, mu) and torch.allclose(model.pre.sigma, sigma)
    model.loss({"x": x * 2})                          # set once, then kept (and checkpointed)
    assert torch.allclose(model.pre.sigma, sigma) and "pre.sigma" in model.state_dict()
    u = (x - mu) / sigma
    closed = -0.5 * (u.pow(2).sum(1) + 2 * math.log(2 * math.pi)) - torch.log(sigma).sum()
    assert torch.allclose(model.log_prob(x), closed, atol=1e-4)
    z, _ = model.f(x)
    assert torch.allclose(model.g(z)[0], x, rtol=1e-5)


@torch.no_grad()
def test_bits_per_dimension_two_ways_agree():
    """val/bpd (density on [0, 1]^D plus 8 bits of bin width) equals the NLL of the same
    density rescaled to pixel units u = 256 x, in bits per dimension."""
    model = randomize(image_flow((1, 8, 8))).eval()
    k = torch.randint(0, 256, (8, 1, 8, 8)).float()
    torch.manual_seed(3)
    bpd = model.evaluate({"x": k / 255})["bpd"]
    torch.manual_seed(3)        # the same dequantisation noise
    u = k + torch.rand(k.shape)                      # continuous pixel values in [0, 256)
    D = 64
    log_p_u = model.log_prob(u / 256) - D * math.log(256)
    direct = (-log_p_u / (D * math.log(2))).mean()
    assert float(bpd) == pytest.approx(float(direct), rel=1e-5)
    assert float(bpd) == pytest.approx(float(bits_per_dim(model.log_prob(u / 256), D).mean()), rel=1e-5)


# -- learning ------------------------------------------------------------------------------

def test_learns_two_moons_and_reports_held_out_nll():
    train, held = moons(1024, seed=0), moons(256, seed=1)
    model = points_flow()
    cfg = TrainConfig(steps=300, batch_size=128, progress=False, eval_every=300)
    trainer = Trainer(model, train, cfg, held_out=held)
    before = trainer.evaluate()["val/nll"]
    trainer.fit()
    after = trainer.last_metrics["val/nll"]
    # a fitted Gaussian of the moons has NLL ~ 2.0 nats; the flow must beat the untrained 2.2+
    assert after < before - 0.5 and after < 1.6
    x = model.sample(500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and torch.isfinite(x).all()
    near = torch.cdist(x, held.x).min(1).values < 0.2   # samples fall on the moons (N(0, I): ~1/3)
    assert near.float().mean() > 0.75


def test_learns_images_and_samples_are_valid_images(image_data):
    model = image_flow((1, 16, 16))
    train, held = image_data.split(16)
    trainer = Trainer(model, train, TrainConfig(steps=60, batch_size=32, progress=False,
                                                eval_every=60), held_out=held)
    before = trainer.evaluate()["val/bpd"]
    trainer.fit()
    assert trainer.last_metrics["val/bpd"] < before - 0.5
    x = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 16, 16) and x.min() >= 0 and x.max() <= 1
    a = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.5)
    b = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.5)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["points", "image"])
def test_showcase_draws_the_four_panels_and_the_samples_over_training(tmp_path, kind, image_data):
    from genzoo.viz.flow import showcase
    data = moons(256) if kind == "points" else image_data
    model = points_flow() if kind == "points" else image_flow((1, 16, 16))
    run = RunDir.create(tmp_path / "run", {"family": "realnvp"})
    Trainer(model, data, TrainConfig(steps=4, batch_size=32, sample_every=2, sample_n=16,
                                     checkpoint_every=0, progress=False), run=run,
            writer=save_samples).fit()
    files = showcase(model, data, run.path / "showcase", torch.Generator().manual_seed(0))
    assert [f.name for f in files] == ["flow_panels.png", "samples_over_training.png"]
    assert all(f.stat().st_size > 1000 for f in files)


# -- errors --------------------------------------------------------------------------------

def test_bad_input_is_a_clear_error():
    with pytest.raises(GenzooError, match=r"image size 12x12 must be divisible by 8"):
        image_flow((1, 12, 12), scales=4)
    with pytest.raises(GenzooError, match="models points or images, not 'text'"):
        RealNVP(RealNVPConfig(), DataInfo("text", (80,)))
    with pytest.raises(GenzooError, match="vectors of 2 or more"):
        RealNVP(RealNVPConfig(), DataInfo("points", (1,)))
    with pytest.raises(GenzooError, match="alpha must be in"):
        C.from_dict(RealNVPConfig, {"alpha": 0.5})


def test_cli_trains_on_the_moons_builtin_and_samples_at_a_temperature(tmp_path):
    from genzoo.cli import main
    run = tmp_path / "run"
    assert main(["train", "realnvp", "--data", "moons", "--steps", "4", "--out", str(run),
                 "--no-progress", "--set", "hidden=16", "--set", "depth=1",
                 "--set", "data.max_items=500"]) == 0
    assert (run / "showcase" / "flow_panels.png").exists()
    assert main(["sample", str(run), "-n", "50", "--temperature", "0.5",
                 "--out", str(tmp_path / "s")]) == 0
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (50, 2) and np.isfinite(x).all()
