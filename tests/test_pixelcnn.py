"""PixelCNN: masks, causality by gradient, exact windowed sampling, likelihood in bits/dim."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig, quantize
from genzoo.nn.likelihood import bits_per_dim
from genzoo.nn.masked import MaskedConv2d, causal_mask
from genzoo.training import TrainConfig, Trainer

TINY = dict(filters=12, kernel_size=3, residual_blocks=2, output_layers=1)


def tiny(colours=1, side=6, levels=4, **kw):
    torch.manual_seed(0)
    return PixelCNN(PixelCNNConfig(levels=levels, image_size=side, **{**TINY, **kw}),
                    DataInfo("image", (colours, side, side)))


def test_masks_of_type_a_and_b():
    a = causal_mask("A", 1, 1, 3)[0, 0]
    b = causal_mask("B", 1, 1, 3)[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    # colour: 3 input colours -> 6 features (2 per colour); at the centre R sees nothing (A),
    # G sees R, B sees R and G; type B also lets a colour see itself
    centre_a = causal_mask("A", 3, 6, 3, colours=3)[:, :, 1, 1]
    assert centre_a.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]
    centre_b = causal_mask("B", 6, 3, 1, colours=3)[:, :, 0, 0]
    assert centre_b.tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    with pytest.raises(ValueError, match="mask type"):
        causal_mask("C", 1, 1, 3)
    # the mask is applied in the forward pass, whatever the weights become
    conv = MaskedConv2d(1, 1, 3, "A")
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0                              # only the centre pixel is on
    assert conv(x)[0, 0, 1, 1] == 0                  # type A: the centre does not see itself
    assert "mask" not in conv.state_dict()           # derived, so not in checkpoints


@pytest.mark.parametrize("colours", [1, 3])
def test_no_output_depends_on_its_own_or_a_later_subpixel(colours):
    """Gradient of the logits at every (i, j, colour c) w.r.t. the input: zero at every later
    pixel and, at (i, j) itself, at colours >= c (R -> G -> B); non-zero at the pixel to the
    left and at the earlier colours of the same pixel (so the test can see a dependence)."""
    model = tiny(colours)
    K, side = model.config.levels, 6
    x = torch.rand(8, colours, side, side, requires_grad=True)   # 8 images: no ReLU dead for all
    out = model.net(x).view(8, colours, K, side, side)
    for i in range(side):
        for j in range(side):
            for c in range(colours):
                (g,) = torch.autograd.grad(out[:, c, :, i, j].sum(), x, retain_graph=True)
                g = g.abs().sum(0)                               # (C, H, W)
                assert torch.all(g.flatten(1)[:, i * side + j + 1:] == 0), (i, j, c)
                assert torch.all(g[c:, i, j] == 0) and torch.all(g[:c, i, j] > 0), (i, j, c)
                if j > 0:
                    assert g[:, i, j - 1].sum() > 0, (i, j, c)


def test_windowed_logits_equal_the_full_pass():
    model = tiny(colours=3, side=12).eval()
    assert model.reach == 1 + 2 * 1            # 3x3 A layer + one 3x3 per residual block
    k = torch.randint(0, 4, (2, 3, 12, 12))
    full = model.logits(k)
    for i, j in [(0, 0), (5, 7), (11, 0), (11, 11), (3, 10)]:
        torch.testing.assert_close(model.window_logits(k, i, j), full[:, :, :, i, j],
                                   rtol=1e-5, atol=1e-5)


def test_quantisation_levels_and_round_trip():
    v = torch.arange(256).float() / 255
    k = quantize(v, 4)
    assert k.tolist() == [i // 64 for i in range(256)]
    for K in (2, 3, 4, 16, 256):
        levels = torch.arange(K).float() / (K - 1)    # what sample() returns
        assert quantize(levels, K).tolist() == list(range(K))


def test_an_untrained_uniform_model_has_log2_k_bits_and_both_ways_agree():
    model = tiny(levels=16)
    x = torch.rand(5, 1, 6, 6)
    with torch.no_grad():
        out = model.loss({"x": x})
        two = bits_per_dim(model.log_prob(x), 36, continuous=False).mean()
    torch.testing.assert_close(out["bpd"], two)
    last = model.net[-1]
    with torch.no_grad():                      # zero logits: every level has p = 1/16
        last.weight.zero_()
        last.bias.zero_()
        assert float(model.loss({"x": x})["bpd"]) == pytest.approx(4.0, abs=1e-6)


def test_loss_goes_down_on_a_tiny_set(image_data):
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(filters=16, residual_blocks=1, lr=2e-3), DataInfo.of(image_data))
    trainer = Trainer(model, image_data, TrainConfig(steps=40, batch_size=32, progress=False))
    first = float(trainer.train_step()["bpd"])
    trainer.fit()
    assert trainer.last_metrics["bpd"] < 0.6 * first


def test_sampling_levels_seeds_temperature_and_completion():
    model = tiny(colours=3, levels=4)
    g = lambda s: torch.Generator().manual_seed(s)   # noqa: E731
    a = model.sample(3, generator=g(1))
    assert a.shape == (3, 3, 6, 6)
    assert set(torch.unique(a * 3).round().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert torch.equal(a, model.sample(3, generator=g(1)))
    assert not torch.equal(a, model.sample(3, generator=g(2)))
    # a cold temperature concentrates the draw on the most likely level
    cold = model.sample(3, generator=g(1), temperature=1e-3)
    assert torch.equal(cold, model.sample(3, generator=g(5), temperature=1e-3))
    with pytest.raises(GenzooError, match="temperature"):
        model.sample(1, temperature=0)
    x = torch.rand(2, 3, 6, 6)
    done = model.complete(x, 3, g(0))
    assert torch.equal(done[:, :, :3], quantize(x, 4)[:, :, :3].float() / 3)


def test_train_and_sample_from_the_command_line(image_npz, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "pixelcnn", "--data", str(image_npz), "--steps", "2", "--batch-size", "8",
                 "--set", "filters=8", "--set", "residual_blocks=1", "--set", "image_size=8",
                 "--set", "train.sample_every=0", "--out", str(run), "--no-progress"]) == 0
    for name in ("samples_by_temperature.png", "completions.png", "bits_per_pixel.png"):
        assert (run / "showcase" / name).is_file()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    bpd = [m["val/bpd"] for m in logged if "val/bpd" in m]
    assert bpd and 0 < bpd[-1] < 8
    out = tmp_path / "s"
    assert main(["sample", str(run), "-n", "2", "--temperature", "0.7", "--out", str(out)]) == 0
    x = np.load(out.with_suffix(".npz"))["x"]
    assert x.shape == (2, 8, 8, 1) and set(np.unique(x)) <= {0, 85, 170, 255}


def test_not_images_is_a_clear_error():
    with pytest.raises(GenzooError, match="pixelcnn: needs images"):
        PixelCNN(PixelCNNConfig(), DataInfo("points", (2,)))
    from genzoo import config as C
    with pytest.raises(GenzooError, match="levels must be in 2..256"):
        C.from_dict(PixelCNNConfig, {"levels": 300})
    assert math.isclose(PixelCNNConfig().levels, 4)
