"""LSTM: causal by gradient, stepwise state = full pass, learning, prompts, resume, CLI."""
from __future__ import annotations

import torch

from genzoo import config as C
from genzoo.cli import main
from genzoo.data import DataOptions
from genzoo.data.text import build
from genzoo.models.base import DataInfo
from genzoo.models.lstm import LSTM, LSTMConfig
from genzoo.training.trainer import TrainConfig, Trainer

CORPUS = "to be or not to be, that is the question. " * 20


def tiny(docs=None, context=16, **cfg):
    ds = build(docs or [CORPUS], DataOptions(context=context), "mem", packed=docs is None)
    settings = dict(embedding_dim=16, hidden_dim=32, context=context)
    return LSTM(C.from_dict(LSTMConfig, {**settings, **cfg}), DataInfo.of(ds)), ds


def test_classic_recipe_defaults():
    c = LSTMConfig()
    assert (c.embedding_dim, c.hidden_dim, c.num_layers, c.tokenizer) == (100, 128, 1, "word")
    assert LSTM.data_defaults(c) == {"tokenizer": "word", "context": 200}


def test_output_at_t_does_not_depend_on_later_inputs():
    model, ds = tiny(num_layers=2)
    model.eval()
    e = model.embed(ds.x[:1, :-1]).detach().requires_grad_()
    for t in (0, 7, 15):
        (g,) = torch.autograd.grad(model.transform(e)[0][0, t].sum(), e)
        assert g[0, t + 1:].abs().sum() == 0
        assert g[0, :t + 1].abs().sum(-1).min() > 0


def test_stepping_the_recurrent_state_equals_the_full_pass():
    model, ds = tiny()
    model.eval()
    x = ds.x[:2, :10]
    full = model.logits(x)
    logits, state = model.step(x[:, :4], None)
    torch.testing.assert_close(logits, full[:, 3])
    for t in range(4, 10):
        logits, state = model.step(x[:, t:t + 1], state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)


def test_loss_falls_and_samples_continue_the_prompt():
    model, ds = tiny(lr=1e-2)
    cfg = C.from_dict(TrainConfig, {**LSTM.train_defaults, "steps": 60, "batch_size": 16,
                                    "progress": False})
    first = model.evaluate(ds.batch(torch.arange(16)))["loss"].item()
    Trainer(model, ds, cfg).fit()
    model.eval()
    after = model.evaluate(ds.batch(torch.arange(16)))["loss"].item()
    assert first > 2.5 and after < 1.0
    texts = model.sample(3, torch.Generator().manual_seed(0), prompt="to be or", max_tokens=12,
                         temperature=0)
    assert texts[0].startswith("to be or not to be")


def test_word_level_documents_and_unknown_prompt_words():
    docs = ["recipe for toast | toast the bread .", "recipe for tea | boil the water ."] * 5
    ds = build(docs, DataOptions(context=12, tokenizer="word"), "mem", packed=False)
    model = LSTM(C.from_dict(LSTMConfig, {"embedding_dim": 8, "hidden_dim": 16, "context": 12}),
                 DataInfo.of(ds))
    texts = model.sample(2, torch.Generator().manual_seed(0), prompt="recipe for zebra", max_tokens=3)
    assert all(t.startswith("recipe for <unk>") for t in texts)


def test_cli_train_resume_equals_uninterrupted_and_sample(tmp_path, capsys):
    (tmp_path / "c.txt").write_text(CORPUS)
    common = ["--data", str(tmp_path / "c.txt"), "--no-progress", "--set", "hidden_dim=16",
              "--set", "embedding_dim=8", "--set", "context=16", "--set", "data.tokenizer=bpe",
              "--set", "data.vocab_size=280", "--set", "train.checkpoint_every=3",
              "--set", "train.sample_every=0"]
    assert main(["train", "lstm", "--steps", "6", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "lstm", "--steps", "3", "--out", str(tmp_path / "b"), *common]) == 0
    assert main(["train", "--resume", "--out", str(tmp_path / "b"), "--steps", "6"]) == 0
    from genzoo.training.run import load_model
    a, _ = load_model(tmp_path / "a")
    b, _ = load_model(tmp_path / "b")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "a"), "--prompt", "to be", "-n", "2",
                 "--max-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("to be") >= 2 and (tmp_path / "a" / "samples" / "sample.txt").exists()
