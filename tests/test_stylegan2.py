"""StyleGAN2: equalised learning rate, modulation and demodulation, R1, the path-length mean,
truncation, style mixing, the lazy objectives, EMA of G only, DiffAugment / ADA, exact resume."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import resumed_and_uninterrupted
from genzoo import config as C
from genzoo import registry
from genzoo.data.dataset import TensorDataset
from genzoo.models.base import DataInfo
from genzoo.nn.augment import Augment, cutout, translation
from genzoo.nn.equalized import EqualizedConv2d, EqualizedLinear, MinibatchStdDev
from genzoo.nn.gan import r1_penalty
from genzoo.nn.stylegan import ModulatedConv2d, mix_styles
from genzoo.training.run import RunDir
from genzoo.training.trainer import TrainConfig, Trainer

TINY = dict(image_size=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def build(shape=(3, 16, 16), size=0, **settings):
    entry = registry.get("stylegan2")
    cfg = C.from_dict(entry.config, {**TINY, **settings}, "stylegan2")
    return entry.cls(cfg, DataInfo("image", shape, size=size))


def images(n=32, side=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(x=(torch.rand(n, 3, side, side, generator=g) * 255).to(torch.uint8),
                         modality="image", source="t")


# -- equalised learning rate ----------------------------------------------------------------
@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalised_lr_scales_at_run_time_so_every_layer_learns_at_the_same_pace(lr_mul):
    torch.manual_seed(0)
    small, big = EqualizedLinear(16, 32, lr_mul=lr_mul), EqualizedLinear(1024, 32, lr_mul=lr_mul)
    for layer, fan_in in ((small.double(), 16), (big.double(), 1024)):   # (exact differences)
        assert layer.scale == pytest.approx(lr_mul / math.sqrt(fan_in))
        x = torch.randn(4096, fan_in, dtype=torch.float64)
        assert layer(x).std().item() == pytest.approx(1.0, rel=0.1)   # unit gain at init
        assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.1)
        # one Adam step moves every stored weight by about lr, so the weight used moves by
        # lr * scale: relative to its size (1/sqrt(fan_in)), lr * lr_mul, whatever the fan-in
        used = (layer.weight * layer.scale).detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3, eps=1e-15)   # (no eps effect)
        layer(x[:8]).pow(2).sum().backward()
        opt.step()
        delta = (layer.weight * layer.scale).detach() - used
        assert torch.allclose(delta.abs() / layer.scale, torch.full_like(delta, 1e-3), rtol=1e-2)
        assert (delta.abs() * math.sqrt(fan_in)).mean().item() == pytest.approx(1e-3 * lr_mul,
                                                                                  rel=1e-2)
    conv = EqualizedConv2d(8, 4, 3, gain=math.sqrt(2))
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 9))


# -- modulation and demodulation ------------------------------------------------------------
def test_demodulation_gives_unit_output_variance_for_unit_input():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=8)
    with torch.no_grad():
        conv.affine.weight.mul_(3.0)              # styles far from 1: the input is rescaled
    x = torch.randn(4, 64, 48, 48)
    w = torch.randn(4, 8)
    y = conv(x, w)[:, :, 1:-1, 1:-1]             # inside the zero padding
    std = y.std(dim=(2, 3))                      # per item and output channel
    assert std.mean().item() == pytest.approx(1.0, abs=0.03)
    assert (std - 1).abs().max() < 0.1
    conv.demodulate = False                      # without it the scale follows the styles
    assert (conv(x, w)[:, :, 1:-1, 1:-1].std(dim=(2, 3)) - 1).abs().max() > 0.3


# -- R1 ------------------------------------------------------------------------------------
def test_r1_equals_a_hand_computation_on_a_quadratic_critic():
    # D(x) = a * sum(x^2): grad = 2 a x, |grad|^2 = 4 a^2 |x|^2
    a = torch.tensor(0.3, requires_grad=True)
    x = torch.randn(5, 2, 3, 3)
    r1 = r1_penalty(lambda t: a * t.pow(2).flatten(1).sum(1), x)
    norms = x.flatten(1).pow(2).sum(1)
    assert r1.item() == pytest.approx((4 * 0.09 * norms).mean().item(), rel=1e-5)
    r1.backward()                                 # d/da = 8 a mean |x|^2: it trains the critic
    assert a.grad.item() == pytest.approx((8 * 0.3 * norms).mean().item(), rel=1e-5)
    model = build(augment="none", r1_gamma=4.0, r1_every=16)
    out = model.r1_loss({"x": torch.rand(4, 3, 16, 16)})
    assert out["loss"].item() == pytest.approx(out["r1"].item() * 4.0 / 2 * 16, rel=1e-6)


# -- path length ---------------------------------------------------------------------------
def test_path_length_mean_updates_as_an_ema():
    torch.manual_seed(0)
    model = build(pl_decay=0.1)
    assert model.pl_mean.item() == 0
    means = []
    for _ in range(3):
        before = model.pl_mean.item()
        out = model.path_length_loss({"x": torch.rand(8, 3, 16, 16)})
        a = out["path_length"].item()
        assert model.pl_mean.item() == pytest.approx(before + 0.1 * (a - before), rel=1e-5)
        means.append(model.pl_mean.item())
        assert out["loss"].item() == pytest.approx(out["pl_penalty"].item() * 2.0 * 4, rel=1e-5)
    assert 0 < means[0] < means[1] < means[2]


# -- truncation and style mixing -----------------------------------------------------------
def test_truncation_at_psi_zero_gives_w_avg_for_every_z():
    model = build()
    with torch.no_grad():
        model.G.mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(6, 8)
    w0 = model.styles(z, psi=0.0)
    assert torch.allclose(w0, model.G.mapping.w_avg.expand(6, -1))
    w1, wh = model.styles(z, 1.0), model.styles(z, 0.5)
    assert torch.allclose(wh, model.G.mapping.w_avg + 0.5 * (w1 - model.G.mapping.w_avg), atol=1e-6)
    x = model.eval().sample(3, torch.Generator().manual_seed(0), psi=0.0)
    assert x.shape == (3, 3, 16, 16)


def test_w_avg_follows_the_mapped_codes_in_training():
    model = build(w_avg_beta=0.5)
    torch.manual_seed(1)
    model.generator_loss({"x": torch.rand(4, 3, 16, 16)})
    assert model.G.mapping.w_avg.abs().sum() > 0


def test_style_mixing_crosses_over_at_the_drawn_layer():
    model = build(style_mixing=1.0)
    L = model.G.num_ws
    assert L == 6
    torch.manual_seed(3)
    ws, cutoff = model.draw_styles(4)
    assert 1 <= cutoff < L
    torch.manual_seed(3)                           # the same draws, by hand
    w1 = model.G.mapping(model.prior(4))
    assert float(torch.rand(())) < 1.0             # the coin: mix (probability 1)
    drawn = int(torch.randint(1, L, ()))
    w2 = model.G.mapping(model.prior(4))
    assert drawn == cutoff
    assert torch.equal(ws[:, :cutoff], w1[:, None].expand(-1, cutoff, -1))
    assert torch.equal(ws[:, cutoff:], w2[:, None].expand(-1, L - cutoff, -1))
    # and the image reads w2 only from that layer on: earlier layers have no gradient to it
    ws = mix_styles(w1.detach(), w1.detach(), L, L).requires_grad_(True)
    model.G.synthesis(ws, torch.Generator().manual_seed(0)).sum().backward()
    assert all(ws.grad[:, i].abs().sum() > 0 for i in range(L))
    never = build(style_mixing=0.0)
    assert never.draw_styles(4)[1] == never.G.num_ws


# -- the objectives ------------------------------------------------------------------------
def test_lazy_regularisers_run_on_their_steps_through_the_players_optimisers():
    model = build(r1_every=4, pl_every=3, augment="none")
    calls = []
    for name in ("critic_loss", "r1_loss", "generator_loss", "path_length_loss"):
        fn = getattr(model, name)
        setattr(model, name, lambda b, fn=fn, name=name: (calls.append(name), fn(b))[1])
    trainer = Trainer(model, images(), TrainConfig(steps=7, batch_size=8, progress=False))
    names = [o.name for o in trainer.objectives]
    assert names == ["critic", "r1", "generator", "path_length"]
    assert len(trainer.optimizers) == 2 and trainer._opt[1] is trainer._opt[0]
    assert trainer._opt[3] is trainer._opt[2]
    c_d, c_g = 4 / 5, 3 / 4                         # Adam rescaled for the lazy intervals
    d, g = trainer.objectives[0], trainer.objectives[2]
    assert d.lr == pytest.approx(0.002 * c_d) and d.betas[1] == pytest.approx(0.99 ** c_d)
    assert g.lr == pytest.approx(0.002 * c_g) and g.betas[1] == pytest.approx(0.99 ** c_g)
    trainer.fit()
    assert calls.count("critic_loss") == 7 and calls.count("generator_loss") == 7
    assert calls.count("r1_loss") == 2 and calls.count("path_length_loss") == 3   # 0,4 / 0,3,6


def test_ema_averages_the_generator_only():
    model = build()
    trainer = Trainer(model, images(), TrainConfig(steps=1, batch_size=8, progress=False,
                                                   ema_decay=0.9))
    keys = list(trainer.ema.shadow)
    assert keys and all(k.startswith("G.") for k in keys)
    assert any(k.startswith("G.mapping.") for k in keys)


# -- augmentation --------------------------------------------------------------------------
def test_diffaugment_ops_move_content_and_are_differentiable_twice():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1
    moved = translation(x)
    assert moved.shape == x.shape and (moved.sum((1, 2, 3)) <= 16).all()
    assert not torch.equal(moved, x) and (moved.flatten(1).argmax(1) != x.flatten(1).argmax(1)).any()
    holed = cutout(torch.ones(8, 1, 16, 16))
    assert ((holed == 0).flatten(1).sum(1) > 0).all()
    aug = Augment().train()
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    r1 = r1_penalty(lambda t: aug(t).pow(2).sum((1, 2, 3)), x)    # a gradient of a gradient
    r1.backward()
    assert torch.isfinite(r1) and r1 > 0
    assert torch.equal(aug.eval()(x), x)            # held-out scores see plain images


def test_auto_augmentation_is_diffaugment_on_small_sets_and_off_on_large_ones():
    from genzoo.models.gan.stylegan2 import SMALL_DATA
    small, large = build(size=SMALL_DATA - 1), build(size=SMALL_DATA)
    assert small.augmentation == "diffaugment" and isinstance(small.augment, Augment)
    assert not small.augment.adaptive and small.augment.p.item() == 1.0
    assert large.augmentation == "none" and large.augment is None
    assert build(size=0).augmentation == "diffaugment"              # size not known: small
    assert build(size=SMALL_DATA, augment="diffaugment").augment is not None  # a choice stands
    assert build(size=100, augment="none").augment is None
    # the run's data size reaches the family (and is saved with the run)
    info = DataInfo.of(images(n=24))
    assert info.size == 24 and DataInfo.from_dict(info.to_dict()).size == 24
    assert DataInfo.from_dict({"modality": "image", "shape": [3, 8, 8]}).size == 0


def test_ada_raises_p_when_d_is_sure_of_the_reals_and_lowers_it_otherwise():
    ada = Augment(adaptive=True, target=0.6, kimg=0.1, interval=2)   # 100 images: 0 -> 1
    assert ada.p.item() == 0
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(ada.train()(x), x)            # p = 0: no augmentation yet
    for _ in range(2):
        ada.observe(torch.ones(10))                 # r_t = 1 > 0.6
    assert ada.p.item() == pytest.approx(20 / 100)
    ada.observe(torch.ones(10))
    assert ada.p.item() == pytest.approx(0.2)       # only every `interval` updates
    ada.observe(-torch.ones(30))                    # r_t = (10 - 30) / 40 < 0.6
    assert ada.p.item() == pytest.approx(0.2 - 40 / 100 if 0.2 > 0.4 else 0.0)
    fixed = Augment()
    fixed.observe(torch.ones(10))
    assert fixed.p.item() == 1.0


def test_minibatch_stddev_appends_the_group_spread():
    mb = MinibatchStdDev(group_size=2)
    same = torch.ones(4, 3, 2, 2)
    assert torch.allclose(mb(same)[:, 3], torch.full((4, 2, 2), 1e-4))     # sqrt(1e-8)
    x = torch.arange(4.0)[:, None, None, None].expand(4, 3, 2, 2)         # groups {0,2}, {1,3}
    assert torch.allclose(mb(x)[:, 3], torch.ones(4, 2, 2), atol=1e-4)
    assert mb(torch.randn(3, 3, 2, 2)).shape == (3, 4, 2, 2)              # 3 items: groups of 1


# -- resume --------------------------------------------------------------------------------
def test_resume_is_exact_across_the_lazy_counters_and_ada(tmp_path):
    data = images()

    def trainer(folder, steps):
        torch.manual_seed(0)
        model = build(r1_every=4, pl_every=3, augment="ada", ada_kimg=0.05, ada_interval=1)
        run = RunDir(folder) if (folder / "config.yaml").exists() else \
            RunDir.create(folder, {"family": "stylegan2"})
        return Trainer(model, data, TrainConfig(steps=steps, batch_size=8, progress=False,
                                                ema_decay=0.9, seed=2), run=run)
    ref, got, _ = resumed_and_uninterrupted(tmp_path, trainer, steps=9, cut=5)
    assert ref["model.pl_mean"] > 0 and 0 < ref["model.augment.p"] <= 1
    assert any(k.startswith("ema.G.") for k in ref)


def test_cli_trains_shows_and_samples_with_truncation(image_npz, tmp_path):
    from genzoo.cli import main
    import numpy as np
    out = tmp_path / "run"
    assert main(["train", "stylegan2", "--data", str(image_npz), "--preset", "tiny",
                 "--steps", "3", "--batch-size", "8", "--out", str(out), "--no-progress"]) == 0
    for f in ("samples.png", "memorisation.png", "memorisation.json", "style_mixing.png",
              "truncation.png", "interpolation.png", "curves.png"):
        assert (out / "showcase" / f).is_file(), f
    assert main(["sample", str(out), "-n", "3", "--psi", "0", "--out", str(tmp_path / "s")]) == 0
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (3, 8, 8, 1)


def test_style_bands_split_the_layers_as_the_paper_does():
    from genzoo.viz.stylegan import style_bands
    assert style_bands(18) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}   # 1024
    assert style_bands(8) == {"coarse": (0, 4), "middle": (4, 6), "fine": (6, 8)}     # 32
    assert style_bands(4) == {"coarse": (0, 2), "fine": (2, 4)}                       # 8
