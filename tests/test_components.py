"""Families built on trained runs (components), data derived from a run, pipelines, and the
one run description that every checkpoint carries."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from genzoo import registry
from genzoo.cli import main
from genzoo.config import RunRef
from genzoo.errors import GenzooError
from genzoo.models.base import Family, Objective
from genzoo.training import checkpoint as ckpt
from genzoo.training import launch, pipeline
from genzoo.training.run import RunDir, load_model


@dataclass
class CoderConfig:
    code_dim: int = 3


class Coder(Family):
    """Stage 1: a linear autoencoder of images whose codes other stages model."""
    derived_modality = "points"
    derive_calls = 0

    def __init__(self, config, data):
        super().__init__(config, data)
        d = int(np.prod(data.shape))
        self.enc, self.dec = nn.Linear(d, config.code_dim), nn.Linear(config.code_dim, d)

    def objectives(self):
        def loss(b):
            x = b["x"].flatten(1)
            return {"loss": (torch.sigmoid(self.dec(self.enc(x))) - x).pow(2).mean()}
        return [Objective("ae", loss, list(self.parameters()), lr=1e-2)]

    def derive(self, batch):
        type(self).derive_calls += 1
        return {"x": self.enc(batch["x"].flatten(1))}

    def derived_meta(self):
        return {"code_dim": self.config.code_dim}

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.data.shape)

    def sample(self, n, generator=None):
        return self.decode(torch.randn(n, self.config.code_dim, generator=generator, device=self.device))


@dataclass
class PriorConfig:
    first_stage: RunRef | None = None


class Prior(Family):
    """Stage 2: a diagonal Gaussian over the first stage's codes, sampled through its decoder."""
    derives_data_from = "first_stage"

    def __init__(self, config, data, components=None):
        super().__init__(config, data, components)
        self.mu = nn.Parameter(torch.zeros(data.shape))
        self.log_sigma = nn.Parameter(torch.zeros(data.shape))

    def objectives(self):
        def nll(b):
            z = (b["x"] - self.mu) / self.log_sigma.exp()
            return {"loss": (0.5 * z.pow(2) + self.log_sigma).sum(1).mean()}
        return [Objective("nll", nll, list(self.parameters()), lr=0.1)]

    @property
    def output_info(self):
        return self.components["first_stage"].data

    def sample(self, n, generator=None):
        z = self.mu + self.log_sigma.exp() * torch.randn(n, *self.data.shape, generator=generator)
        return self.components["first_stage"].decode(z)


@pytest.fixture
def toys(monkeypatch):
    registry.families()
    for name, cls, cfg in (("toy_coder", Coder, CoderConfig), ("toy_prior", Prior, PriorConfig)):
        monkeypatch.setattr(cls, "family_name", name)
        monkeypatch.setitem(registry._REGISTRY, name, registry.Entry(
            name, cls, cfg, "implicit", "image", "a test family", None))
    Coder.derive_calls = 0


TRAIN = {"steps": 4, "batch_size": 16, "progress": False, "checkpoint_every": 2, "eval_every": 0,
         "sample_every": 0}


def train(family, data, out, **model):
    spec = launch.resolve(family, data=str(data), overrides=[f"{k}={v}" for k, v in model.items()],
                          config={"train": TRAIN})
    return launch.train(spec, out, progress=False, log=lambda *_: None)


def test_a_component_is_loaded_frozen_pinned_by_hash_and_not_copied(toys, image_npz, tmp_path):
    a = train("toy_coder", image_npz, tmp_path / "a")
    b = train("toy_prior", image_npz, tmp_path / "b", first_stage=a.path)
    comp = b.spec.components["first_stage"]
    assert comp.family == "toy_coder" and comp.step == 4 and len(comp.sha256) == 64
    tensors, desc = ckpt.load(RunDir(b.path).latest_checkpoint())
    assert not any(k.startswith("model.components.") for k in tensors)
    assert desc["data_info"]["shape"] == [3] and desc["components"]["first_stage"]["sha256"] == comp.sha256
    model, _ = load_model(b.path)
    first = model.components["first_stage"]
    assert not any(p.requires_grad for p in first.parameters()) and not first.training
    a_model, _ = load_model(a.path)
    assert torch.equal(first.enc.weight, a_model.enc.weight)
    x = model.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 16, 16) and 0 <= x.min() and x.max() <= 1


def test_derived_data_is_cached_by_content(toys, image_npz, tmp_path):
    a = train("toy_coder", image_npz, tmp_path / "a")
    train("toy_prior", image_npz, tmp_path / "b", first_stage=a.path)
    calls = Coder.derive_calls
    assert calls > 0
    train("toy_prior", image_npz, tmp_path / "c", first_stage=a.path)
    assert Coder.derive_calls == calls                    # read back, not encoded again


def test_a_changed_or_missing_component_is_one_line_naming_both(toys, image_npz, tmp_path):
    a = train("toy_coder", image_npz, tmp_path / "a")
    b = train("toy_prior", image_npz, tmp_path / "b", first_stage=a.path)
    pinned = b.spec.components["first_stage"].checkpoint_path
    pinned.write_bytes(pinned.read_bytes() + b"x")
    with pytest.raises(GenzooError, match=f"{b.path}: its component {a.path} has changed"):
        load_model(b.path)
    pinned.unlink()
    with pytest.raises(GenzooError, match=f"{b.path}: its component {a.path} is missing"):
        load_model(b.path)


def test_copied_components_let_a_run_move_alone(toys, image_npz, tmp_path):
    a = train("toy_coder", image_npz, tmp_path / "a")
    spec = launch.resolve("toy_prior", data=str(image_npz), overrides=[f"first_stage={a.path}"],
                          config={"train": {**TRAIN, "copy_components": True}})
    b = launch.train(spec, tmp_path / "b", progress=False, log=lambda *_: None)
    before = load_model(b.path)[0].sample(3, torch.Generator().manual_seed(1))
    import shutil
    shutil.rmtree(a.path)
    after = load_model(b.path)[0].sample(3, torch.Generator().manual_seed(1))
    assert torch.equal(before, after)


def test_a_component_that_is_not_a_run_is_refused_before_anything_is_written(toys, image_npz, tmp_path):
    code = main(["train", "toy_prior", "--data", str(image_npz), "--set",
                 f"first_stage={tmp_path / 'nothing'}", "--out", str(tmp_path / "b")])
    assert code == 2 and not (tmp_path / "b").exists()


def test_the_model_follows_the_data_options_it_feeds():
    spec = launch.resolve("vae", data="digits", data_options={"image_size": 16})
    assert spec.model.image_size == 16 and spec.data.image_size == 16
    with pytest.raises(GenzooError, match="image_size is 32 in the model settings but 16"):
        launch.resolve("vae", data="digits", data_options={"image_size": 16},
                       overrides=["image_size=32"])


PIPE = """
stages:
  - name: coder
    family: toy_coder
    data: {data}
    train: {{steps: 4, batch_size: 16, checkpoint_every: 2, eval_every: 0, sample_every: 0}}
  - name: prior
    family: toy_prior
    data: {data}
    model: {{first_stage: "@coder"}}
    train: {{steps: 4, batch_size: 16, checkpoint_every: 2, eval_every: 0, sample_every: 0}}
"""


def test_a_pipeline_trains_its_stages_and_resumes_where_it_stopped(toys, image_npz, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(PIPE.format(data=image_npz))
    root = pipeline.run(f, tmp_path / "p", progress=False, log=lambda *_: None)
    b = RunDir(root / "prior")
    assert b.spec.components["first_stage"].path == str(root / "coder")
    final = ckpt.load(b.latest_checkpoint())[0]
    # kill the second stage after its first checkpoint: drop the later one and its record
    b.latest_checkpoint().unlink()
    (root / "pipeline.json").write_text('{"finished": ["coder"]}')
    logs = []
    pipeline.run(f, tmp_path / "p", progress=False, log=logs.append)
    assert any("coder" in m and "kept" in m for m in logs) and any("resuming" in m for m in logs)
    again = ckpt.load(b.latest_checkpoint())[0]
    assert all(torch.equal(final[k], again[k]) for k in final if k.startswith("model."))


def test_a_pipeline_file_is_checked_before_anything_runs(toys, image_npz, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(PIPE.format(data=image_npz).replace("@coder", "@nobody"))
    with pytest.raises(GenzooError, match="@nobody names no earlier stage"):
        pipeline.run(f, tmp_path / "p")
    f.write_text(PIPE.format(data=image_npz).replace("family: toy_prior", "family: toy_prior\n    colour: red"))
    with pytest.raises(GenzooError, match="stage 2: unknown key 'colour'"):
        pipeline.run(f, tmp_path / "p")
    assert not (tmp_path / "p").exists()


# -- a family fitted by evolution goes through the same launcher ----------------------------
@dataclass
class ESConfig:
    dim: int = 3


def _evolved():
    from genzoo.models.evolved import EvolvedFamily

    class ToyES(EvolvedFamily):
        def __init__(self, config, data, components=None):
            super().__init__(config, data, components)
            self.v = nn.Parameter(torch.zeros(config.dim, dtype=torch.float64))

        def score(self, seed):
            return float(-(self.v - 1).pow(2).sum())

        def sample(self, n, generator=None):
            return self.v.detach().float().expand(n, -1)
    return ToyES


@pytest.mark.skipif(__import__("importlib").util.find_spec("cma") is None, reason="needs cma")
def test_an_evolved_family_trains_and_resumes_through_the_cli(monkeypatch, tmp_path, capsys):
    registry.families()
    cls = _evolved()
    monkeypatch.setattr(cls, "family_name", "toy_es")
    monkeypatch.setitem(registry._REGISTRY, "toy_es", registry.Entry(
        "toy_es", cls, ESConfig, "implicit", "points", "a test family", None))
    out = tmp_path / "es"
    base = ["--no-progress", "--set", "train.sigma0=0.5", "--set", "train.checkpoint_every=2"]
    assert main(["train", "toy_es", "--data", "moons", "--steps", "4", "--out", str(out), *base]) == 0
    spec = RunDir(out).spec
    assert type(spec.train).__name__ == "EvolutionConfig" and spec.train.generations == 4
    assert main(["train", "toy_es", "--data", "moons", "--batch-size", "8", "--out",
                 str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "has no batch_size" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["train", "--resume", "--out", str(out), "--steps", "6", "--no-progress"]) == 0
    assert RunDir(out).spec.train.generations == 6
    model, desc = load_model(out)
    assert desc["step"] == 6 and float((model.v - 1).abs().max()) < 1.0


def test_a_preset_may_carry_loop_settings():
    spec = launch.resolve("ddpm", data="digits", preset="book")
    assert spec.train.grad_clip == 0.0 and spec.model.arch == "book"


def test_derived_data_is_usable_as_the_data_of_any_family(toys, image_npz, tmp_path, capsys):
    a = train("toy_coder", image_npz, tmp_path / "a")
    spec = launch.resolve("realnvp", data=f"derived:{a.path}", preset="tiny",
                          config={"train": TRAIN})
    run = launch.train(spec, tmp_path / "flow", progress=False, log=lambda *_: None)
    info = run.spec.data_info
    assert info.modality == "points" and info.shape == (3,)
    assert info.meta["derived_from"] == str(a.path) and info.meta["code_dim"] == 3
    vae = tmp_path / "v"
    assert main(["train", "dcgan", "--data", str(image_npz), "--preset", "tiny", "--steps", "1",
                 "--out", str(vae), "--no-progress"]) == 0
    assert main(["train", "realnvp", "--data", f"derived:{vae}", "--steps", "1", "--out",
                 str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "derives no data" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_multi_field_items_batch_split_and_describe_each_field():
    from genzoo.data.dataset import TensorDataset
    from genzoo.models.base import DataInfo
    n = 10
    ds = TensorDataset(x=torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 2, 2), modality="image",
                       source="t", items={"caption": torch.arange(n * 5).view(n, 5),
                                          "reward": torch.arange(n, dtype=torch.float32)},
                       meta={"field_modality": {"caption": "text"}})
    train_ds, held = ds.split(3)
    assert len(held) == 3 and held.items["caption"][0, 0] == 7 * 5
    b = train_ds.batch(torch.tensor([1, 4]))
    assert b["caption"].tolist() == [[5, 6, 7, 8, 9], [20, 21, 22, 23, 24]]
    assert b["reward"].tolist() == [1.0, 4.0] and b["x"].dtype == torch.float32
    info = DataInfo.of(ds)
    assert info.fields["caption"].modality == "text" and info.fields["caption"].shape == (5,)
    assert info.fields["reward"].dtype == "float32" and info.fields["reward"].modality == "tensor"
    assert DataInfo.from_dict(info.to_dict()) == info


def test_made_copies_lead_the_set_and_are_never_held_out():
    from genzoo.data.dataset import TensorDataset
    ds = TensorDataset(x=torch.arange(30).view(30, 1), modality="points", source="t",
                       meta={"copies": 20})                 # 20 augmented items, then 10 originals
    train_ds, held = ds.split(0.2)
    assert len(held) == 2 and held.x.view(-1).tolist() == [28, 29]
    with pytest.raises(GenzooError, match="leaves no training items"):
        ds.split(10)


def test_a_derived_stage_reads_the_data_as_its_component_did(image_npz, tmp_path):
    """The prior's own recipe must not re-read the images at another size than the VQ-VAE's
    (16x16 blobs, read at 8x8 by vqvae's tiny preset): its codes keep the first stage's map."""
    assert main(["train", "vqvae", "--data", str(image_npz), "--preset", "tiny", "--steps", "2",
                 "--out", str(tmp_path / "vq"), "--no-progress"]) == 0
    assert main(["train", "vq_prior", "--data", str(image_npz), "--preset", "tiny", "--steps", "2",
                 "--set", f"first_stage={tmp_path / 'vq'}", "--out", str(tmp_path / "pr"),
                 "--no-progress"]) == 0
    first = RunDir(tmp_path / "vq").spec.data_info
    prior = RunDir(tmp_path / "pr").spec.data_info
    assert prior.meta["source_info"]["shape"] == list(first.shape)


def test_derived_items_carry_the_other_fields_and_are_cached_by_all_of_them(toys, tmp_path):
    from genzoo.data.dataset import TensorDataset
    from genzoo.training.components import derive, pin
    x = torch.randint(0, 255, (12, 1, 4, 4), dtype=torch.uint8)
    np.savez(tmp_path / "x.npz", x=x.permute(0, 2, 3, 1).numpy())
    a = train("toy_coder", tmp_path / "x.npz", tmp_path / "a")
    comp = pin(str(a.path))
    model, _ = load_model(a.path)

    def with_caption(offset):
        return TensorDataset(x=x, modality="image", source="t", meta={"field_modality": {"c": "text"}},
                             items={"c": torch.arange(12 * 3).view(12, 3) + offset})
    first = derive(with_caption(0), model, comp, progress=False, log=lambda *_: None)
    assert first.items["c"][1].tolist() == [3, 4, 5] and first.meta["field_modality"] == {"c": "text"}
    other = derive(with_caption(100), model, comp, progress=False, log=lambda *_: None)
    assert other.items["c"][1].tolist() == [103, 104, 105]          # not the cached captions
    assert torch.equal(first.x, other.x)
