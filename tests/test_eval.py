"""Classifiers, feature spaces, the reference cache, novelty, text statistics and `genzoo eval`."""
import json

import numpy as np
import pytest
import torch

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.evaluation import cache, features as Fe, text as T
from genzoo.evaluation.novelty import novelty
from genzoo.evaluation.modalities import to_shape
from genzoo.evaluation.run_eval import evaluate_run
from genzoo.models.base import DataInfo
from genzoo.models.classifier import Classifier, ClassifierConfig, accuracy
from genzoo.training.trainer import TrainConfig, Trainer

from conftest import TINY_AE, blobs


def _fit(model, data, held, steps=40):
    cfg = TrainConfig(steps=steps, batch_size=32, progress=False, eval_every=steps, sample_every=0,
                      checkpoint_every=0, eval_batches=10)
    t = Trainer(model, data, cfg, held_out=held)
    with torch.no_grad():
        first = float(model.loss(data.batch(torch.arange(64)))["loss"])
    metrics = t.fit()
    return first, metrics


@pytest.mark.parametrize("arch", ["cnn", "mlp"])
def test_classifier_learns_and_reports_accuracy(image_data, arch):
    train, held = image_data.split(32)
    small = dict(conv_widths=(8, 8, 16, 16), dense=32, mlp_widths=(64, 32))
    model = Classifier(ClassifierConfig(arch=arch, lr=2e-3, **small), DataInfo.of(train))
    first, metrics = _fit(model, train, held)
    assert metrics["val/loss"] < first
    assert metrics["val/accuracy"] > 0.9
    acc, confusion = accuracy(model, held)
    assert acc > 0.9 and int(confusion.sum()) == len(held)
    assert model.features(held.batch(torch.arange(5))["x"]).shape == (5, model.feature_dim)


def test_classifier_refuses_unlabelled_data_and_sampling(image_data):
    info = DataInfo("image", (1, 16, 16))
    with pytest.raises(GenzooError, match="no class labels"):
        Classifier(ClassifierConfig(), info)
    model = Classifier(ClassifierConfig(arch="mlp"), DataInfo.of(image_data))
    with pytest.raises(GenzooError, match="does not sample"):
        model.sample(4)


def test_feature_registry_and_fallback(monkeypatch):
    @Fe.register_extractor("mean-test")
    def mean_test(arg, shape):
        return Fe.Extractor(f"mean x{arg}", lambda x: x.mean((2, 3)) * float(arg), "mean")
    ex = Fe.get_extractor("mean-test:3", (1, 8, 8))
    assert torch.allclose(ex(torch.ones(2, 1, 8, 8)), torch.full((2, 1), 3.0))
    with pytest.raises(GenzooError, match="unknown feature space"):
        Fe.get_extractor("nonsense", (1, 8, 8))
    big = Fe.get_extractor("pixels", (3, 64, 64))
    assert big(torch.rand(2, 3, 64, 64)).shape[1] <= 1024 and big.distance_name == "FD"
    monkeypatch.delenv("GENZOO_INCEPTION_WEIGHTS", raising=False)
    auto = Fe.get_extractor("auto", (1, 16, 16))
    assert auto.name.startswith("pixels") and not auto.is_fid and "not FID" in auto.note


def test_classifier_run_is_a_feature_space(image_npz, capsys):
    assert main(["train", "classifier", "--data", str(image_npz), "--steps", "5", "--out", "cls",
                 "--no-progress", "--set", "arch=mlp"]) == 0
    acc = json.loads(open("cls/showcase/accuracy.json").read())
    assert 0 <= acc["accuracy"] <= 1 and acc["items"] == 10
    for spec in ("classifier:cls", "cls"):
        ex = Fe.get_extractor(spec, (1, 16, 16))
        assert ex(torch.rand(3, 1, 16, 16)).shape == (3, 150)
    rgb = Fe.get_extractor("cls", (3, 32, 32))            # other shapes are adapted, and said so
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 150) and "adapted" in rgb.note
    with pytest.raises(GenzooError, match="needs the run folder"):
        Fe.get_extractor("classifier", (1, 16, 16))


def test_reference_cache_is_keyed_by_content():
    calls = []
    x = torch.arange(12, dtype=torch.uint8).view(3, 4)

    def compute():
        calls.append(1)
        return x.float() * 2

    f1, hit1 = cache.reference_features(x, "space-a", compute)
    f2, hit2 = cache.reference_features(x.clone(), "space-a", compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1 and torch.equal(f1, f2)
    _, hit3 = cache.reference_features(x, "space-b", compute)     # another space: a miss
    y = x.clone()
    y[0, 0] = 99
    _, hit4 = cache.reference_features(y, "space-a", compute)     # other content: a miss
    assert not hit3 and not hit4 and len(calls) == 3
    assert len(list((cache.cache_dir() / "reference").glob("*.safetensors"))) == 3


def test_novelty_flags_a_model_that_returns_training_items():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(500, 8, generator=g)
    held = torch.randn(200, 8, generator=g)
    copies = train[torch.randint(0, 500, (200,), generator=g)]
    honest = torch.randn(200, 8, generator=g)
    flagged = novelty(copies, train, held)
    assert flagged.memorising and flagged.close_fraction == 1.0 and flagged.median_ratio < 1e-6
    fine = novelty(honest, train, held)
    assert not fine.memorising and fine.close_fraction < 0.15
    assert 0.7 < fine.median_ratio < 1.4
    near = novelty(copies + 0.01 * torch.randn(200, 8, generator=g), train, held)
    assert near.memorising                   # slightly perturbed copies are caught too


def test_text_statistics():
    train = ["abcabc", "abd"]
    assert T.novelty(["abcx"], T.ngram_set(train, 2), 2) == pytest.approx(1 / 3)   # ab bc | cx
    assert T.repetition(["aaaa"], 2) == pytest.approx(2 / 3)
    assert T.repetition(["abcd"], 2) == 0
    stats = T.text_statistics(["abcabc"], train, ["abd"], orders=(2,))
    assert stats["novelty_2"] == 0 and stats["repetition_2"] == pytest.approx(2 / 5)
    assert stats["held_out_novelty_2"] == 0 and stats["mean_length"] == 6


def test_to_shape_crops_padding_and_resizes():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 2:30, 2:30] = 1.0                  # a 28x28 image padded to 32x32
    assert torch.equal(to_shape(x, (1, 28, 28)), torch.ones(1, 1, 28, 28))
    assert to_shape(torch.rand(2, 3, 64, 64), (1, 28, 28)).shape == (2, 1, 28, 28)


def test_genzoo_eval_end_to_end(image_npz, capsys):
    assert main(["train", "vae", "--data", str(image_npz), "--steps", "3", "--out", "vae",
                 "--no-progress", *TINY_AE]) == 0
    assert main(["eval", "vae", "-n", "40", "--features", "pixels"]) == 0
    out = capsys.readouterr().out
    assert "FD " in out and "FID" not in out and "elbo_bpd" in out
    r1 = json.loads(open("vae/eval.json").read())
    assert r1["features"]["name"].startswith("pixels") and not r1["features"]["is_fid"]
    m = r1["metrics"]
    assert m["fd"] > 0 and 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert r1["held_out"]["elbo_bpd"] > 0 and r1["seconds_per_sample"] > 0
    assert r1["likelihood"] == {"value": r1["held_out"]["elbo_bpd"], "unit": "bits/dim",
                                "levels": 256, "exact": False}
    assert "held-out bits/dim over 256 levels (bound)" not in out        # the head has no flag
    assert "held-out bits/dim over 256 levels" in out and "(bound)" in out
    assert r1["n_samples"] == 40 and r1["reference"]["items"] == 10
    assert not r1["novelty"]["memorising"] or r1["novelty"]["close_fraction"] > 0.2
    r2 = evaluate_run("vae", n=40, features="pixels", write=False)
    assert r2["metrics"] == m and r2["features"]["cached_reference"]      # same samples, same numbers
    x, y = blobs(30, seed=1)
    np.savez("other.npz", x=x, y=y)
    assert main(["eval", "vae", "-n", "40", "--features", "pixels", "--data", "other.npz"]) == 0
    r3 = json.loads(open("vae/eval.json").read())
    assert r3["reference"]["items"] == 30 and r3["data"] == "other.npz"
    assert r3["metrics"]["fd"] != m["fd"]
    assert main(["eval", "vae", "-n", "2"]) == 2
    assert "at least 4" in capsys.readouterr().err
    assert main(["eval", "nowhere"]) == 2


def test_wall_clock_budget_ends_training_early(image_data):
    model = Classifier(ClassifierConfig(arch="mlp"), DataInfo.of(image_data))
    cfg = TrainConfig(steps=1000, batch_size=8, progress=False, sample_every=0,
                      checkpoint_every=0, max_minutes=1e-9)
    t = Trainer(model, image_data, cfg)
    metrics = t.fit()
    assert t.step == 1 and "loss" in metrics        # the last step was still logged
    with pytest.raises(GenzooError, match="max_minutes"):
        from genzoo import config as C
        C.from_dict(TrainConfig, {"max_minutes": -1.0})


def test_genzoo_eval_of_a_text_run(tmp_path, capsys):
    words = "the cat sat on a mat and dog ran to big red house".split()
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(words[int(i)] for i in torch.randint(0, len(words), (8,), generator=g))
             for _ in range(200)]
    (tmp_path / "t.txt").write_text("\n".join(lines))
    assert main(["train", "lstm", "--data", "t.txt", "--steps", "2", "--out", "lm",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "lm", "-n", "8"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 30                    # a table, not the samples
    r = json.loads(open("lm/eval.json").read())
    assert r["features"]["name"] == "word n-grams"
    for n in (2, 3, 4):
        assert 0 <= r["metrics"][f"novelty_{n}"] <= 1 and 0 <= r["metrics"][f"repetition_{n}"] <= 1
    assert any(k.startswith("bits_per") for k in r["held_out"])
    lk = r["likelihood"]
    assert lk["unit"] == "bits/token" and lk["exact"] and lk["levels"] > 10     # the vocabulary
    assert "new 3-grams" in out and "repeated 3-grams" in out


def test_eval_flags_a_run_that_returns_its_training_images(image_npz, monkeypatch):
    from genzoo.evaluation import run_eval
    from genzoo.training.run import RunDir
    assert main(["train", "vae", "--data", str(image_npz), "--steps", "2", "--out", "vae",
                 "--no-progress", *TINY_AE]) == 0
    honest = evaluate_run("vae", n=40, features="pixels", write=False)
    train, _ = run_eval.load_reference(RunDir.open("vae").description)
    copies = train.batch(torch.arange(40))["x"]
    monkeypatch.setattr(run_eval, "draw", lambda model, n, seed=0, options=None: (copies[:n], 1e-3))
    copied = evaluate_run("vae", n=40, features="pixels", write=False)
    assert copied["novelty"]["memorising"] and copied["novelty"]["close_fraction"] == 1.0
    assert not honest["novelty"]["memorising"]


def test_novelty_in_few_dimensions_flags_only_copies():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(2000, 2, generator=g)
    held = torch.randn(300, 2, generator=g)
    near = train[:300] + 1e-3 * torch.randn(300, 2, generator=g)   # close to training points
    r = novelty(near, train, held)
    assert r.close_fraction > 0.5 and r.copy_fraction == 0 and not r.memorising
    assert novelty(near.repeat(1, 4), train.repeat(1, 4), held.repeat(1, 4)).memorising  # 8-d: flagged
    copied = novelty(train[:300], train, held)
    assert copied.memorising and copied.copy_fraction == 1.0


def test_close_but_blurry_samples_are_not_memorising():
    """Averages of training items (a blurry VAE's samples) lie nearer the training set than
    held-out items do, yet copy nothing: only near-copies against the held-out baseline count."""
    from genzoo.evaluation.novelty import verdict
    g = torch.Generator().manual_seed(0)
    train = torch.rand(600, 64, generator=g)
    held = torch.rand(200, 64, generator=g)
    picks = torch.randint(0, 600, (200, 4), generator=g)
    blurry = train[picks].mean(1)                        # each sample: the mean of 4 images
    r = novelty(blurry, train, held)
    assert r.close_fraction > 4 * r.q                    # the old rule called this memorising
    assert r.near_copy_fraction == 0 and not r.memorising
    text = verdict(r.to_dict(), "pixels (1x8x8)")
    assert "in pixels (1x8x8)" in text and "no evidence of copying" in text
    copied = novelty(train[:200] + 0.01 * torch.randn(200, 64, generator=g), train, held)
    assert copied.memorising and copied.near_copy_fraction == 1.0
    assert "memorising" in verdict(copied.to_dict(), "pixels")


def test_near_copies_are_weighed_against_the_held_out_baseline():
    """Data with duplicates: held-out items that are copies of training items raise the bar."""
    g = torch.Generator().manual_seed(1)
    train = torch.rand(400, 16, generator=g)
    held = torch.cat([train[:60], torch.rand(140, 16, generator=g)])     # 30% duplicates
    honest = torch.cat([train[60:120], torch.rand(140, 16, generator=g)])
    r = novelty(honest, train, held)
    assert r.held_out_near_copy_fraction == pytest.approx(0.3) and not r.memorising
    assert novelty(train[:200], train, held).memorising
