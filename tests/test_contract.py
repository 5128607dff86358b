"""The contract every registered family keeps, checked for each of them: a family added later
is covered without writing a test.

Each family's ``tiny`` preset is resolved and built the way ``genzoo train`` does it, on data
of its modality that this module writes (labelled grey blobs for images, two clusters for
points, a small corpus for text, captioned colour blobs for captioned images); it must train
with finite losses (and, where that is quick, lower its loss on a fixed batch), sample in the
data's representation with its defaults and with every option it declares, and end a run
resumed from a checkpoint with exactly the weights of an uninterrupted one, in fp32 and under
bf16 autocast (asserted to be active).
Families standing on trained runs (config fields of type RunRef) are skipped (their shipped
pipeline's smoke run is their contract), unless the family declares those components optional
(``optional_components``): it is then tested here with them unset.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from conftest import blobs, captioned_images, layer_output_dtypes
from genzoo import config as C
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.training import Trainer
from genzoo.training.description import RunSpec
from genzoo.training.launch import prepare, resolve
from genzoo.training.run import RunDir

ENTRIES = registry.families()
CASES = [pytest.param(name, modality, id=name if "/" not in e.modality else f"{name}-{modality}")
         for name, e in ENTRIES.items() for modality in e.modality.split("/")]

# Families whose loss is a game or a contrast rather than a quantity that falls as they learn:
# a GAN's players (and an EBM's contrastive divergence) trade their losses back and forth.
# Every other family must lower its loss on a fixed batch by 5% in DESCENT_STEPS steps.
NO_DESCENT = {"dcgan": "adversarial", "wgan_gp": "adversarial", "cgan": "adversarial",
              "musegan": "adversarial",
              "stylegan2": "adversarial", "progan": "adversarial",
              "ebm": "contrastive divergence: E(real) - E(sample) chases its own sampler"}
DESCENT_STEPS = 60

CORPUS = "the cat sat on the mat. the dog sat on the log. a cat and a dog met. " * 12


# -- data of each modality, written as a user would give it -----------------------------------
def _images(folder):
    x, y = blobs(n=40, side=8)
    path = folder / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def _points(folder):
    rng = np.random.default_rng(0)
    centres = np.array([[-2.0, 0.0], [2.0, 1.0]])
    x = centres[rng.integers(0, 2, 200)] + 0.3 * rng.standard_normal((200, 2))
    path = folder / "points.csv"
    np.savetxt(path, x, delimiter=",", header="a,b", comments="")
    return path


def _text(folder):
    path = folder / "corpus.txt"
    path.write_text(CORPUS)
    return path


def _music(folder):
    """Four-voice chorales on a 16th-note grid (the JSB .npz layout): a pickup and 8 bars."""
    rng = np.random.default_rng(0)
    pieces = np.empty(12, dtype=object)
    for i in range(12):
        steps = np.repeat(rng.integers(-3, 4, (33, 4)), 4, axis=0)       # a chord per beat
        pieces[i] = (64 + steps - 7 * np.arange(4)).astype(np.float16)
    path = folder / "chorales.npz"
    np.savez(path, train=pieces)
    return path


DATA = {"image": _images, "points": _points, "text": _text, "music": _music,
        "captioned-image": captioned_images}


def describe(name: str, modality: str, folder, **train) -> RunSpec:
    """The run description of the family's tiny preset, resolved as ``genzoo train`` does."""
    needed = [r for r in C.run_refs(ENTRIES[name].config)
              if r not in ENTRIES[name].cls.optional_components]    # optional ones stay unset
    if needed:
        pytest.skip(f"{name} stands on trained runs ({', '.join(needed)}); "
                    "its shipped pipeline's smoke run is its contract (tests/test_pipelines.py)")
    if modality not in DATA:
        pytest.fail(f"{name}: no test data for modality {modality!r}: add a writer to DATA")
    loop = dict(batch_size=8, log_every=1, eval_every=0, sample_every=0, checkpoint_every=0,
                progress=False, device="cpu", **train)
    return resolve(name, data=str(DATA[modality](folder)), preset="tiny", train=loop,
                   data_options={"holdout": 8})


def build(spec: RunSpec):
    """(model with its initial weights, train set, held-out set, loop config), as ``genzoo
    train`` makes them."""
    model, train, held = prepare(spec, progress=False, log=lambda *_: None)
    return model, train, held, spec.train


# -- samples in the data's representation ----------------------------------------------------
def _check_image(x, info, n):
    assert isinstance(x, torch.Tensor) and x.dtype.is_floating_point, type(x)
    assert tuple(x.shape) == (n, *info.shape)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def _check_points(x, info, n):
    assert isinstance(x, torch.Tensor) and x.dtype.is_floating_point, type(x)
    assert tuple(x.shape) == (n, *info.shape) and torch.isfinite(x).all()


def _check_text(x, info, n):
    from genzoo.data import tokenizers as tk
    assert isinstance(x, list) and len(x) == n and all(isinstance(t, str) for t in x)
    tok = tk.from_dict(info.meta["tokenizer"])
    ids = [i for t in x for i in tok.encode(t)]
    assert all(0 <= i < tok.vocab_size for i in ids)


def _check_music(x, info, n):
    from genzoo.data.music import decode
    rep = info.meta["representation"]
    if rep == "pianoroll":
        _check_image(x, info, n)                     # floats in [0, 1] of the data's shape
    else:
        seqs = x if isinstance(x, dict) else {"x": x}
        vocabs = {"x": info.meta.get("note_vocab") or info.meta["vocab"],
                  "duration": info.meta.get("duration_vocab")}
        assert set(seqs) == ({"x", "duration"} if rep == "tokens" else {"x"}), set(seqs)
        for k, ids in seqs.items():
            assert ids.dtype == torch.long and len(ids) == n
            assert ids.min() >= 0 and ids.max() < len(vocabs[k])
    assert len(decode(x["x"] if isinstance(x, dict) else x, info.meta,
                      duration=x.get("duration") if isinstance(x, dict) else None)) == n


CHECK = {"image": _check_image, "points": _check_points, "text": _check_text,
         "music": _check_music}


def check_samples(model, n: int = 3) -> None:
    info = model.output_info
    if info.modality not in CHECK:
        pytest.fail(f"no check of samples of modality {info.modality!r}: add one to CHECK")
    model.eval()
    CHECK[info.modality](model.sample(n, generator=torch.Generator().manual_seed(0)), info, n)
    accepted = inspect.signature(model.sample).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for opt in type(model).sample_options:
        assert opt.name in accepted or open_ended, f"sample() takes no {opt.name!r}"
        value = opt.default if opt.default is not None else (opt.choices or (None,))[0]
        if value is None and opt.kind == "label":
            value = 0
        if value is not None:
            assert isinstance(value, opt.type), f"{opt.name}: {value!r} is not {opt.type.__name__}"
        x = model.sample(n, generator=torch.Generator().manual_seed(0), **{opt.name: value})
        CHECK[info.modality](x, info, n)


# -- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,modality", CASES)
def test_tiny_preset_trains_and_samples(name, modality, tmp_path):
    model, train, held, cfg = build(describe(name, modality, tmp_path, steps=3))
    trainer = Trainer(model, train, cfg, held_out=held)
    for _ in range(3):
        for k, v in trainer.train_step().items():
            assert torch.isfinite(v).all(), f"{name}: {k} = {v} at step {trainer.step}"
    for k, v in trainer.evaluate().items():
        assert np.isfinite(v), f"{name}: {k} = {v}"
    if ENTRIES[name].taxonomy == "discriminative":
        with pytest.raises(GenzooError):
            model.sample(2)
    else:
        check_samples(model)


def _fixed_loss(model, batch) -> float:
    """The first objective's loss on ``batch`` with the model's randomness fixed, as the recipe
    defines it at step 0 (a loss that gains a term later, VQ-GAN's adversarial one once its
    discriminator starts, is compared with itself)."""
    model.eval()
    steps_done, model.steps_done = model.steps_done, 0
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return float(model.objectives()[0].loss(batch)["loss"])
    finally:
        model.steps_done = steps_done


@pytest.mark.parametrize("name,modality", CASES)
def test_tiny_preset_lowers_its_loss_on_a_fixed_batch(name, modality, tmp_path):
    if name in NO_DESCENT:
        pytest.skip(f"{name}: {NO_DESCENT[name]}")
    model, train, _, cfg = build(describe(name, modality, tmp_path, steps=DESCENT_STEPS))
    trainer = Trainer(model, train, cfg)
    batch = train.batch(torch.arange(min(16, len(train))))
    trainer.train_step()        # the start, after data-dependent initialisations (RealNVP's
    before = _fixed_loss(model, batch)                  # standardisation) have been made
    trainer.fit()
    after = _fixed_loss(model, batch)
    assert after < 0.95 * before, f"{name}: loss {before:.4g} -> {after:.4g} in {DESCENT_STEPS} steps"


def _state(trainer) -> dict:
    tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    if trainer.ema is not None:
        tensors.update({f"ema.{k}": v for k, v in trainer.ema.state_dict().items()})
    return tensors


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name,modality", CASES)
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(name, modality, precision, tmp_path):
    steps, cut = 4, 2
    spec = describe(name, modality, tmp_path, steps=steps, precision=precision)
    # uninterrupted, watching the layers' output dtypes
    model, train, held, cfg = build(spec)
    whole = Trainer(model, train, cfg, held_out=held)
    with layer_output_dtypes(model) as dtypes:
        whole.fit()
    if precision == "bf16":
        assert torch.bfloat16 in dtypes, f"{name}: bf16 training ran without autocast"
    else:
        assert dtypes == {torch.float32}, f"{name}: fp32 training produced {dtypes}"
    # stopped after `cut` steps with a checkpoint, then resumed by a fresh process's path
    model, train, held, cfg = build(spec)
    run = RunDir.create(tmp_path / "run", spec.to_dict())
    first = Trainer(model, train, cfg, run=run, held_out=held, description=spec.to_dict())
    for _ in range(cut):
        first.train_step()
    first.save()
    model, train, held, cfg = build(spec)
    resumed = Trainer(model, train, cfg, run=run, held_out=held, description=spec.to_dict())
    assert resumed.step == cut
    resumed.fit()
    want, got = _state(whole), _state(resumed)
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k], got[k]), f"{name}: {k} differs after resuming"
