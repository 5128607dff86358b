"""VQ-GAN: the adaptive weight, the PatchGAN switched on after its warm-up, the perceptual
distance in a trained network's feature maps, exact resume across the switch, and the chain
feature network -> VQ-GAN -> prior through the command line."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import resumed_and_uninterrupted
from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.vq.vqgan import PRESETS, VQGAN, VQGANConfig
from genzoo.nn.vqgan import FeatureTaps, PatchDiscriminator, adaptive_weight, perceptual_distance
from genzoo.training import TrainConfig, Trainer
from genzoo.training.run import RunDir


def vqgan(info: DataInfo, components=None, **kw) -> VQGAN:
    torch.manual_seed(0)
    return VQGAN(C.from_dict(VQGANConfig, {**PRESETS["tiny"], **kw}), info, components)


def test_adaptive_weight_on_a_toy_decoder():
    # a one-layer "decoder" x_hat = W z; L_rec = |x_hat - x|^2 and L_GAN = -sum(c * x_hat)
    torch.manual_seed(0)
    last = nn.Linear(3, 4, bias=False)
    z, x, c = torch.randn(5, 3), torch.randn(5, 4), torch.randn(4)
    x_hat = last(z)
    l_rec = (x_hat - x).pow(2).sum()
    l_gan = -(x_hat * c).sum()
    g_rec = (2 * (x_hat - x)).t() @ z               # dL/dW by hand, (4, 3)
    g_gan = -c[:, None] * z.sum(0)[None, :]
    want = g_rec.norm() / (g_gan.norm() + 1e-4)
    lam = adaptive_weight(l_rec, l_gan, last.weight)
    assert lam.item() == pytest.approx(want.item(), rel=1e-5) and not lam.requires_grad
    assert adaptive_weight(l_rec, 0 * l_gan, last.weight).item() == pytest.approx(1e4)  # clamp
    (l_rec + lam * l_gan).backward()                 # the graph is still there for the loss


def test_patch_discriminator_scores_patches():
    D = PatchDiscriminator(3, width=8, layers=3)
    assert D(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)       # 70x70 patches, overlapping
    assert PatchDiscriminator(1, 8, 1)(torch.randn(2, 1, 16, 16)).shape == (2, 1, 6, 6)


def test_discriminator_switches_on_after_its_warm_up(image_data):
    model = vqgan(DataInfo.of(image_data), disc_start=3)
    trainer = Trainer(model, image_data, TrainConfig(steps=5, batch_size=16, progress=False))
    d_opt = trainer.optimizers[1]
    before = {k: v.clone() for k, v in model.D.state_dict().items()}
    logs = [trainer.train_step() for _ in range(3)]
    assert all("autoencoder/adaptive_weight" not in l and "discriminator/loss" not in l
               for l in logs)
    assert all(torch.equal(before[k], v) for k, v in model.D.state_dict().items())  # untouched
    assert len(d_opt.state) == 0                      # its optimiser has not even started
    on = trainer.train_step()
    assert on["autoencoder/adaptive_weight"] > 0 and "autoencoder/g_loss" in on
    assert on["discriminator/loss"] > 0 and len(d_opt.state) > 0
    assert model.steps_done == 4


def test_perceptual_distance_compares_feature_maps_and_passes_gradients():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2),
                        nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 7 * 7, 3), nn.ReLU())
    taps = FeatureTaps(net, net)
    x = torch.rand(2, 1, 16, 16)
    assert [m.shape for m in taps(x)] == [(2, 4, 16, 16), (2, 4, 7, 7)]   # 4-d maps only
    assert torch.equal(perceptual_distance(taps, x, x), torch.zeros(2))
    x_hat = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    d = perceptual_distance(taps, x, x_hat)
    assert (d > 0).all()
    d.sum().backward()
    assert x_hat.grad.abs().sum() > 0
    assert taps.maps == [] and net(x).shape == (2, 3)          # hooks record only when asked


def test_a_perceptual_network_must_have_features_and_the_data_channels(image_data):
    info = DataInfo.of(image_data)

    class NoFeatures(nn.Module):
        family_name = "toy"
    with pytest.raises(GenzooError, match="no features"):
        vqgan(info, {"perceptual": NoFeatures()}, perceptual="runs/x")

    class Colour(nn.Module):
        family_name = "classifier"
        data = DataInfo("image", (3, 16, 16))

        def features(self, x):
            return x
    with pytest.raises(GenzooError, match="3-channel"):
        vqgan(info, {"perceptual": Colour()}, perceptual="runs/x")


def test_resume_is_exact_across_the_discriminator_switching_on(tmp_path, image_data):
    def make(folder, steps):
        model = vqgan(DataInfo.of(image_data), disc_start=4)
        run = RunDir(folder) if (folder / "config.yaml").exists() else \
            RunDir.create(folder, {"family": "vqgan"})
        return Trainer(model, image_data, TrainConfig(steps=steps, batch_size=16, progress=False,
                                                      seed=3), run=run)
    ref, got, desc = resumed_and_uninterrupted(tmp_path, make, steps=7, cut=3)
    assert desc["step"] == 7 and float(ref["model.lam"]) > 0
    assert "model.steps_done" not in got           # the Trainer's step count is the count


def test_a_checkpoint_with_the_old_step_buffer_still_loads(image_data):
    model = vqgan(DataInfo.of(image_data))
    state = {**model.state_dict(), "steps_done": torch.tensor(5)}
    assert model.load_state_dict(state, strict=True)  # the stale count is dropped


def test_the_chain_trains_through_the_cli(image_npz, tmp_path):
    from genzoo.cli import main
    from genzoo.config import read_yaml
    quiet = ["--no-progress", "--preset", "tiny", "--steps", "4"]
    assert main(["train", "classifier", "--data", str(image_npz), "--out", "feat", *quiet]) == 0
    assert main(["train", "vqgan", "--data", str(image_npz), "--out", "vqgan", *quiet,
                 "--set", "perceptual=feat"]) == 0
    desc = read_yaml(tmp_path / "vqgan" / "config.yaml")
    assert desc["components"]["perceptual"]["family"] == "classifier"
    records = (tmp_path / "vqgan" / "metrics.jsonl").read_text()
    assert "autoencoder/perceptual" in records and "autoencoder/adaptive_weight" in records
    for f in ("reconstructions.png", "codebook_usage.png", "codebook_sizes.png", "curves.png"):
        assert (tmp_path / "vqgan" / "showcase" / f).is_file(), f
    assert main(["train", "vq_prior", "--data", str(image_npz), "--out", "prior", *quiet,
                 "--set", "first_stage=vqgan"]) == 0
    for f in ("samples_by_temperature.png", "memorisation.png", "memorisation.json"):
        assert (tmp_path / "prior" / "showcase" / f).is_file(), f
    assert main(["sample", "prior", "-n", "3", "--out", "s"]) == 0
    import numpy as np
    assert np.load(tmp_path / "s.npz")["x"].shape == (3, 16, 16, 1)


def test_nearest_restricted_to_some_codes_chooses_among_them_only(image_data):
    model = vqgan(DataInfo.of(image_data)).eval()
    z_e = model.encode(image_data.x[:8])
    K = model.config.codebook_size
    free = model.quantizer.nearest(z_e)
    allowed = torch.zeros(K, dtype=torch.bool)
    allowed[[1, 3]] = True
    k = model.quantizer.nearest(z_e, allowed)
    assert set(k.unique().tolist()) <= {1, 3}
    assert torch.equal(model.quantizer.nearest(z_e, torch.ones(K, dtype=torch.bool)), free)
