"""VQ-VAE and its prior: the quantiser's gradients and EMA codebook, dead-code restarts,
perplexity, learning, causality of the prior by gradient, decoded samples, exact resume."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import resumed_and_uninterrupted
from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.vq.prior import VQPrior, VQPriorConfig
from genzoo.models.vq.vqvae import PRESETS, VQVAE, VQVAEConfig
from genzoo.nn.quantize import VectorQuantizer, perplexity
from genzoo.training import TrainConfig, Trainer
from genzoo.training.components import derive
from genzoo.training.description import Component
from genzoo.training.run import RunDir



def vqvae(info: DataInfo, **kw) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(C.from_dict(VQVAEConfig, {**PRESETS["tiny"], **kw}), info)


def codes_of(first: VQVAE, images) -> object:
    """The image set encoded through ``first``, as the road derives it for the next stage."""
    comp = Component("in-memory", "vqvae", 0, "none", "0" * 64)
    return derive(images, first.eval(), comp, progress=False, log=lambda *_: None)


def prior(first: VQVAE | None, codes, **kw) -> VQPrior:
    torch.manual_seed(0)
    cfg = C.from_dict(VQPriorConfig, {**VQPrior.presets["tiny"], **kw})
    return VQPrior(cfg, DataInfo.of(codes), {"first_stage": first} if first else None)


# -- the quantiser ---------------------------------------------------------------------------
def test_straight_through_gradient_reaches_the_encoder(image_data):
    vq = VectorQuantizer(8, 3)
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    q = vq(z_e)
    w = torch.randn_like(z_e)
    (q.z_q * w).sum().backward()
    assert torch.equal(z_e.grad, w)                 # the identity, backwards
    torch.testing.assert_close(q.z_q, vq.lookup(q.codes))   # forwards: the nearest code
    # in the model, the reconstruction alone trains the encoder through the quantiser
    model = vqvae(DataInfo.of(image_data))
    x = image_data.batch(torch.arange(8))["x"]
    x_hat, _ = model.autoencode(x)
    (x_hat - x).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters()
               if p.dim() > 1)


def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_encoder():
    vq = VectorQuantizer(8, 3, beta=0.25)
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    q = vq(z_e)
    g_z, g_e = torch.autograd.grad(q.codebook_loss, (z_e, vq.codebook), allow_unused=True)
    assert g_z is None or g_z.abs().sum() == 0
    assert g_e.abs().sum() > 0
    g_z, g_e = torch.autograd.grad(q.commitment_loss, (z_e, vq.codebook), allow_unused=True)
    assert g_e is None or g_e.abs().sum() == 0
    # d/dz of beta * mean ||z - e_k||^2 = 2 beta (z - e_k) / (number of elements)
    expected = 2 * 0.25 * (z_e - vq.lookup(q.codes)) / z_e.numel()
    torch.testing.assert_close(g_z, expected.detach())


def test_ema_codebook_update_matches_a_hand_computation():
    vq = VectorQuantizer(2, 1, beta=0.25, ema=True, decay=0.5, eps=0.1, restart_threshold=0)
    vq.set_codebook(torch.tensor([[0.0], [10.0]]))
    assert torch.equal(vq.cluster_sum, vq.codebook)
    assert not any(p.requires_grad for p in vq.parameters())    # moved by averages only
    z = torch.tensor([1.0, 2.0, 9.0]).view(1, 1, 1, 3)          # -> codes 0, 0, 1
    q = vq(z)
    assert q.codes.flatten().tolist() == [0, 0, 1]
    # commitment against the codebook before the update: 0.25 * (1 + 4 + 1) / 3
    assert float(q.commitment_loss) == pytest.approx(0.5)
    assert float(q.codebook_loss) == 0
    # n = (2, 1), s = (3, 9): N = 0.5 (1, 1) + 0.5 (2, 1), m = 0.5 (0, 10) + 0.5 (3, 9)
    torch.testing.assert_close(vq.cluster_size, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(vq.cluster_sum, torch.tensor([[1.5], [9.5]]))
    # Laplace: N' = (N + 0.1) / (2.5 + 2 * 0.1) * 2.5; e = m / N'
    e = torch.tensor([1.5 * 2.7 / (1.6 * 2.5), 9.5 * 2.7 / (1.1 * 2.5)])
    torch.testing.assert_close(vq.codebook.flatten(), e)
    vq.eval()                                       # evaluation changes nothing
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(torch.randn(1, 1, 3, 3))
    assert all(torch.equal(before[k], v) for k, v in vq.state_dict().items())


@pytest.mark.parametrize("ema", [False, True])
def test_dead_codes_restart_onto_encoder_outputs(ema):
    vq = VectorQuantizer(8, 2, ema=ema, restart_threshold=1.0)
    far = torch.full((8, 2), 100.0)
    far[0] = 0.0                                     # the only code near the data
    vq.set_codebook(far)
    z = torch.randn(4, 2, 4, 4)
    torch.manual_seed(1)
    q = vq(z)
    assert q.usage == 1 / 8 and float(q.perplexity) == pytest.approx(1.0)
    assert int(q.restarts) == 7
    rows = z.movedim(1, -1).reshape(-1, 2)
    for e in vq.codebook[1:]:                        # each dead code now sits on an output
        assert (rows - e).abs().sum(1).min() < 1e-6
    assert float(vq(z).perplexity) > 3              # and the next batch spreads over them
    again = VectorQuantizer(8, 2, ema=ema, restart_threshold=1.0)
    again.load_state_dict(vq.state_dict())
    torch.manual_seed(1)                             # the same RNG draws the same outputs
    torch.testing.assert_close(again(z).z_q, vq.eval()(z).z_q)
    off = VectorQuantizer(8, 2, ema=ema, restart_threshold=0)
    off.set_codebook(torch.full((8, 2), 100.0))
    assert int(off(z).restarts) == 0
    assert torch.allclose(off.codebook[1:], torch.tensor(100.0), atol=0.01)   # left alone


def test_perplexity_of_uniform_usage_is_k_and_of_one_code_is_one():
    K = 16
    vq = VectorQuantizer(K, 4).eval()
    z = vq.codebook.detach().T.reshape(1, 4, 4, 4)  # every code exactly once
    q = vq(z)
    assert sorted(q.codes.flatten().tolist()) == list(range(K))
    assert float(q.perplexity) == pytest.approx(K) and float(q.usage) == 1.0
    assert float(perplexity(torch.tensor([0.0, 5.0, 0.0]))) == pytest.approx(1.0)
    assert float(perplexity(torch.tensor([3.0, 3.0, 0.0, 0.0]))) == pytest.approx(2.0)


def test_quantiser_chooses_codes_in_float32_under_bf16_autocast():
    vq = VectorQuantizer(64, 8).eval()
    z = torch.randn(2, 8, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        q = vq(z.bfloat16())
    assert torch.equal(q.codes, vq(z.bfloat16().float()).codes)
    assert q.z_q.dtype == torch.float32


# -- the VQ-VAE ------------------------------------------------------------------------------
def test_shapes_codes_and_decoding(image_data):
    model = vqvae(DataInfo.of(image_data), downsamples=2).eval()
    x = image_data.batch(torch.arange(5))["x"]
    k = model.encode_codes(x)
    assert k.shape == (5, 4, 4) and k.dtype == torch.int64 and int(k.max()) < 32
    assert torch.equal(model.derive({"x": x})["x"], k)
    assert model.derived_meta() == {"codebook_size": 32, "code_shape": [4, 4]}
    img = model.decode_codes(k)
    assert img.shape == x.shape and 0 <= float(img.min()) and float(img.max()) <= 1
    g = lambda: torch.Generator().manual_seed(3)    # noqa: E731
    for codes in ("frequency", "uniform"):
        s = model.sample(6, generator=g(), codes=codes)
        assert s.shape == (6, 1, 16, 16) and torch.equal(s, model.sample(6, g(), codes=codes))
    with pytest.raises(GenzooError, match="codes must be"):
        model.sample(2, codes="prior")
    assert [o.name for o in VQVAE.sample_options] == ["codes"]


def test_recon_loss_falls_on_tiny_data(image_data):
    model = vqvae(DataInfo.of(image_data), lr=3e-3)
    trainer = Trainer(model, image_data, TrainConfig(steps=60, batch_size=32, progress=False))
    first = trainer.train_step()
    assert float(model.data_variance) > 0           # measured on the first batch
    trainer.fit()
    assert trainer.last_metrics["recon"] < 0.5 * float(first["recon"])
    held = model.eval().evaluate(image_data.batch(torch.arange(64)))
    assert {"recon_mse", "recon_nmse", "psnr", "perplexity", "usage"} <= set(held)
    assert float(held["perplexity"]) > 1


def test_bad_configs_and_data_are_clear_errors():
    with pytest.raises(GenzooError, match="image_size 30 must be divisible"):
        C.from_dict(VQVAEConfig, {"image_size": 30}, where="vqvae config")
    with pytest.raises(GenzooError, match="needs images"):
        VQVAE(VQVAEConfig(), DataInfo("points", (2,)))
    with pytest.raises(GenzooError, match="class_conditional needs arch=gpt"):
        C.from_dict(VQPriorConfig, {"arch": "pixelcnn", "class_conditional": True})
    with pytest.raises(GenzooError, match="models code maps, not image"):
        VQPrior(VQPriorConfig(), DataInfo("image", (1, 16, 16)))
    with pytest.raises(GenzooError, match="does not say its codebook size"):
        VQPrior(VQPriorConfig(), DataInfo("codes", (4, 4)))


# -- the prior -------------------------------------------------------------------------------
def test_codes_derived_through_the_first_stage(image_data):
    first = vqvae(DataInfo.of(image_data))
    codes = codes_of(first, image_data)
    assert codes.modality == "codes" and codes.x.shape == (96, 4, 4)
    assert codes.x.dtype == torch.int64 and codes.meta["codebook_size"] == 32
    assert torch.equal(codes.y, image_data.y)
    assert VQPrior.derives_data_from == "first_stage"
    assert "first_stage" in C.run_refs(VQPriorConfig)


@pytest.mark.parametrize("arch", ["gpt", "pixelcnn"])
def test_prior_is_causal_by_gradient_over_code_positions(image_data, arch):
    first = vqvae(DataInfo.of(image_data))
    model = prior(first, codes_of(first, image_data), arch=arch).eval()
    k = torch.randint(0, 32, (6, 16))
    if arch == "gpt":     # input position t holds k_(t-1): the output at t may see inputs <= t
        inputs = torch.cat([model.start_tokens(6), k[:, :-1]], 1)
        h = model.net.embed(inputs).detach().requires_grad_()
        out = lambda: model.net.transform(h)[..., :model.K]        # noqa: E731
        seen = lambda t: slice(0, t + 1)                            # noqa: E731
    else:                 # output at t may see code positions < t only
        h = model.net[0](k.view(6, 4, 4)).detach().requires_grad_()
        out = lambda: model.net[2:](model.net[1](h)).flatten(2).transpose(1, 2)  # noqa: E731
        seen = lambda t: slice(0, t)                                # noqa: E731
    for t in range(16):
        (g,) = torch.autograd.grad(out()[:, t].sum(), h)
        g = g.abs().sum((0, -1)).flatten()
        assert torch.all(g[seen(t).stop:] == 0), t
        # and it does see the last code before it (pixelcnn: the one left of it, or above it)
        before = t if arch == "gpt" else t - 1 if t % 4 else t - 4
        if before >= 0:
            assert g[before] > 0, t


@pytest.mark.parametrize("arch", ["gpt", "pixelcnn"])
def test_prior_samples_decode_to_the_data_shape_in_0_1(image_data, arch):
    first = vqvae(DataInfo.of(image_data))
    model = prior(first, codes_of(first, image_data), arch=arch)
    assert model.output_info.modality == "image" and model.output_info.shape == (1, 16, 16)
    g = lambda: torch.Generator().manual_seed(5)    # noqa: E731
    x = model.sample(5, generator=g())
    assert x.shape == (5, 1, 16, 16) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, model.sample(5, generator=g()))
    codes = model.sample_codes(5, g(), temperature=0.7, top_k=3)
    assert codes.shape == (5, 4, 4) and int(codes.max()) < 32
    assert model.training                            # sampling leaves the mode as it was
    with pytest.raises(GenzooError, match="temperature"):
        model.sample(2, temperature=-1)
    with pytest.raises(GenzooError, match="class_conditional=true"):
        model.sample(2, label="tl")


def test_cached_greedy_sampling_equals_the_full_pass(image_data):
    first = vqvae(DataInfo.of(image_data))
    model = prior(first, codes_of(first, image_data), n_layer=2).eval()
    with torch.no_grad():
        for p in model.net.parameters():             # a less uniform model than at init,
            p.add_(0.3 * torch.randn_like(p))
        model.net.wpe.weight.mul_(10)                # where positions matter
        got = model.sample_codes(4, temperature=0).flatten(1)
        k = torch.zeros(4, 16, dtype=torch.long)
        for t in range(16):
            k[:, t] = model.logits(k)[:, t].argmax(-1)
    assert torch.equal(got, k)


def test_prior_learns_the_codes_and_a_class_conditional_prior_samples_a_label(image_data):
    first = vqvae(DataInfo.of(image_data))
    codes = codes_of(first, image_data)
    model = prior(first, codes, class_conditional=True, lr=3e-3)
    trainer = Trainer(model, codes, TrainConfig(steps=40, batch_size=32, progress=False))
    start = float(trainer.train_step()["bits_per_code"])
    assert start == pytest.approx(math.log2(32), abs=0.6)    # near uniform at first
    trainer.fit()
    assert trainer.last_metrics["bits_per_code"] < 0.7 * start
    x = model.sample(3, generator=torch.Generator().manual_seed(0), label=3)
    assert x.shape == (3, 1, 16, 16)
    assert torch.equal(x, model.sample(3, generator=torch.Generator().manual_seed(0), label="br"))
    with pytest.raises(GenzooError, match="unknown label"):
        model.sample(1, label="nope")
    with pytest.raises(GenzooError, match="samples with --label"):
        model.sample(1)


def test_a_prior_without_a_first_stage_samples_code_maps(image_data):
    codes = codes_of(vqvae(DataInfo.of(image_data)), image_data)
    model = prior(None, codes)
    assert model.output_info.modality == "codes"
    assert model.sample(2).shape == (2, 4, 4)


def test_a_first_stage_that_disagrees_with_the_codes_is_a_clear_error(image_data):
    codes = codes_of(vqvae(DataInfo.of(image_data)), image_data)
    other = vqvae(DataInfo.of(image_data), codebook_size=16)
    with pytest.raises(GenzooError, match="not those of the first stage"):
        prior(other, codes)


# -- exact resume through the Trainer ----------------------------------------------------------
def _resume_is_exact(tmp_path, build, data, **cfg) -> dict:
    cfg = dict(batch_size=16, checkpoint_every=3, sample_every=0, progress=False, seed=2, **cfg)
    make = lambda folder, steps: Trainer(build(), data, TrainConfig(steps=steps, **cfg),  # noqa: E731
                                         run=RunDir(folder))
    return resumed_and_uninterrupted(tmp_path, make)[0]


@pytest.mark.parametrize("ema", [False, True])
def test_vqvae_resume_is_exact(tmp_path, image_data, ema):
    # a high threshold keeps restarting codes, so the RNG state and the counts must resume too
    state = _resume_is_exact(
        tmp_path, lambda: vqvae(DataInfo.of(image_data), ema=ema, restart_threshold=3.0),
        image_data, ema_decay=0.9)
    assert "model.quantizer.cluster_size" in state and "model.data_variance" in state


def test_prior_resume_is_exact(tmp_path, image_data):
    first = vqvae(DataInfo.of(image_data))
    codes = codes_of(first, image_data)
    _resume_is_exact(tmp_path, lambda: prior(first, codes, dropout=0.1), codes)


def test_showcases_draw_their_pictures(image_data, tmp_path):
    from genzoo.viz.vq import prior_showcase, showcase
    first = vqvae(DataInfo.of(image_data)).eval()
    files = showcase(first, image_data, tmp_path / "vq", torch.Generator().manual_seed(0))
    assert [f.name for f in files] == ["reconstructions.png", "codebook_usage.png",
                                       "samples_independent_codes.png"]
    codes = codes_of(first, image_data)
    files = prior_showcase(prior(first, codes), codes, tmp_path / "prior",
                           torch.Generator().manual_seed(0))
    assert [f.name for f in files] == ["bits_per_position.png", "samples_by_temperature.png",
                                       "held_out_vs_samples.png"]
    assert all(f.stat().st_size > 0 for f in files)


def test_code_maps_are_written_as_samples(tmp_path):
    from genzoo.viz.samples import save_samples
    info = DataInfo("codes", (4, 4), meta={"codebook_size": 32, "code_shape": [4, 4]})
    k = torch.randint(0, 32, (6, 4, 4))
    files = save_samples(k, info, tmp_path / "s")
    assert [f.name for f in files] == ["s.png", "s.npz"]
    assert np.array_equal(np.load(files[1])["x"], k.numpy())


def test_both_stages_train_through_the_cli(image_npz, tmp_path):
    from genzoo.cli import main
    from genzoo.config import read_yaml
    quiet = ["--no-progress", "--preset", "tiny", "--steps", "3"]
    assert main(["train", "vqvae", "--data", str(image_npz), "--out", "vq", *quiet]) == 0
    assert main(["train", "vq_prior", "--data", str(image_npz), "--out", "prior",
                 "--set", "first_stage=vq", *quiet]) == 0
    desc = read_yaml(tmp_path / "prior" / "config.yaml")
    assert desc["components"]["first_stage"]["family"] == "vqvae"
    assert desc["data_info"]["modality"] == "codes"
    assert (tmp_path / "prior" / "samples" / "step_00000003.png").is_file()   # decoded images
    assert (tmp_path / "prior" / "showcase" / "held_out_vs_samples.png").is_file()
