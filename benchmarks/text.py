"""Benchmark entry: LSTM and GPT training and sampling speed, and GPT's share of peak FLOP/s.

    OMP_NUM_THREADS=1 python -m benchmarks.text            (from the repository root, in the .venv)
    python -m benchmarks.text --quick                      (fewer, shorter measurements)

Training: tokens/s (items/s x context) in fp32 and bf16 for the classic recipes (word level,
10,000 words) and the character presets. Sampling: tokens/s with and without GPT's key-value
cache, and the LSTM's recurrent state, over more tokens than the context (so GPT's window
slides); the end token is ignored so every row runs to max_tokens. Model FLOP utilisation:
training FLOPs per token 6 N + 12 L T d (Kaplan et al. 2020; N = parameters without position
embeddings; 12 L T d counts the attention products QK^T and AV, forward and backward) times
tokens/s, over the peak matmul FLOP/s of this machine measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks.harness import (build, machine, markdown, measure_training, peak_matmul_flops,
                                timed)
from genzoo.data import tokenizers as tk
from genzoo.data.dataset import TensorDataset
from genzoo.nn.sampling import generate


def synthetic_text(n: int, context: int, vocab: int, seed: int = 0) -> TensorDataset:
    """Random token windows with a vocabulary of ``vocab`` (content irrelevant for speed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(len(tk.SPECIALS), vocab, (n, context + 1), generator=g)
    words = tk.WordTokenizer(tk.SPECIALS + [f"w{i}" for i in range(vocab - len(tk.SPECIALS))])
    meta = {"tokenizer": words.to_dict(), "vocab_size": vocab, "packed": True}
    return TensorDataset(x=x, modality="text", source="synthetic", meta=meta,
                         items={"mask": torch.ones_like(x, dtype=torch.bool)})


def flops_per_token(model) -> float:
    c = model.config
    n = model.num_parameters() - model.net.wpe.weight.numel()
    return 6 * n + 12 * c.n_layer * c.context * c.n_embd


def sampling_tokens_per_s(model, n: int, prompt: int, max_tokens: int, repeats: int) -> float:
    """New tokens/s after a random prompt of ``prompt`` tokens."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    start = torch.randint(len(tk.SPECIALS), model.V, (1, prompt), generator=g).expand(n, -1)
    run = lambda: generate(model.step, start, max_tokens, g, end_id=-1)  # noqa: E731
    with torch.no_grad():
        run()
        times = timed(run, torch.device("cpu"), repeats)
    return n * max_tokens / statistics.median(times)


CASES = [  # (family, preset, model overrides, vocab, context, batch, sampling rows)
    # the word-level recipes put 10,000-way softmaxes over every position: batch 8 on a CPU
    ("lstm", None, {}, 10000, 200, 8, 8),
    ("gpt", None, {}, 10000, 80, 8, 8),
    ("gpt", "small-char", {}, 68, 128, 32, 8),
    ("lstm", "char-rnn", {}, 68, 100, 32, 8),
    ("gpt", "shakespeare-char", {}, 68, 256, 8, 1),
]


TRAIN_COLUMNS = ["family", "preset", "precision", "params", "context", "batch_size",
                 "steps_per_s", "tokens_per_s", "mfu", "peak_mem_mb", "spread"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(machine())
    peak = {"fp32": peak_matmul_flops("cpu", torch.float32, n=1024 if args.quick else 2048),
            "bf16": peak_matmul_flops("cpu", torch.bfloat16, n=1024 if args.quick else 2048)}
    print(f"peak matmul: fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s")
    rows, samp = [], []
    for family, preset, over, vocab, T, bs, rows_n in CASES:
        big = preset == "shakespeare-char"
        if args.quick and big:
            continue
        data = synthetic_text(4 * bs, T, vocab)
        model_cfg = {**over, "context": T}
        for precision in ("fp32", "bf16"):
            r = measure_training(family, data, steps=2 if big else 3, warmup=1,
                                 repeats=2 if big else 3, preset=preset, model=model_cfg,
                                 batch_size=bs, precision=precision)
            r["tokens_per_s"] = r["items_per_s"] * T
            r["context"] = T
            if family == "gpt":
                net = build(family, data, preset, **model_cfg)
                r["mfu"] = flops_per_token(net) * r["tokens_per_s"] / peak[precision]
            rows.append(r)
            print(markdown([r], TRAIN_COLUMNS).splitlines()[-1], flush=True)
        net = build(family, data, preset, **model_cfg)
        modes = [("cache", True), ("no cache", False)] if family == "gpt" else [("state", True)]
        for name, cached in modes:
            net.use_cache = cached
            samp.append({"family": family, "preset": preset or "", "mode": name, "rows": rows_n,
                         "prompt": T // 2, "new_tokens": T, "context": T,
                         "tokens_per_s": sampling_tokens_per_s(net, rows_n, T // 2, T,
                                                               1 if big else 3)})
            print(markdown(samp[-1:]).splitlines()[-1], flush=True)
    print("\ntraining (median of timed repeats; tokens/s = items/s x context):")
    print(markdown(rows, TRAIN_COLUMNS))
    print("\nsampling: rows x new_tokens after a random prompt of context/2 tokens (the window "
          "slides past the context), end token ignored:")
    print(markdown(samp))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
