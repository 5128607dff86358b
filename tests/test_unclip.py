"""unCLIP on a tiny CLIP: the prior's guidance, variations of a picture file, both objectives
training their own networks, exact resume, and sampling through the command line."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import captioned_stages
from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.models.diffusion.unet import CrossAttention2d
from genzoo.training import checkpoint as ckpt, launch
from genzoo.training.run import RunDir

QUIET = dict(progress=False, log=lambda *a: None)


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    return captioned_stages(tmp_path_factory, "clip")


def spec(clip_run, steps=4, **extra):
    return launch.resolve("unclip", data=clip_run["data"], preset="tiny",
                          overrides=[f"clip={clip_run['clip']}"] + extra.pop("overrides", []),
                          train={"steps": steps, "batch_size": 8, "checkpoint_every": steps,
                                 "progress": False, **extra})


def test_each_objective_trains_its_own_network(clip_run):
    model, train, _ = launch.prepare(spec(clip_run), progress=False, log=lambda *a: None)
    decoder, prior = model.objectives()
    own = {id(p) for p in prior.parameters()}
    assert own == {id(p) for p in model.prior.parameters()}
    assert not own & {id(p) for p in decoder.parameters()}
    assert not any(p.requires_grad for p in model.components.parameters())
    batch = train.batch(torch.arange(8))
    out = model.evaluate(batch)
    assert set(out) == {"loss", "prior_loss"} and all(torch.isfinite(v) for v in out.values())
    # the decoder is conditioned on CLIP's image embedding, scaled to entries of unit variance
    z = model.condition(batch)
    assert z.shape == (8, model.dim)
    torch.testing.assert_close(z.pow(2).mean(1), torch.ones(8))


def test_prior_guidance_zero_is_unconditional_and_one_conditional(clip_run):
    model, _, _ = launch.prepare(spec(clip_run), progress=False, log=lambda *a: None)
    model.eval()
    torch.nn.init.normal_(model.prior.inp.weight)
    z_t = torch.randn(3, model.dim)
    runs = {w: model.sample_prior(z_t, torch.Generator().manual_seed(0), w) for w in (0.0, 1.0)}
    z0 = torch.randn(3, model.dim, generator=torch.Generator().manual_seed(0))
    from genzoo.models.diffusion.samplers import ddim

    def plain(text):
        def denoise(z, t):
            tt = t.float().expand(len(z))
            x0 = model.prior(z, tt, text).float()
            alpha, sigma = (v[:, None] for v in model.prior_schedule.alpha_sigma(tt))
            return x0, (z - alpha * x0) / sigma
        return ddim(denoise, z0, model.prior_schedule, model.config.prior_steps)
    torch.testing.assert_close(runs[0.0], plain(torch.zeros_like(z_t)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(runs[1.0], plain(z_t), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(runs[0.0], runs[1.0])


def test_variations_follow_clips_embedding_of_the_picture(clip_run, tmp_path):
    model, _, _ = launch.prepare(spec(clip_run), progress=False, log=lambda *a: None)
    model.eval()
    for m in model.net.modules():          # a decoder that listens to its condition
        if isinstance(m, CrossAttention2d):
            torch.nn.init.normal_(m.attn.out.weight, std=0.3)
    torch.nn.init.normal_(model.net.conv_out.weight, std=0.1)
    picture = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(picture)
    g = lambda: torch.Generator().manual_seed(0)      # noqa: E731
    x = model.sample(3, g(), image=str(picture))
    assert x.shape == (3, 3, 8, 8) and 0 <= x.min() and x.max() <= 1
    other = tmp_path / "q.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(other)
    assert not torch.allclose(model.sample(3, g(), image=str(other)), x)   # another picture
    with pytest.raises(GenzooError, match="cannot read the picture"):
        model.sample(1, image=str(tmp_path / "missing.png"))


def test_unclip_resumes_exactly(clip_run, tmp_path):
    whole = launch.train(spec(clip_run, steps=6), tmp_path / "whole", **QUIET)
    cut = launch.train(spec(clip_run, steps=3), tmp_path / "cut", **QUIET)
    launch.train(launch.resume_description(cut.path, steps=6), cut.path, resume=True, **QUIET)
    want, _ = ckpt.load(RunDir(whole.path).latest_checkpoint())
    got, desc = ckpt.load(RunDir(cut.path).latest_checkpoint())
    assert desc["step"] == 6 and len(desc["optimizers"]) == 2
    keys = [k for k in want if k.startswith(("model.", "ema.", "optim."))]
    assert any(k.startswith("model.prior.") for k in keys)
    for k in keys:
        assert torch.equal(want[k], got[k]), k
    assert (whole.path / "showcase" / "variations.png").is_file()
    assert main(["sample", str(whole.path), "--prompt", "a square at the top left", "-n", "2",
                 "--prior-guidance", "2", "--out", str(tmp_path / "s")]) == 0
    assert np.load(tmp_path / "s.npz")["x"].shape == (2, 8, 8, 3)


def test_unclip_needs_a_clip_of_its_picture_size(clip_run):
    with pytest.raises(GenzooError, match="set data.image_size=8"):
        launch.prepare(spec(clip_run, overrides=["image_size=16", "widths=[8]"]), progress=False,
                       log=lambda *a: None)
    with pytest.raises(GenzooError, match="set clip=RUN_DIR"):
        launch.prepare(launch.resolve("unclip", data=clip_run["data"], preset="tiny"),
                       progress=False, log=lambda *a: None)
