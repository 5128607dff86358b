"""Diffusion samplers: an oracle network's point is recovered by every sampler, DDIM is
deterministic and invertible, golden values, and `genzoo sample` with any sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genzoo.cli import main
from genzoo.models.base import DataInfo
from genzoo.models.diffusion.ddpm import Diffusion, DiffusionConfig
from genzoo.models.diffusion.samplers import SAMPLERS, ddim, ddim_invert, levels
from genzoo.models.diffusion.schedules import Schedule

TINY = dict(widths=(8,), bottleneck=8, blocks=1, image_size=8, emb_dim=8)


class Oracle(nn.Module):
    """The perfect network for data that is one point x*: from x_t = alpha x* + sigma eps it
    reads off the true noise exactly, and answers as eps, x0 or v."""

    def __init__(self, model: Diffusion, x_star: torch.Tensor):
        super().__init__()
        self.model, self.x_star = [model], x_star        # a list: not a registered sub-module

    def forward(self, x_t, t, y=None):
        m = self.model[0]
        alpha, sigma = m._alpha_sigma(t)
        eps = (x_t - alpha * self.x_star) / sigma
        return {"eps": eps, "x0": self.x_star.expand_as(x_t),
                "v": alpha * eps - sigma * self.x_star}[m.config.prediction]


def oracle_model(prediction="eps", schedule="linear", discrete=True):
    model = Diffusion(DiffusionConfig(**TINY, prediction=prediction, schedule=schedule,
                                      discrete=discrete), DataInfo("image", (2, 4, 4)))
    model.data_mean.copy_(torch.tensor([0.3, 0.6]))               # as if measured on data
    model.data_sq.copy_(torch.tensor([0.3 ** 2 + 0.04, 0.6 ** 2 + 0.01]))
    x_star = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    model.net = Oracle(model, model.normalise(x_star))
    return model.eval(), x_star


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("prediction,schedule,discrete", [
    ("eps", "linear", True), ("x0", "cosine", False), ("v", "offset_cosine", False)])
def test_every_sampler_recovers_the_point_of_an_oracle(sampler, prediction, schedule, discrete):
    model, x_star = oracle_model(prediction, schedule, discrete)
    z = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    record: list = []
    steps = 1000 if sampler == "ddpm" else 7
    x = model.sample(3, torch.Generator().manual_seed(3), sampler=sampler, steps=steps,
                     noise=z, record=record)
    torch.testing.assert_close(x, x_star.expand(3, -1, -1, -1), atol=1e-4, rtol=0)
    assert len(record) == steps
    x_star_n = model.normalise(x_star)
    for r in record:            # every intermediate guess of x0 is the point itself
        torch.testing.assert_close(r["x0"], x_star_n.expand(3, -1, -1, -1), atol=2e-3, rtol=0)
    if sampler != "ddpm":       # the deterministic ones stay on the path x_t = alpha x* + sigma eps
        lv = levels(model.schedule, steps)
        eps = (z - lv[0][1] * x_star_n) / lv[0][2]
        for r, (_, a, s) in zip(record[:-1], lv[1:-1]):
            torch.testing.assert_close(r["x"], a * x_star_n + s * eps, atol=1e-4, rtol=0)


def random_net_model(**kw):
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(**{**TINY, **kw}), DataInfo("image", (1, 8, 8), 3, list("abc")))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():       # a fixed, non-trivial network (the real one starts at zero)
        for p in model.net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_ddim_is_deterministic_and_invertible():
    model = random_net_model()
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    a = model.sample(2, torch.Generator().manual_seed(1), sampler="ddim", steps=20, eta=0.0,
                     noise=z, label=1)
    b = model.sample(2, torch.Generator().manual_seed(2), sampler="ddim", steps=20, eta=0.0,
                     noise=z, label=1)
    assert torch.equal(a, b)
    c = model.sample(2, torch.Generator().manual_seed(2), sampler="ddim", steps=20, eta=1.0,
                     noise=z, label=1)
    assert (c - a).abs().max() > 1e-2          # eta = 1 draws fresh noise at each step
    with torch.no_grad():
        denoise = model.denoiser(torch.tensor([1, 1]), 1.0, clip=False)
        x0 = ddim(denoise, z, model.schedule, 20)
        z_back = ddim_invert(denoise, x0, model.schedule, 20)
    torch.testing.assert_close(z_back, z, atol=1e-4, rtol=0)


# x[0, 0, 0, :4] and x.sum() for each sampler: 4 steps, seed 0, eta 0.5, labels (0, 2) guided
# with w = 2, v-prediction under the discrete cosine schedule (T = 1000, betas from the
# unclamped curve, clipped at 0.999), on the fixed network above
GOLDEN = {
    "ddpm": ([-1.102502, -1.02856, -0.373085, 0.367487], -31.6748),
    "ddim": ([-1.459721, -1.214324, 0.07584, 0.076282], -22.80414),
    "dpm++2m": ([-1.089238, -0.791265, 0.64726, 0.188137], -25.56538),
}


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_sampler_golden_values(sampler):
    model = random_net_model(schedule="cosine", prediction="v")
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fn = SAMPLERS[sampler][0]
    with torch.no_grad():
        denoise = model.denoiser(torch.tensor([0, 2]), 2.0, clip=False)
        x = fn(denoise, z, model.schedule, 4, generator=torch.Generator().manual_seed(0), eta=0.5)
    head, total = GOLDEN[sampler]
    torch.testing.assert_close(x[0, 0, 0, :4], torch.tensor(head), atol=1e-5, rtol=0)
    assert x.sum().item() == pytest.approx(total, abs=1e-4)


def test_a_samplers_default_steps_never_exceed_a_short_discrete_schedule():
    model = Diffusion(DiffusionConfig(**TINY, T=30, sampler="ddim", sample_steps=5),
                      DataInfo("image", (1, 8, 8))).eval()
    record = []
    x = model.sample(2, torch.Generator().manual_seed(0), sampler="ddpm", record=record)
    assert x.shape == (2, 1, 8, 8) and len(record) == 30       # ddpm's 1000 -> every step of T


def test_timesteps_land_on_the_grid_and_end_clean():
    s = Schedule("linear", discrete=True)
    t = s.timesteps(10)
    assert t[0] == 1 and t[-1] == 0 and len(t) == 11
    torch.testing.assert_close(t * 1000, (t * 1000).round())
    lv = levels(s, 10)
    assert lv[-1][1] == 1 and lv[-1][2] == 0
    with pytest.raises(ValueError, match="steps 1001"):
        s.timesteps(1001)


def test_genzoo_sample_takes_every_sampler(image_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ddpm", "--data", str(image_npz), "--steps", "2", "--batch-size", "8",
                 "--set", "widths=[8]", "--set", "bottleneck=8", "--set", "blocks=1",
                 "--set", "image_size=16", "--set", "train.sample_every=0", "--out", str(run),
                 "--no-progress"]) == 0
    for name in ("reverse_process", "steps", "interpolation", "classes", "guidance"):
        assert (run / "showcase" / f"{name}.png").is_file(), name
    for sampler, steps in (("ddpm", 5), ("ddim", 3), ("dpm++2m", 3)):
        out = tmp_path / sampler
        assert main(["sample", str(run), "--sampler", sampler, "--steps", str(steps), "-n", "3",
                     "--eta", "0.5", "--guidance", "2", "--label", "1", "--out", str(out)]) == 0
        x = np.load(out.with_suffix(".npz"))["x"]
        assert x.shape == (3, 16, 16, 1) and x.dtype == np.uint8
    capsys.readouterr()
    for flag, value, message in (("--sampler", "euler", "--sampler 'euler': not one of ddpm, ddim, dpm++2m"),
                                 ("--steps", "ten", "--steps 'ten': not an integer"),
                                 ("--label", "9", "--label '9': not a class of this run")):
        assert main(["sample", str(run), flag, value, "-n", "1", "--out", str(tmp_path / "e")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err       # one line, before any sampling
    assert not (tmp_path / "e.png").exists()
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "dpm++2m" in capsys.readouterr().out
