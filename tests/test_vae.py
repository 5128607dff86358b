"""Autoencoder and VAE: shapes, the KL and likelihood formulas, bounds, learning."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genzoo.models.autoencoder import Autoencoder, AutoencoderConfig
from genzoo.models.base import DataInfo
from genzoo.models.vae import (VAE, VAEConfig, continuous_bernoulli_log_norm,
                               continuous_bernoulli_mean, kl_standard_normal)
from genzoo.nn.likelihood import bits_per_dim, dequantize
from genzoo.training import TrainConfig, Trainer

GREY = DataInfo("image", (1, 16, 16))
TINY = dict(widths=(8, 16), image_size=16)


def test_shapes_and_ranges():
    for cls, cfg in ((Autoencoder, AutoencoderConfig(**TINY)), (VAE, VAEConfig(**TINY, latent_dim=3))):
        m = cls(cfg, GREY)
        x = torch.rand(5, 1, 16, 16)
        z = m.encode(x)
        assert z.shape == (5, cfg.latent_dim)
        r = m.reconstruct(x)
        assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
        s = m.sample(7, generator=torch.Generator().manual_seed(0))
        assert s.shape == (7, 1, 16, 16) and s.min() >= 0 and s.max() <= 1


def test_deep_colour_variant_shapes():
    cfg = VAEConfig(**{**VAE.presets["celeba"], "latent_dim": 20, "image_size": 32})
    m = VAE(cfg, DataInfo("image", (3, 32, 32)))
    mu, log_var = m.posterior(torch.rand(2, 3, 32, 32))
    assert mu.shape == log_var.shape == (2, 20)
    assert m.sample(2).shape == (2, 3, 32, 32)
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())


def test_kl_matches_the_closed_form_of_torch_distributions():
    mu, log_var = torch.randn(6, 4), torch.randn(6, 4)
    q = Normal(mu, (0.5 * log_var).exp())
    p = Normal(torch.zeros(4), torch.ones(4))
    expected = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mu, log_var), expected)
    assert torch.all(kl_standard_normal(torch.zeros(3, 2), torch.zeros(3, 2)) == 0)


def test_continuous_bernoulli_density_integrates_to_one():
    x = torch.linspace(0, 1, 20001)[:, None]
    for logit in (-7.0, -1.3, -1e-4, 0.0, 0.5, 4.0):
        l = torch.full((1,), logit)
        lam = torch.sigmoid(l)
        log_p = x * lam.log() + (1 - x) * (1 - lam).log() + continuous_bernoulli_log_norm(l)
        integral = torch.trapezoid(log_p.exp().squeeze(1), x.squeeze(1))
        assert integral.item() == pytest.approx(1.0, abs=1e-4), logit
        mean = torch.trapezoid((x * log_p.exp()).squeeze(1), x.squeeze(1))
        assert continuous_bernoulli_mean(l).item() == pytest.approx(mean.item(), abs=1e-4), logit


def test_elbo_is_finite_and_below_the_importance_weighted_bound(image_data):
    m = VAE(VAEConfig(**TINY, latent_dim=4), DataInfo.of(image_data))
    Trainer(m, image_data, TrainConfig(steps=60, batch_size=32, progress=False)).fit()
    m.eval()
    x = dequantize(image_data.batch(torch.arange(16))["x"])
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        elbo = torch.stack([m.elbo(x, g) for _ in range(128)]).mean(0)
        iw = m.iw_bound(x, k=128, generator=g)
    assert torch.isfinite(elbo).all() and torch.isfinite(iw).all()
    # log E[w] >= E[log w] (Jensen): the K-sample bound is the tighter one
    assert iw.mean() > elbo.mean()
    assert torch.all(bits_per_dim(elbo, x[0].numel()) > 0)


def test_bits_per_dim_of_a_uniform_density_is_eight():
    # the uniform density on [0,1]^D has log p = 0: each dimension pays exactly log2(256) bits
    assert bits_per_dim(torch.zeros(3), dims=100).tolist() == [8.0, 8.0, 8.0]
    assert bits_per_dim(torch.tensor([-100 * math.log(2)]), dims=100, continuous=False).item() == pytest.approx(1.0)


def test_vae_loss_and_held_out_bound_fall(image_data):
    train, held = image_data.split(16)
    m = VAE(VAEConfig(**TINY, beta=256.0), DataInfo.of(train))
    t = Trainer(m, train, TrainConfig(steps=200, batch_size=32, progress=False, eval_every=0),
                held_out=held)
    before = t.evaluate()
    t.fit()
    after = t.evaluate()
    assert after["val/loss"] < 0.8 * before["val/loss"]
    assert after["val/elbo_bpd"] < before["val/elbo_bpd"]


def test_autoencoder_samples_from_the_fitted_code_distribution(image_data):
    m = Autoencoder(AutoencoderConfig(**TINY), DataInfo.of(image_data))
    Trainer(m, image_data, TrainConfig(steps=100, batch_size=32, progress=False)).fit()
    with torch.no_grad():
        z = m.encode(image_data.batch(torch.arange(96))["x"])
    # running moments of the codes follow the codes themselves
    assert torch.allclose(m.z_mean, z.mean(0), atol=0.5 * z.std(0).max().item())
    assert (m.z_var > 0).all()
    # and sample() decodes codes drawn from them: catch what the decoder is given
    drawn = []
    hook = m.decoder.register_forward_pre_hook(lambda module, args: drawn.append(args[0]))
    x = m.sample(4000, generator=torch.Generator().manual_seed(0))
    hook.remove()
    assert x.shape == (4000, 1, 16, 16) and x.min() >= 0 and x.max() <= 1
    (codes,) = drawn
    sd = m.z_var.sqrt()
    assert ((codes.mean(0) - m.z_mean).abs() < 0.1 * sd).all()      # 40 standard errors apart
    assert ((codes.std(0) / sd - 1).abs() < 0.1).all()
    assert ((m.z_mean.abs() > 0.5) | ((sd - 1).abs() > 0.5)).any(), "fitted codes look N(0, I)"


def test_continuous_bernoulli_loss_is_the_negative_elbo_per_pixel(image_data):
    """With reconstruction=cb and beta = D the training loss is -ELBO / 1 (nats, per image)."""
    m = VAE(VAEConfig(**TINY, reconstruction="cb", beta=256.0), DataInfo.of(image_data)).eval()
    x = image_data.batch(torch.arange(8))["x"]
    torch.manual_seed(3)
    loss = m.loss({"x": x})["loss"]
    torch.manual_seed(3)
    elbo = m.elbo(x)
    assert loss.item() == pytest.approx(-elbo.mean().item(), rel=1e-5)


@pytest.mark.parametrize("dequantized_training", [False, True])
def test_held_out_loss_sees_the_data_as_training_does_and_only_the_bound_is_dequantised(
        image_data, dequantized_training):
    m = VAE(VAEConfig(**TINY, dequantize=dequantized_training), DataInfo.of(image_data)).eval()
    seen = {}

    def spy(name):
        method = getattr(m, name)

        def wrapped(data, *args, **kwargs):
            seen[name] = (data["x"] if isinstance(data, dict) else data).clone()
            return method(data, *args, **kwargs)
        return wrapped

    m.loss, m.elbo = spy("loss"), spy("elbo")
    x = image_data.batch(torch.arange(8))["x"]
    out = m.evaluate({"x": x})
    assert {"loss", "reconstruction", "kl", "elbo_bpd"} <= set(out)

    def dequantised(y):             # (k + u) / 256, u in [0, 1), for x = k / 255
        u = y * 256 - (x * 255).round()
        return not torch.equal(y, x) and (u > -1e-4).all() and (u < 1 + 1e-4).all()
    assert dequantised(seen["elbo"])
    assert dequantised(seen["loss"]) if dequantized_training else torch.equal(seen["loss"], x)


def test_the_default_vae_is_the_books_fashion_recipe():
    """Foster, ch. 3: convs 32/64/128 to a 2-d code, BCE x 500 + KL, Adam(5e-4), batch 100, 32x32."""
    cfg = VAEConfig()
    assert (cfg.widths, cfg.latent_dim, cfg.beta, cfg.reconstruction) == ((32, 64, 128), 2, 500.0, "bce")
    assert (cfg.lr, cfg.image_size, cfg.dequantize, cfg.batch_norm) == (5e-4, 32, False, False)
    assert VAE.train_defaults["batch_size"] == 100
    assert AutoencoderConfig().lr == 1e-3          # the book's autoencoder: Keras' default Adam
