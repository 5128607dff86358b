"""Attention (causal by gradient, cache = full pass) and the sampling filters."""
from __future__ import annotations

import pytest
import torch

from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.nn.attention import KVCache, MultiHeadAttention
from genzoo.nn.sampling import check_sampling, filter_logits, generate, sample_next


def test_causal_attention_output_at_t_depends_on_no_later_input():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, causal=True).eval()
    x = torch.randn(1, 7, 16, requires_grad=True)
    for t in range(7):
        (g,) = torch.autograd.grad(attn(x)[0, t].sum(), x)
        assert g[0, t + 1:].abs().sum() == 0
        assert (g[0, :t + 1].abs().sum(-1) > 0).all()


def test_non_causal_attention_sees_the_whole_sequence_and_cross_attends():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 5, 8, requires_grad=True)
    (g,) = torch.autograd.grad(attn(x)[0, 0].sum(), x)
    assert (g[0].abs().sum(-1) > 0).all()
    cross = MultiHeadAttention(8, 2, context_dim=3)
    assert cross(x, context=torch.randn(1, 11, 3)).shape == (1, 5, 8)


def test_kv_cache_one_position_at_a_time_equals_the_full_pass():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, causal=True).eval()
    x = torch.randn(2, 9, 16)
    full = attn(x)
    cache = KVCache(9)
    parts = [attn(x[:, :4], cache=cache)] + [attn(x[:, t:t + 1], cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    cache2 = KVCache(9)                      # several new positions over a non-empty cache
    attn(x[:, :3], cache=cache2)
    torch.testing.assert_close(attn(x[:, 3:], cache=cache2), full[:, 3:], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cache full"):
        attn(x[:, :1], cache=cache)


def test_kept_attention_weights_are_causal_distributions():
    attn = MultiHeadAttention(8, 2, causal=True).eval()
    attn.keep_weights = True
    attn(torch.randn(1, 6, 8))
    w = attn.weights
    assert w.shape == (1, 2, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 6))
    assert w.triu(1).abs().max() == 0


def test_top_k_top_p_and_temperature():
    logits = torch.log(torch.tensor([[0.0, 0.1, 0.4, 0.3, 0.2]]).clamp_min(1e-12))
    logits[0, tk.PAD] = 10.0                       # padding is never drawn, however likely
    kept = lambda l: torch.isfinite(l[0]).nonzero().flatten().tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == [2, 3]
    assert kept(filter_logits(logits, top_p=0.65)) == [2, 3]   # 0.4 < 0.65 <= 0.4 + 0.3
    assert kept(filter_logits(logits, top_p=0.7)) == [2, 3]
    assert kept(filter_logits(logits, top_p=0.71)) == [2, 3, 4]
    assert kept(filter_logits(logits, top_p=0.01)) == [2]      # the likeliest always stays
    assert sample_next(logits, temperature=0).item() == 2      # greedy
    p_cold = filter_logits(logits, temperature=0.5).softmax(-1)[0]
    p = filter_logits(logits).softmax(-1)[0]
    assert p_cold[2] > p[2] and p_cold[1] < p[1]
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits.expand(4000, -1), g, top_k=3) for _ in range(1)]).flatten()
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    assert freq[0] == 0 and freq[1] == 0
    assert abs(freq[2] - 0.4 / 0.9) < 0.03 and abs(freq[4] - 0.2 / 0.9) < 0.03


def test_generate_stops_rows_at_the_end_token():
    def step(new, state):            # always END after two tokens of 5
        n = 0 if state is None else state + 1
        logits = torch.full((new.shape[0], 6), -1e9)
        logits[:, tk.END if n >= 2 else 5] = 0
        return logits, n
    out = generate(step, torch.ones(3, 1, dtype=torch.long), max_tokens=10)
    assert out.tolist() == [[5, 5, tk.END]] * 3
    assert generate(step, torch.ones(3, 1, dtype=torch.long), max_tokens=1).shape == (3, 1)


@pytest.mark.parametrize("args, message", [((-1, None, None, 5), "--temperature"),
                                           ((1, 0, None, 5), "--top-k"),
                                           ((1, None, 1.5, 5), "--top-p"),
                                           ((1, None, None, -2), "--max-tokens")])
def test_bad_sampling_settings_are_named(args, message):
    with pytest.raises(GenzooError, match=message):
        check_sampling(*args)
