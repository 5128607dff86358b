"""Probe of the GPT step of benchmarks/side_by_side.py: what PyTorch's fused AdamW kernel,
torch.compile and a second thread buy, for genzoo's Trainer and for the plain nanoGPT-style
step, in one process (interleaved repeats, medians); then a profile of genzoo's step.

    OMP_NUM_THREADS=2 python -m benchmarks.gpt_fused_probe        (about 3 minutes, alone)
"""
from __future__ import annotations

import os

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.plain import PlainGPT, plain_gpt_step
from benchmarks.harness import interleaved, markdown, table
from benchmarks.side_by_side import trainer_for
from benchmarks.text import synthetic_text

B, T, V = 12, 64, 65
SHAPE = dict(n_layer=4, n_head=4, n_embd=128, mlp_ratio=4.0, context=T, dropout=0.0,
             tokenizer="char")


def fuse(opt: torch.optim.Optimizer, on: bool = True) -> torch.optim.Optimizer:
    """Switch an Adam(W) to PyTorch's fused kernel (one pass over all tensors per step), or
    (``on=False``) to the per-operation one (genzoo's Adam took it before it was fused)."""
    for group in opt.param_groups:
        group["fused"], group["foreach"] = on, (False if on else None)
    return opt


def one_thread(fn):
    def step():
        torch.set_num_threads(1)
        fn()
        torch.set_num_threads(2)
    return step


def main() -> None:
    torch.set_num_threads(2)
    cpu = torch.device("cpu")
    data = synthetic_text(B * 16, T, V)
    print("load average before", os.getloadavg())

    def genzoo(fused: bool, **train):
        tr = trainer_for("gpt", data, SHAPE, {"batch_size": B, **train}, cpu)
        for opt in tr.optimizers:      # genzoo's default is fused: set either way
            fuse(opt, fused)
        return tr

    plain_g = torch.Generator().manual_seed(0)

    def plain(fused: bool):
        net = PlainGPT(V, T, 4, 4, 128)
        opt = fuse(net.optimizer()) if fused else net.optimizer()
        return lambda: plain_gpt_step(net, opt, data.x[torch.randint(len(data.x), (B,),
                                                                     generator=plain_g)])

    eager = genzoo(False)
    variants = {"genzoo fp32": eager.train_step,
                "genzoo fp32 fused adamw": genzoo(True).train_step,
                "genzoo compile fused adamw": genzoo(True, compile=True).train_step,
                "genzoo fp32 fused, 1 thread": one_thread(genzoo(True).train_step),
                "plain fp32": plain(False),
                "plain fp32 fused adamw": plain(True)}
    times = interleaved(variants, cpu, 20, 7, 5)
    print(markdown(table(times, "plain fp32", B * T, "tokens/s")))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            eager.train_step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print("load average after", os.getloadavg())


if __name__ == "__main__":
    main()
