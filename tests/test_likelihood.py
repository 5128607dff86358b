"""Likelihoods are typed values: each family with one says its unit, its number of levels and
whether it is exact or a bound, and evaluation records it so."""
import math

import pytest
import torch

from genzoo.data import DataOptions
from genzoo.data.dataset import TensorDataset
from genzoo.data.text import build
from genzoo.evaluation.run_eval import held_out_scalars
from genzoo.models.base import DataInfo, Likelihood
from genzoo.models.gan.dcgan import DCGAN, DCGANConfig
from genzoo.models.gpt import GPT, GPTConfig
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig
from genzoo.models.pixelcnn_mix import PixelCNNMix, PixelCNNMixConfig
from genzoo.models.realnvp import RealNVP, RealNVPConfig
from genzoo.models.vae import VAE, VAEConfig

GREY = DataInfo("image", (1, 8, 8))


def images(n=8):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(x=torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8),
                         modality="image", source="noise")


def typed(model, data):
    scalars = held_out_scalars(model.eval(), data, n=len(data))
    return model.likelihood(scalars), scalars


@pytest.mark.parametrize("levels", [4, 256])
def test_pixelcnn_bits_are_over_its_own_levels(levels):
    model = PixelCNN(PixelCNNConfig(levels=levels, filters=8, residual_blocks=1, image_size=8), GREY)
    lk, scalars = typed(model, images())
    assert lk == Likelihood(pytest.approx(scalars["bpd"]), "bits/dim", levels, exact=True)
    assert 0 < lk.value < 1.5 * math.log2(levels)       # near uniform when untrained


def test_flows_and_vaes_give_bounds_of_256_level_bits_and_pixelcnn_mix_exact_ones():
    data = images()
    vae = VAE(VAEConfig(widths=[8], image_size=8, latent_dim=2), GREY)
    flow = RealNVP(RealNVPConfig(scales=1, coupling_layers=2, features=8, res_blocks=1), GREY)
    mix = PixelCNNMix(PixelCNNMixConfig(filters=8, resnet_blocks=1, hierarchies=2, mixtures=2,
                                        dropout=0.0, image_size=8), GREY)
    for model, key, exact in ((vae, "elbo_bpd", False), (flow, "bpd", False), (mix, "bpd", True)):
        lk, scalars = typed(model, data)
        assert (lk.unit, lk.levels, lk.exact) == ("bits/dim", 256, exact), type(model).__name__
        assert lk.value == pytest.approx(scalars[key]) and lk.value > 0
    four = PixelCNN(PixelCNNConfig(levels=4, filters=8, residual_blocks=1, image_size=8), GREY)
    assert not typed(four, data)[0].comparable_with(lk) and typed(vae, data)[0].comparable_with(lk)


def test_points_flow_gives_exact_nats_and_text_gives_bits_per_token():
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    flow = RealNVP(RealNVPConfig(hidden=8, depth=1, coupling_layers=2), DataInfo("points", (2,)))
    lk, scalars = typed(flow, TensorDataset(x=x, modality="points", source="gauss"))
    assert lk == Likelihood(pytest.approx(scalars["nll"]), "nats", 0, exact=True)
    ds = build(["to be or not to be, that is the question. " * 4], DataOptions(context=8,
               tokenizer="char"), "mem", packed=True)
    gpt = GPT(GPTConfig(n_head=1, n_embd=8, context=8, tokenizer="char"), DataInfo.of(ds))
    lk, scalars = typed(gpt, ds)
    assert (lk.unit, lk.levels, lk.exact) == ("bits/char", gpt.V, True)
    assert lk.value == pytest.approx(scalars["bits_per_char"])


def test_families_without_a_likelihood_say_so():
    gan = DCGAN(DCGANConfig(image_size=16, g_width=8, d_width=8), DataInfo("image", (1, 16, 16)))
    assert gan.likelihood({"d_real": 0.5}) is None


def test_labels_and_round_trip():
    bound = Likelihood(4.5, "bits/dim", 256, exact=False)
    assert bound.label() == "bits/dim over 256 levels (bound)"
    assert Likelihood.from_dict(bound.to_dict()) == bound
    assert Likelihood(3.0, "nats").label() == "nats"
    assert not bound.comparable_with(Likelihood(1.0, "bits/dim", 4))
    assert bound.comparable_with(Likelihood(3.0, "bits/dim", 256))
