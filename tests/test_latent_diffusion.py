"""Latent diffusion and its first stage: latents of unit variance, cross-attention that sees only
real tokens, classifier-free guidance at w = 0 and 1, exact resume of the stage that stands on
two others, the shipped pipeline and `genzoo sample --prompt`."""
import numpy as np
import pytest
import torch

from conftest import captioned_images, captioned_stages
from genzoo import data as D
from genzoo.cli import main
from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.diffusion import guidance as G
from genzoo.models.diffusion.unet import CrossAttention2d
from genzoo.models.multimodal.kl_autoencoder import KLAutoencoder, KLAutoencoderConfig
from genzoo.training import Trainer, TrainConfig, checkpoint as ckpt, launch
from genzoo.training.run import RunDir

QUIET = dict(progress=False, log=lambda *a: None)


def awake(model):
    """Random output layers where training would put them (the U-Net's last convolution and
    its cross-attention outputs start at zero, so an untrained net ignores the text)."""
    torch.nn.init.normal_(model.net.conv_out.weight, std=0.1)
    for m in model.net.modules():
        if isinstance(m, CrossAttention2d):
            torch.nn.init.normal_(m.attn.out.weight, std=0.3)
    return model.eval()


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """A captioned folder, a tiny first stage (8x8 -> 2x4x4) and a tiny CLIP trained on it."""
    runs = captioned_stages(tmp_path_factory, "kl_autoencoder", "clip")
    return {"data": runs["data"], "ae": runs["kl_autoencoder"], "clip": runs["clip"]}


def ldm_spec(stages, steps=4, clip=True, **extra):
    sets = [f"first_stage={stages['ae']}"] + ([f"text_encoder={stages['clip']}"] if clip else [])
    return launch.resolve("latent_diffusion", data=extra.pop("data", stages["data"]), preset="tiny",
                          overrides=sets + extra.pop("overrides", []),
                          train={"steps": steps, "batch_size": 8, "checkpoint_every": steps,
                                 "progress": False, **extra})


# ------------------------------------------------------------------ the first stage
def test_the_latent_scale_factor_makes_latents_unit_variance(tmp_path):
    ds = D.load(str(captioned_images(tmp_path, n=64)))
    model = KLAutoencoder(KLAutoencoderConfig(widths=(8, 16), z_channels=2, image_size=8),
                          DataInfo.of(ds))
    batch = ds.batch(torch.arange(len(ds)))
    raw = model.encode(batch["x"])[0].detach()
    # the scale follows the latents of the training batches (here of a fixed encoder)
    with torch.no_grad():
        for i in range(40):
            model.loss(ds.batch(torch.randperm(64, generator=torch.Generator().manual_seed(i))[:16]))
    model.eval()
    out = model.derive(batch)
    z = out["x"]
    assert z.shape == (64, 2, 4, 4)
    assert abs(float(raw.std()) - 1) > 0.3                 # the encoder's own scale is not 1
    assert float(z.std()) == pytest.approx(1.0, abs=0.05)
    torch.testing.assert_close(out["caption"], batch["caption"])    # other fields pass through
    x = model.decode_latents(z[:4])
    assert x.shape == (4, 3, 8, 8) and 0 <= x.min() and x.max() <= 1
    # and while the encoder learns, the running estimate keeps up
    Trainer(model, ds, TrainConfig(steps=30, batch_size=16, progress=False, device="cpu")).fit()
    model.eval()
    assert 0.75 < float(model.derive(batch)["x"].std()) < 1.33


# ------------------------------------------------------------------ cross-attention
def test_cross_attention_attends_only_to_real_tokens():
    torch.manual_seed(0)
    layer = CrossAttention2d(8, context_dim=6, heads=2)
    torch.nn.init.normal_(layer.attn.out.weight)         # (it starts as the identity)
    x = torch.randn(2, 8, 4, 4)
    context = torch.randn(2, 5, 6, requires_grad=True)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, False]])
    out = layer(x, context, mask)
    (g,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), context)
    assert (g[~mask] == 0).all() and (g[mask].abs().sum(-1) > 0).all()
    other = context.detach().clone()
    other[~mask] = 100 * torch.randn_like(other[~mask])      # any padding: the same output
    torch.testing.assert_close(layer(x, other, mask), out.detach())
    assert not torch.allclose(layer(x, other), out.detach())  # unmasked, the padding would count


def test_padding_a_caption_longer_changes_no_prediction(stages):
    model, _, _ = launch.prepare(ldm_spec(stages, clip=False), progress=False, log=lambda *a: None)
    awake(model)
    y = model.prompt_tokens(2, ["a square at the top left", "the bottom right is bright"])
    padded = torch.cat([y, torch.full((2, 5), tk.PAD)], 1)
    x_t, t = torch.randn(2, *model.data.shape), torch.full((2,), 0.5)
    torch.testing.assert_close(model.eps_net(x_t, t, padded), model.eps_net(x_t, t, y))
    assert not torch.allclose(model.eps_net(x_t, t, y.flip(0)), model.eps_net(x_t, t, y))


# ------------------------------------------------------------------ guidance
@pytest.mark.parametrize("clip", [True, False])
def test_guidance_zero_is_unconditional_and_one_conditional(stages, clip):
    model, _, _ = launch.prepare(ldm_spec(stages, clip=clip), progress=False, log=lambda *a: None)
    awake(model)
    y = model.prompt_tokens(3, "a square at the top left")
    x_t, t = torch.randn(3, *model.data.shape), torch.tensor(0.4)
    tt = t.expand(3)
    uncond, cond = model.eps_net(x_t, tt, None), model.eps_net(x_t, tt, y)
    assert not torch.allclose(uncond, cond)
    for w, want in ((0.0, uncond), (1.0, cond), (4.0, uncond + 4 * (cond - uncond))):
        _, eps = model.denoiser(y, w, clip=False)(x_t, t)
        torch.testing.assert_close(eps, want, rtol=1e-4, atol=1e-5)
    # "no caption" is the empty caption END END
    torch.testing.assert_close(model.eps_net(x_t, tt, model.null_condition(y)), uncond)


def test_captions_are_dropped_whole_for_guidance():
    tokens = torch.randint(3, 50, (200, 7))
    null = torch.zeros_like(tokens)
    null[:, :2] = tk.END
    assert torch.equal(G.drop_labels(tokens, 0.0, null), tokens)
    assert torch.equal(G.drop_labels(tokens, 1.0, null), null)
    out = G.drop_labels(tokens, 0.5, null)
    whole = (out == tokens).all(1) | (out == null).all(1)
    dropped = (out == null).all(1).float().mean()
    assert whole.all() and 0.3 < dropped < 0.7


def test_a_clip_with_another_tokenizer_reads_the_same_words(stages, tmp_path):
    spec = ldm_spec(stages, overrides=["data.tokenizer=char", "context=40"])
    model, _, _ = launch.prepare(spec, progress=False, log=lambda *a: None)
    assert model.translate
    clip = model.components["text_encoder"]
    y = model.prompt_tokens(2, ["a square at the top left", "the top right is bright"])
    states, mask = model.encode_text(y)
    want, want_mask = clip.text_states(clip.tokenize(["a square at the top left",
                                                       "the top right is bright"]))
    torch.testing.assert_close(states, want)
    assert torch.equal(mask, want_mask)


# ------------------------------------------------------------------ training and sampling
@pytest.mark.parametrize("clip", [True, False])
def test_latent_diffusion_resumes_exactly(stages, tmp_path, clip):
    whole = launch.train(ldm_spec(stages, steps=6, clip=clip), tmp_path / "whole", **QUIET)
    cut = launch.train(ldm_spec(stages, steps=3, clip=clip), tmp_path / "cut", **QUIET)
    spec = launch.resume_description(cut.path, steps=6)
    launch.train(spec, cut.path, resume=True, **QUIET)
    want, _ = ckpt.load(RunDir(whole.path).latest_checkpoint())
    got, desc = ckpt.load(RunDir(cut.path).latest_checkpoint())
    assert desc["step"] == 6
    keys = [k for k in want if k.startswith(("model.", "ema."))]
    assert any(k.startswith("ema.") for k in keys)
    assert not any(".components." in k for k in keys)            # components are not copied
    for k in keys:
        assert torch.equal(want[k], got[k]), k


def test_the_shipped_pipeline_runs_tiny_and_samples_from_a_prompt(tmp_path, capsys):
    folder = captioned_images(tmp_path, n=40)
    out = tmp_path / "t2i"
    assert main(["pipeline", "text-to-image", "--smoke", "--data", str(folder), "--out", str(out),
                 "--no-progress"]) == 0
    for stage in ("autoencoder", "clip", "diffusion"):
        assert (out / stage / "checkpoints").is_dir()
    assert (out / "diffusion" / "showcase" / "guidance.png").is_file()
    stem = tmp_path / "drawn"
    assert main(["sample", str(out / "diffusion"), "--prompt", "a square at the top left",
                 "--guidance", "5", "-n", "4", "--out", str(stem)]) == 0
    x = np.load(stem.with_suffix(".npz"))["x"]
    assert x.shape == (4, 8, 8, 3) and x.dtype == np.uint8          # pictures, not latents
    assert main(["sample", str(out / "diffusion"), "--label", "1", "-n", "2"]) == 2


def test_bad_stages_get_one_clear_line(stages, image_npz, tmp_path):
    with pytest.raises(GenzooError, match="text_encoder must be a clip run"):
        launch.prepare(ldm_spec(stages, overrides=[f"text_encoder={stages['ae']}"], clip=False),
                       progress=False, log=lambda *a: None)
    with pytest.raises(GenzooError, match="set data.image_size=8"):
        launch.prepare(ldm_spec(stages, overrides=["data.image_size=16"]), progress=False,
                       log=lambda *a: None)
    with pytest.raises(GenzooError, match="needs captioned images"):
        launch.prepare(ldm_spec(stages, data=str(image_npz), overrides=["data.channels=3"]),
                       progress=False, log=lambda *a: None)
    with pytest.raises(GenzooError, match="set first_stage=RUN_DIR"):
        launch.prepare(launch.resolve("latent_diffusion", data=stages["data"], preset="tiny"),
                       progress=False, log=lambda *a: None)

