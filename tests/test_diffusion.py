"""Diffusion: schedules, forward noising, the U-Net, guidance, training and exact resume."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import resumed_and_uninterrupted
from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.diffusion.ddpm import Diffusion, DiffusionConfig
from genzoo.models.diffusion.schedules import SCHEDULES, Schedule
from genzoo.models.diffusion.unet import UNet
from genzoo.training import TrainConfig, Trainer
from genzoo.training.run import RunDir

TINY = dict(widths=(8, 16), bottleneck=16, blocks=1, image_size=16, emb_dim=8)


def tiny(data_info: DataInfo, **kw) -> Diffusion:
    return Diffusion(DiffusionConfig(**{**TINY, **kw}), data_info)


ALL_SCHEDULES = [(k, d) for k in SCHEDULES for d in (True, False)]


@pytest.mark.parametrize("kind,discrete", ALL_SCHEDULES)
def test_alpha_bar_is_monotone_and_inside_0_1(kind, discrete):
    s = Schedule(kind, discrete)
    t = torch.linspace(0, 1, 4001)[1:]
    ab = s.alpha_bar(t)
    assert (ab > 0).all() and (ab < 1).all()
    assert (ab[1:] <= ab[:-1]).all()
    assert ab[0] > 0.85 and ab[-1] < 1e-3      # nearly clean at the start, nearly noise at the end


def test_linear_schedule_is_ddpms_product_of_betas():
    s = Schedule("linear", discrete=True)
    beta = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ab = torch.cumprod(1 - beta, 0)
    for i in (1, 10, 500, 1000):
        assert s.alpha_bar(torch.tensor(i / 1000)).item() == pytest.approx(ab[i - 1].item(), rel=1e-5)
    # the continuous-time limit (VP SDE) is close to the discrete product
    c = Schedule("linear", discrete=False)
    assert c.alpha_bar(torch.tensor(0.5)).item() == pytest.approx(ab[499].item(), rel=0.01)


def test_discrete_cosine_betas_come_from_the_unclamped_curve_clipped_at_0999():
    """Nichol & Dhariwal's beta_t = min(1 - abar(t) / abar(t - 1), 0.999): every step adds
    noise, the last one the most (a clamp of abar before the ratio made the last betas 0)."""
    s = Schedule("cosine", discrete=True, T=1000)
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2      # noqa: E731
    for i in (1, 500, 990, 999):
        assert s.beta[i - 1].item() == pytest.approx(1 - f(i / 1000) / f((i - 1) / 1000), rel=1e-9)
    assert s.beta[-1].item() == pytest.approx(0.999)
    assert (s.beta > 0).all() and (s.beta[1:] >= s.beta[:-1]).all()
    assert s.alpha_bar(torch.tensor(1.0)) < s.alpha_bar(torch.tensor(0.999)) / 100
    # continuous time keeps the clamp, so sigma / alpha stays finite at t = 1
    c = Schedule("cosine", discrete=False)
    assert c.alpha_bar(torch.tensor(1.0)).item() == pytest.approx(1e-5)


def test_offset_cosine_has_the_keras_signal_rates():
    s = Schedule("offset_cosine", discrete=False)
    alpha, sigma = s.alpha_sigma(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(alpha, torch.tensor([0.95, 0.02]))
    torch.testing.assert_close(alpha ** 2 + sigma ** 2, torch.ones(2))


@pytest.mark.parametrize("kind,discrete", [("linear", True), ("cosine", False), ("offset_cosine", False)])
def test_forward_noising_has_the_marginal_mean_and_variance(kind, discrete):
    model = tiny(DataInfo("image", (1, 16, 16)), schedule=kind, discrete=discrete)
    x0 = torch.full((1, 1, 16, 16), 0.7).expand(256, -1, -1, -1)
    g = torch.Generator().manual_seed(0)
    for t_val in (0.1, 0.5, 0.9):
        t = torch.full((256,), t_val)
        x_t = model.q_sample(x0, t, torch.randn(x0.shape, generator=g))
        ab = model.schedule.alpha_bar(torch.tensor(t_val)).item()
        # 65536 draws: the standard error of the mean is sigma / 256
        assert x_t.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=4 * math.sqrt(1 - ab) / 256)
        assert x_t.var().item() == pytest.approx(1 - ab, rel=0.03)


def test_unet_shapes_zero_start_and_conditioning():
    torch.manual_seed(0)
    net = UNet(3, (8, 16), 16, blocks=2, attention=(8, 4), image_size=16, emb_dim=8, num_classes=3)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([0.1, 0.9])
    assert net(x, t).shape == (2, 3, 16, 16)
    assert net(x, t).abs().max() == 0          # zero-initialised output conv
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    y = torch.tensor([0, 1])
    assert not torch.allclose(net(x, t, y), net(x, t, torch.tensor([2, 2])))
    assert not torch.allclose(net(x, t, y), net(x, t.flip(0), y))
    # an output pixel depends on the whole image (the bottleneck sees everything)
    x.requires_grad_(True)
    net(x, t, y)[0, :, 0, 0].sum().backward()
    assert x.grad[0, :, -1, -1].abs().sum() > 0 and x.grad[1].abs().sum() == 0


def test_guidance_zero_is_the_unconditional_prediction():
    model = tiny(DataInfo("image", (1, 16, 16), 3, ["a", "b", "c"]))
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, t = torch.randn(4, 1, 16, 16), torch.tensor(0.6)
    y = torch.tensor([0, 1, 2, 1])
    null = torch.full_like(y, 3)
    tt = t.expand(4)
    eps_u = model.net(x, tt, null)
    eps_c = model.net(x, tt, y)
    assert not torch.allclose(eps_u, eps_c, atol=1e-4)
    for w, expected in ((0.0, eps_u), (1.0, eps_c), (2.5, eps_u + 2.5 * (eps_c - eps_u))):
        _, eps = model.denoiser(y, w, clip=False)(x, t)
        torch.testing.assert_close(eps, expected, atol=1e-5, rtol=1e-5)


def test_data_statistics_are_measured_then_frozen(image_data):
    model = tiny(DataInfo.of(image_data), norm_batches=3)
    model.train()
    batches = [image_data.batch(torch.arange(i * 32, (i + 1) * 32)) for i in range(3)]
    for b in batches:
        model.loss(b)
    x = torch.cat([b["x"] for b in batches])
    torch.testing.assert_close(model.data_mean, x.mean((0, 2, 3)), atol=1e-6, rtol=0)
    torch.testing.assert_close(model.normalise(x).std(), torch.tensor(1.0), atol=1e-3, rtol=0)
    model.loss({"x": torch.ones(8, 1, 16, 16), "y": torch.zeros(8, dtype=torch.long)})
    torch.testing.assert_close(model.data_mean, x.mean((0, 2, 3)), atol=1e-6, rtol=0)  # frozen
    torch.testing.assert_close(model.denormalise(model.normalise(x)), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("prediction,loss", [("eps", "l2"), ("v", "l1")])
def test_loss_goes_down_and_samples_are_images(image_data, prediction, loss):
    torch.manual_seed(0)
    model = tiny(DataInfo.of(image_data), prediction=prediction, loss=loss, lr=3e-3)
    trainer = Trainer(model, image_data, TrainConfig(steps=40, batch_size=16, progress=False,
                                                     ema_decay=0.9))
    first = sum(float(trainer.train_step()["loss"]) for _ in range(5)) / 5
    losses = [float(trainer.train_step()["loss"]) for _ in range(35)]
    assert sum(losses[-10:]) / 10 < 0.7 * first
    with trainer.sampling_weights():
        x = model.sample(4, torch.Generator().manual_seed(0), sampler="dpm++2m", steps=5, label=2)
    assert x.shape == (4, 1, 16, 16) and x.min() >= 0 and x.max() <= 1


def test_resume_is_exact_with_ema_and_the_data_statistics(image_data, tmp_path):
    info = DataInfo.of(image_data)
    cfg = dict(batch_size=16, ema_decay=0.9, checkpoint_every=3, sample_every=0, progress=False,
               seed=3)

    def trainer(folder, steps):
        torch.manual_seed(123)      # the same initial weights for both runs
        model = tiny(info, norm_batches=5, dropout=0.1)
        return Trainer(model, image_data, TrainConfig(steps=steps, **cfg), run=RunDir(folder))

    # the cut at step 3 is mid-way through measuring the data (5 batches)
    ref, got, _ = resumed_and_uninterrupted(tmp_path, trainer, steps=8, cut=3)
    assert any(k.startswith("ema.") for k in ref) and "model.norm_seen" in ref
    assert int(got["model.norm_seen"]) == 5


def test_bad_input_is_a_clear_error(image_data):
    with pytest.raises(GenzooError, match="image side 10x10 must divide by 2\\^2"):
        tiny(DataInfo("image", (1, 10, 10)))
    with pytest.raises(GenzooError, match="needs images"):
        tiny(DataInfo("points", (2,)))
    with pytest.raises(GenzooError, match="prediction must be eps, x0 or v"):
        C.from_dict(DiffusionConfig, {"prediction": "score"}, where="ddpm config")
    model = tiny(DataInfo("image", (1, 16, 16)))
    with pytest.raises(GenzooError, match="unknown sampler 'euler'.*ddpm, ddim, dpm\\+\\+2m"):
        model.sample(1, sampler="euler")
    with pytest.raises(GenzooError, match="trained without labels"):
        model.sample(1, label=0)
    with pytest.raises(GenzooError, match="steps 2000 must be in 1..1000"):
        model.sample(1, sampler="ddim", steps=2000)
    cond = tiny(DataInfo.of(image_data))
    with pytest.raises(GenzooError, match="label 7 is not a class"):
        cond.sample(1, label=7)


def test_channels_last_computes_the_same_function():
    info = DataInfo("image", (3, 16, 16), 2, ["a", "b"])
    torch.manual_seed(0)
    a = tiny(info)
    b = tiny(info, channels_last=True)
    with torch.no_grad():
        for p in a.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b.load_state_dict(a.state_dict())
    assert b.net.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([0.2, 0.7]), torch.tensor([0, 1])
    torch.testing.assert_close(b.eps_net(x, t, y), a.eps_net(x, t, y), atol=1e-5, rtol=1e-5)
