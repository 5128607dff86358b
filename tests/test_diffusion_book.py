"""The book's DDIM (Foster, "Generative Deep Learning", 2nd ed., ch. 8): the `book` preset
builds that network and recipe exactly, and trains and samples."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.diffusion.ddpm import Diffusion, DiffusionConfig
from genzoo.models.diffusion.unet import BookResidualBlock, BookUNet
from genzoo.nn.embeddings import geometric_sinusoidal_embedding
from genzoo.training import TrainConfig, Trainer

BOOK = {k: v for k, v in Diffusion.presets["book"].items() if "." not in k}   # model settings


def book(data: DataInfo, **kw) -> Diffusion:
    return Diffusion(C.from_dict(DiffusionConfig, {**BOOK, **kw}), data)


def test_the_book_network_has_the_books_parameter_count():
    """Counted by hand from the book's Keras code, layer by layer (kernel + bias):
    conv_in 1x1 3->32: 128. Down 32 (in 32 + 32 embedding): 29,792 + 18,496; down 64: 57,536 +
    73,856; down 96: 144,672 + 166,080; bottleneck 128: 270,720 + 295,168; up 96 (224, 192 in):
    298,272 + 267,552; up 64 (160, 128): 139,456 + 118,976; up 32 (96, 64): 40,032 + 29,792;
    conv_out 1x1 32->3: 99. The BN layers have no centre or scale, so no trainable weights."""
    model = book(DataInfo("image", (3, 64, 64)))
    assert isinstance(model.net, BookUNet)
    assert sum(p.numel() for p in model.net.parameters()) == 1_950_627


def test_the_book_network_is_built_from_the_books_layers():
    net = book(DataInfo("image", (3, 64, 64))).net
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 * 3 * 2 + 2 and all(not m.affine for m in norms)
    assert not any(isinstance(m, nn.GroupNorm) for m in net.modules())
    assert isinstance(net.pool, nn.AvgPool2d) and net.upsample.mode == "bilinear"
    assert net.conv_in.kernel_size == (1, 1) and net.conv_out.kernel_size == (1, 1)
    first = net.down[0][0]
    assert isinstance(first, BookResidualBlock) and first.conv1.in_channels == 32 + 32
    assert [len(level) for level in (*net.down, net.mid, *net.up)] == [2] * 7
    cfg = DiffusionConfig(**{**BOOK, "widths": tuple(BOOK["widths"])})
    assert (cfg.schedule, cfg.discrete, cfg.loss, cfg.prediction, cfg.lr, cfg.weight_decay) == \
        ("offset_cosine", False, "l1", "eps", 1e-3, 1e-4)
    assert (cfg.image_size, cfg.sampler, cfg.sample_steps, cfg.clip_denoised) == (64, "ddim", 20, False)
    assert Diffusion.train_defaults["batch_size"] == 64 and Diffusion.train_defaults["ema_decay"] == 0.999


def test_the_embedding_is_the_books_frequencies_and_sees_the_noise_variance():
    x = torch.tensor([0.0, 0.3, 0.97])
    e = geometric_sinusoidal_embedding(x, 32)
    f = torch.exp(torch.linspace(0, math.log(1000), 16, dtype=torch.float64))  # 1 .. 1000
    angle = 2 * math.pi * f * x.double()[:, None]
    # float32 angles up to 2 pi 1000: sin and cos agree to the angle's rounding, ~5e-4
    torch.testing.assert_close(e.double(), torch.cat([angle.sin(), angle.cos()], 1), atol=2e-3, rtol=0)
    assert e[0, :16].abs().max() == 0 and (e[0, 16:] == 1).all()
    net = book(DataInfo("image", (3, 16, 16)), image_size=16, widths=[8, 16], bottleneck=16).net
    seen = []
    net.noise_variance = lambda t, _f=net.noise_variance: seen.append(_f(t)) or seen[-1]
    net(torch.zeros(2, 3, 16, 16), torch.tensor([0.0, 1.0]))
    # offset cosine: the signal rate runs from 0.95 to 0.02, so sigma^2 = 1 - rate^2
    torch.testing.assert_close(seen[0], torch.tensor([1 - 0.95 ** 2, 1 - 0.02 ** 2]))


def test_the_book_preset_trains_and_samples_and_refuses_labels(image_data):
    model = book(DataInfo.of(image_data), image_size=16, widths=[8, 16], bottleneck=16)
    x, t = torch.rand(2, 1, 16, 16), torch.tensor([0.2, 0.7])
    assert model.net(x, t).abs().max() == 0           # zero-initialised output conv
    trainer = Trainer(model, image_data, TrainConfig(steps=3, batch_size=16, progress=False))
    trainer.fit()
    assert math.isfinite(trainer.last_metrics["loss"])
    s = model.eval().sample(3, generator=torch.Generator().manual_seed(0), steps=4)
    assert s.shape == (3, 1, 16, 16) and s.min() >= 0 and s.max() <= 1
    with pytest.raises(GenzooError, match="unconditional"):
        book(DataInfo.of(image_data), conditional=True, image_size=16)
    with pytest.raises(GenzooError, match="no attention"):
        C.from_dict(DiffusionConfig, {**BOOK, "attention": [8]})
