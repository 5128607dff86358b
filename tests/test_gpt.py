"""GPT: causal by gradient, cached sampling = uncached, masked loss, learning, CLI, showcase."""
from __future__ import annotations

import pytest
import torch

from genzoo import config as C
from genzoo.cli import main
from genzoo.data import DataOptions
from genzoo.data import tokenizers as tk
from genzoo.data.text import build
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.gpt import GPT, GPTConfig
from genzoo.training.trainer import TrainConfig, Trainer

CORPUS = "the cat sat on the mat. the dog sat on the log. " * 20


def tiny(context=16, docs=None, **cfg):
    ds = build(docs or [CORPUS], DataOptions(context=context), "mem", packed=docs is None)
    settings = dict(n_layer=2, n_head=2, n_embd=32, mlp_ratio=2.0, context=context, dropout=0.0)
    model = GPT(C.from_dict(GPTConfig, {**settings, **cfg}), DataInfo.of(ds))
    return model, ds


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_output_at_t_does_not_depend_on_later_inputs(norm):
    model, ds = tiny(norm=norm)
    model.eval()
    h = model.embed(ds.x[:1, :-1]).detach().requires_grad_()
    T = h.shape[1]
    for t in (0, 5, T - 1):
        (g,) = torch.autograd.grad(model.transform(h)[0, t].sum(), h)
        assert g[0, t + 1:].abs().sum() == 0
        assert g[0, :t + 1].abs().sum(-1).min() > 0


def test_kv_cache_sampling_equals_uncached_token_for_token():
    model, _ = tiny(context=8)       # 40 tokens over a context of 8: the window slides too
    model.eval()
    out = {}
    for cached in (True, False):
        model.use_cache = cached
        g = torch.Generator().manual_seed(3)
        out[cached] = model.sample(4, generator=g, prompt="the cat", max_tokens=40)
    assert out[True] == out[False]
    assert all(t.startswith("the cat") for t in out[True])
    assert max(map(len, out[True])) > len("the cat") + 20      # well past the first window


def test_sampling_is_seeded_and_greedy_is_deterministic():
    model, _ = tiny()
    model.eval()
    a = model.sample(3, torch.Generator().manual_seed(1), max_tokens=12)
    b = model.sample(3, torch.Generator().manual_seed(1), max_tokens=12)
    c = model.sample(3, torch.Generator().manual_seed(2), max_tokens=12)
    assert a == b and a != c
    greedy = model.sample(2, torch.Generator().manual_seed(5), prompt="the", temperature=0)
    assert greedy[0] == greedy[1]


def test_sampling_stops_at_the_end_token():
    model, _ = tiny(docs=["ab", "ba", "abab"], context=8)
    model.eval()
    with torch.no_grad():
        model.net.wte.weight[tk.END] = 0
        model.net.wte.weight[tk.END, :4] = 50.0          # tied head: END's logit dwarfs the rest
        model.net.ln_f.weight.zero_()
        model.net.ln_f.bias.zero_()
        model.net.ln_f.bias[:4] = 1.0
    assert model.sample(3, max_tokens=50) == ["", "", ""]


def test_padding_positions_carry_no_loss():
    model, ds = tiny(docs=["abc", "abcabcabca", "b"], context=12)
    batch = ds.batch(torch.arange(3))
    assert not batch["mask"].all()
    base = model.loss(batch)["loss"]
    scrambled = dict(batch, x=torch.where(batch["mask"], batch["x"], torch.randint(3, 6, batch["x"].shape)))
    torch.testing.assert_close(model.loss(scrambled)["loss"], base)
    # and the mean is over real targets only: equals the per-document losses weighted by length
    per = [model.loss(ds.batch(torch.tensor([i])))["loss"] * (ds.items["mask"][i].sum() - 1)
           for i in range(3)]
    torch.testing.assert_close(base, sum(per) / (ds.items["mask"].sum() - 3))


def test_loss_falls_on_a_tiny_corpus_and_weight_decay_skips_vectors():
    model, ds = tiny(lr=1e-2)
    (obj,) = model.objectives()
    decay, rest = obj.params
    assert all(p.dim() == 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in rest["params"]) and rest["weight_decay"] == 0
    assert obj.optimizer == "adamw" and not any("lm_head" in k for k in model.state_dict())
    cfg = C.from_dict(TrainConfig, {**GPT.train_defaults, "steps": 40, "batch_size": 16,
                                    "warmup_steps": 5, "progress": False})
    first = model.evaluate(ds.batch(torch.arange(16)))["loss"].item()
    Trainer(model, ds, cfg).fit()
    model.eval()
    out = model.evaluate(ds.batch(torch.arange(16)))
    assert first > 2.5 and out["loss"].item() < 0.5
    assert out["bits_per_char"].item() == pytest.approx(out["loss"].item() / 0.6931, rel=1e-3)


def test_windows_longer_than_the_context_are_a_clear_error():
    ds = build([CORPUS], DataOptions(context=32), "corpus.txt", packed=True)
    with pytest.raises(GenzooError, match="data windows hold 32 tokens, more than the model's context 16"):
        GPT(GPTConfig(context=16), DataInfo.of(ds))


def test_attention_maps_over_the_prompt():
    model, _ = tiny()
    model.eval()
    tokens, maps = model.attention_maps("the cat")
    assert tokens == list("the cat") and len(maps) == 2 and maps[0].shape == (2, 7, 7)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(2, 7))


def test_cli_train_sample_and_showcase(tmp_path, capsys):
    (tmp_path / "c.txt").write_text(CORPUS)
    args = ["train", "gpt", "--data", str(tmp_path / "c.txt"), "--steps", "4", "--out",
            str(tmp_path / "run"), "--no-progress", "--set", "n_embd=16", "--set", "context=16",
            "--set", "data.tokenizer=char", "--set", "train.sample_n=2"]
    assert main(args) == 0
    show = tmp_path / "run" / "showcase"
    for name in ("next_token.txt", "attention.png", "attention.html", "samples_t0_5.txt"):
        assert (show / name).stat().st_size > 0
    assert "temperature 0.5:" in (show / "next_token.txt").read_text()
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "run"), "--prompt", "the d", "-n", "2",
                 "--max-tokens", "5", "--top-k", "3", "--top-p", "0.9", "--temperature", "0.7",
                 "--out", str(tmp_path / "s.txt")]) == 0
    printed = capsys.readouterr().out
    texts = (tmp_path / "s.txt").read_text().split("\n" + "-" * 60 + "\n")
    assert len(texts) == 2 and all(t.startswith("the d") for t in texts)
    assert texts[0].strip() in printed
