"""The SAGAN / BigGAN toolkit: spectral normalisation, self-attention, the hinge loss,
class-conditional batch norm with a projection discriminator, orthogonal regularisation,
truncation, and the dcgan `sagan` preset that puts them together."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genzoo import config as C
from genzoo import registry
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.nn.biggan import (ConditionalBatchNorm2d, matrix_weights, orthogonal_regularisation,
                              truncated_normal)
from genzoo.nn.gan import hinge_losses
from genzoo.nn.sagan import SelfAttention2d, largest_singular_value, spectral_norm
from genzoo.training.trainer import TrainConfig, Trainer


# -- spectral normalisation ----------------------------------------------------------------
@pytest.mark.parametrize("make,dim", [(lambda: nn.Linear(12, 7), 0), (lambda: nn.Conv2d(3, 5, 3), 0),
                                      (lambda: nn.ConvTranspose2d(6, 4, 4, 2, 1), 1)])
def test_spectral_norm_makes_the_largest_singular_value_one(make, dim):
    torch.manual_seed(0)
    layer = make()
    with torch.no_grad():
        layer.weight.mul_(5.0)                 # sigma(W) well above 1 before
    assert largest_singular_value(layer.weight, dim) > 2
    spectral_norm(layer)
    layer.train()
    for _ in range(20):                         # one power-iteration step per forward pass
        _ = layer.weight
    assert largest_singular_value(layer.weight, dim) == pytest.approx(1.0, abs=1e-2)
    original = layer.parametrizations.weight.original
    assert largest_singular_value(original, dim) > 2          # the trained weight is untouched
    # gradients flow through sigma: the normalised weight's norm does not grow with W
    loss = layer.weight.pow(2).sum()
    loss.backward()
    assert original.grad is not None and torch.isfinite(original.grad).all()


def test_spectral_norm_estimate_is_frozen_in_eval_mode_and_saved():
    layer = spectral_norm(nn.Linear(6, 6))
    keys = set(layer.state_dict())
    assert {"parametrizations.weight.0.u", "parametrizations.weight.0.v"} <= keys
    layer.eval()
    u = layer.parametrizations.weight[0].u.clone()
    _ = layer.weight
    assert torch.equal(u, layer.parametrizations.weight[0].u)
    layer.train()
    with torch.no_grad():
        layer.parametrizations.weight.original.add_(torch.randn(6, 6))
    _ = layer.weight
    assert not torch.equal(u, layer.parametrizations.weight[0].u)


# -- self-attention -------------------------------------------------------------------------
def test_self_attention_starts_as_the_identity_and_then_sees_the_whole_map():
    block = SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    assert torch.equal(block(x), x)                         # gamma = 0 at the start
    with torch.no_grad():
        block.gamma.fill_(1.0)
    y = block(x)
    y[0, :, 0, 0].sum().backward()                          # one output position ...
    reach = x.grad[0].abs().sum(0)
    assert (reach > 0).all()                                # ... depends on every input position
    assert x.grad[1].abs().sum() == 0                       # and on nothing of another image
    block.keep_weights = True
    block(x)
    beta = block.weights
    assert beta.shape == (2, 16, 16) and torch.allclose(beta.sum(-1), torch.ones(2, 16))


# -- the hinge loss -------------------------------------------------------------------------
def test_hinge_loss_values():
    d_real = torch.tensor([2.0, 0.5, -1.0])           # max(0, 1 - d): 0, 0.5, 2
    d_fake = torch.tensor([-3.0, 0.0, 1.0])           # max(0, 1 + d): 0, 1, 2
    real, fake = hinge_losses(d_real, d_fake)
    assert real.item() == pytest.approx(2.5 / 3) and fake.item() == pytest.approx(1.0)


# -- class-conditional batch norm, orthogonal regularisation, truncation ---------------------
def test_conditional_batch_norm_is_batch_norm_shifted_and_scaled_by_the_class():
    cbn = ConditionalBatchNorm2d(4, embed_dim=3)
    e = torch.randn(2, 3)
    x = torch.randn(8, 4, 5, 5)
    y = cbn(x, e.repeat(4, 1))
    plain = nn.functional.batch_norm(x, None, None, training=True, eps=cbn.bn.eps)
    gamma, beta = cbn.gamma(e.repeat(4, 1)), cbn.beta(e.repeat(4, 1))
    assert torch.allclose(y, plain * (1 + gamma[:, :, None, None]) + beta[:, :, None, None],
                          atol=1e-5)
    assert not torch.allclose(y[0], y[1])           # two classes, two gains and biases


def test_orthogonal_regularisation_sees_only_the_off_diagonal():
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert orthogonal_regularisation([q * 3.0], beta=1.0).item() == pytest.approx(0.0, abs=1e-8)
    W = torch.tensor([[1.0, 0.0], [1.0, 1.0]])     # W W^T = [[1, 1], [1, 2]]: off-diagonal 1, 1
    assert orthogonal_regularisation([W], beta=0.5).item() == pytest.approx(0.5 * 2)
    net = spectral_norm(nn.Linear(3, 3))
    assert matrix_weights(nn.Sequential(net)) == [net.parametrizations.weight.original]


def test_truncated_normal_stays_inside_and_follows_its_generator():
    z = truncated_normal((500, 8), 0.5, torch.Generator().manual_seed(1))
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    assert torch.equal(z, truncated_normal((500, 8), 0.5, torch.Generator().manual_seed(1)))


# -- the sagan preset -----------------------------------------------------------------------
def labelled(n=48, side=16, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(x=(torch.rand(n, 3, side, side, generator=g) * 255).to(torch.uint8),
                         modality="image", source="t", y=torch.randint(0, classes, (n,), generator=g),
                         class_names=[f"c{i}" for i in range(classes)])


def sagan(data, **settings):
    entry = registry.get("dcgan")
    values = {**entry.cls.presets["sagan"], "image_size": 16, "attention_at": 8, "z_dim": 8,
              "g_width": 8, "d_width": 8, "embed_dim": 8, **settings}
    return entry.cls(C.from_dict(entry.config, values, "sagan"), DataInfo.of(data))


def test_sagan_preset_puts_the_toolkit_together_and_trains():
    data = labelled()
    model = sagan(data)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"SelfAttention2d", "ConditionalBatchNorm2d", "SpectralNorm"} <= kinds
    assert "BatchNorm2d" not in {type(m).__name__ for m in model.D.modules()}
    assert model.num_classes == 3
    trainer = Trainer(model, data, TrainConfig(steps=3, batch_size=8, progress=False))
    crit, gen = trainer.objectives
    assert crit.lr == 4e-4 and gen.lr == 1e-4 and crit.betas == (0.0, 0.9)
    logs = trainer.fit()
    assert logs["generator/ortho_reg"] > 0 and logs["critic/loss"] >= 0       # hinge: >= 0
    model.eval()
    x = model.sample(6, torch.Generator().manual_seed(0), label=2, truncation=0.5)
    assert x.shape == (6, 3, 16, 16)
    a = model.sample(4, torch.Generator().manual_seed(0), label=0)
    b = model.sample(4, torch.Generator().manual_seed(0), label=1)
    assert not torch.allclose(a, b)
    s = model.critic(model.real({"x": x[:2]}), torch.tensor([0, 0]))
    assert not torch.allclose(s, model.critic(model.real({"x": x[:2]}), torch.tensor([1, 1])))


def test_an_unconditional_run_refuses_a_label_and_conditional_yes_needs_labels():
    plain = TensorDataset(x=torch.zeros(8, 1, 16, 16, dtype=torch.uint8), modality="image",
                          source="t")
    model = sagan(plain).eval()                    # conditional=auto on unlabelled data: none
    assert model.num_classes == 0
    with pytest.raises(GenzooError, match="unconditional"):
        model.sample(2, label=1)
    with pytest.raises(GenzooError, match="conditional=yes needs labelled data"):
        sagan(plain, conditional="yes")
    with pytest.raises(GenzooError, match="attention_at 6"):
        sagan(plain, attention_at=6)


def test_sagan_resumes_exactly_with_its_power_iteration_state(tmp_path):
    from genzoo.training.run import RunDir
    data = labelled()
    cfg = TrainConfig(steps=4, batch_size=8, progress=False, checkpoint_every=2, seed=3)
    torch.manual_seed(0)
    whole = Trainer(sagan(data), data, cfg)
    whole.fit()
    run = RunDir.create(tmp_path / "run", {"family": "dcgan"})
    torch.manual_seed(0)
    first = Trainer(sagan(data), data, cfg, run=run)
    first.train_step(), first.train_step()
    first.save()
    torch.manual_seed(5)                           # other initial weights: all must come back
    resumed = Trainer(sagan(data), data, cfg, run=run)
    assert resumed.step == 2
    resumed.fit()
    want, got = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.endswith(".u") for k in want)
    for k in want:
        assert torch.equal(want[k], got[k]), k
