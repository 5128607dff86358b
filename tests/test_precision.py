"""precision=auto: bf16 on a CPU with AMX tiles, fp32 elsewhere (on CUDA: TF32, measured faster
than bf16 at the default sizes); the convolutional families default to it, the GPT does not
(benchmarks/results/scale.md)."""
from __future__ import annotations

import pytest
import torch

from conftest import layer_output_dtypes
from genzoo.models.autoencoder import Autoencoder, AutoencoderConfig
from genzoo.models.base import DataInfo
from genzoo.training import TrainConfig, Trainer
from genzoo.training.settings import resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("amx", [True, False])
def test_auto_follows_the_cpus_native_bf16(monkeypatch, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", CPU) == ("bf16" if amx else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32"     # an explicit choice is kept
    assert resolve_precision("bf16", CPU) == "bf16"


def test_auto_on_a_gpu_is_fp32_with_tf32_and_an_explicit_bf16_is_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # as on an H200
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == "fp32"
    assert resolve_precision("bf16", cuda) == "bf16"


@pytest.mark.parametrize("amx", [True, False])
def test_a_trainer_on_auto_runs_under_autocast_only_where_bf16_is_native(monkeypatch, image_data,
                                                                         amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    model = Autoencoder(AutoencoderConfig(widths=(8, 16), image_size=16), DataInfo.of(image_data))
    t = Trainer(model, image_data, TrainConfig(steps=2, batch_size=8, precision="auto",
                                               device="cpu", progress=False))
    assert t.precision == ("bf16" if amx else "fp32")
    with layer_output_dtypes(model) as dtypes:
        t.fit()
    assert (torch.bfloat16 in dtypes) == amx
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_defaults_auto_for_the_conv_families_and_fp32_for_the_gpt():
    from genzoo import registry
    for name in ("autoencoder", "vae", "dcgan", "wgan_gp", "ddpm", "progan", "vqgan", "stylegan2"):
        assert registry.get(name).cls.train_defaults.get("precision") == "auto", name
    for name in ("gpt",):                              # measured slower in bf16
        assert registry.get(name).cls.train_defaults.get("precision", "fp32") == "fp32", name


def test_a_bad_precision_names_the_choices():
    with pytest.raises(ValueError, match="fp32, bf16 or auto"):
        TrainConfig(precision="fp16").validate()
