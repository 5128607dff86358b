"""ProGAN: the growing schedule, fade-in of both networks and of the reals, pixel norm, the
WGAN-GP + drift loss, the count of images shown, exact resume mid fade-in."""
from __future__ import annotations

import pytest
import torch

from conftest import resumed_and_uninterrupted
from genzoo import config as C
from genzoo import registry
from genzoo.data.dataset import TensorDataset
from genzoo.models.base import DataInfo
from genzoo.nn.equalized import pixel_norm
from genzoo.nn.progressive import downsample, schedule, upsample
from genzoo.training.run import RunDir
from genzoo.training.trainer import TrainConfig, Trainer

TINY = dict(image_size=16, z_dim=8, channel_base=64, channel_max=8, images_per_phase=16)


def build(**settings):
    entry = registry.get("progan")
    return entry.cls(C.from_dict(entry.config, {**TINY, **settings}, "progan"),
                     DataInfo("image", (3, 16, 16)))


def images(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(x=(torch.rand(n, 3, 16, 16, generator=g) * 255).to(torch.uint8),
                         modality="image", source="t")


def test_the_schedule_counts_images_shown():
    T = 100
    assert schedule(0, T, 3) == (0, 1.0) and schedule(99, T, 3) == (0, 1.0)
    assert schedule(100, T, 3) == (1, 0.0)                   # 8x8 starts fading in
    assert schedule(150, T, 3) == (1, 0.5)
    assert schedule(200, T, 3) == (1, 1.0) and schedule(299, T, 3) == (1, 1.0)   # stabilise
    assert schedule(325, T, 3) == (2, 0.25)
    assert schedule(700, T, 3) == (3, 1.0) and schedule(10 ** 9, T, 3) == (3, 1.0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_generator_fade_in_mixes_the_two_resolutions_by_alpha(alpha):
    model = build()
    G = model.G
    z = torch.randn(3, 8)
    h = G.features(z, 2)
    new, old = G.to_rgb[2](h[2]), upsample(G.to_rgb[1](h[1]))
    out = G(z, 2, alpha)
    assert out.shape == (3, 3, 16, 16)
    assert torch.allclose(out, alpha * new + (1 - alpha) * old, atol=1e-6)
    if alpha == 0:                # at the start of a fade the image is the last level's, enlarged
        assert torch.allclose(out, upsample(G(z, 1)), atol=1e-6)


def test_discriminator_fade_in_mixes_the_two_paths_by_alpha():
    model = build()
    D = model.D
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(D(x, 2, 0.0), D(downsample(x), 1, 1.0), atol=1e-5)
    d0, d1 = D(x, 2, 0.0), D(x, 2, 1.0)
    assert not torch.allclose(d0, d1)
    assert D(downsample(downsample(x)), 0).shape == (4,)


def test_reals_are_shown_at_the_current_resolution_and_faded_alike():
    model = build()
    x = torch.rand(2, 3, 16, 16)
    assert model.real({"x": x}).shape == (2, 3, 4, 4)
    model.shown.fill_(16 + 4)                      # level 1, alpha 0.25
    assert model.stage() == (1, 0.25)
    x8 = downsample(x * 2 - 1, 2)
    want = 0.25 * x8 + 0.75 * upsample(downsample(x8))
    assert torch.allclose(model.real({"x": x}), want, atol=1e-6)
    assert model.sample(2).shape == (2, 3, 16, 16)         # always the data's side
    low = model.sample_at(2, 0)                             # 4x4, pixels repeated 4x
    assert torch.equal(low, low[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3))


def test_pixel_norm_gives_each_pixel_unit_mean_square():
    x = torch.randn(2, 5, 3, 3) * 7
    assert torch.allclose(pixel_norm(x).pow(2).mean(1), torch.ones(2, 3, 3), atol=1e-5)


def test_critic_loss_is_wgan_gp_plus_drift_and_counts_the_reals():
    model = build(drift=0.5)
    torch.manual_seed(0)
    out = model.critic_loss({"x": torch.rand(6, 3, 16, 16)})
    want = -out["wasserstein"] + 10.0 * out["gradient_penalty"] + 0.5 * out["drift"]
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert int(model.shown) == 6 and out["resolution"] == 4


def test_training_grows_to_the_data_size():
    model = build(images_per_phase=8)
    trainer = Trainer(model, images(), TrainConfig(steps=10, batch_size=8, progress=False,
                                                   log_every=1))
    seen = []
    for _ in range(10):
        logs = trainer.train_step()
        seen.append((int(logs["critic/resolution"]), float(logs["critic/alpha"])))
        assert all(torch.isfinite(v) for v in logs.values())
    assert seen[0] == (4, 1.0) and (8, 0.0) in seen and (16, 0.0) in seen and seen[-1] == (16, 1.0)
    assert int(model.shown) == 80 and model.stage() == (2, 1.0)


def test_resume_is_exact_mid_fade_in_and_across_a_resolution_change(tmp_path):
    data = images()

    def trainer(folder, steps):
        torch.manual_seed(0)
        run = RunDir(folder) if (folder / "config.yaml").exists() else \
            RunDir.create(folder, {"family": "progan"})
        return Trainer(build(images_per_phase=16), data,
                       TrainConfig(steps=steps, batch_size=8, progress=False, ema_decay=0.9,
                                   seed=1), run=run)
    # 8 images a step, 16 a phase: level 1 fades in over steps 2-3, level 2 over steps 6-7
    ref, got, desc = resumed_and_uninterrupted(tmp_path, trainer, steps=9, cut=3)
    assert schedule(3 * 8, 16, 2) == (1, 0.5)                   # the cut is mid fade-in
    assert int(ref["model.shown"]) == 72 and schedule(72, 16, 2) == (2, 1.0)


def test_cli_trains_and_shows_one_row_per_resolution_reached(image_npz, tmp_path):
    from genzoo.cli import main
    out = tmp_path / "run"
    assert main(["train", "progan", "--data", str(image_npz), "--preset", "tiny",
                 "--image-size", "16", "--steps", "6", "--batch-size", "8", "--out", str(out),
                 "--no-progress"]) == 0
    for f in ("samples.png", "memorisation.png", "memorisation.json", "growth.png", "curves.png"):
        assert (out / "showcase" / f).is_file(), f
