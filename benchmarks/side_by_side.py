"""Speed side by side: genzoo against plain PyTorch, and sampler against sampler, in one process.

    OMP_NUM_THREADS=2 python -m benchmarks.side_by_side --threads 2          (all parts, CPU)
    python -m benchmarks.side_by_side --device cuda                          (the GPU figures)
    python -m benchmarks.side_by_side --parts gpt --quick                    (a few seconds)

Parts (``--parts``, comma-separated):
  gpt        genzoo's GPT training step (4 layers, 4 heads, width 128, block 64, batch 12,
             vocab 65) in each mode (fp32, bf16, torch.compile, both) against a plain
             nanoGPT-style GPT of the same shape (benchmarks/plain.py); MFU against this
             machine's measured peak matmul FLOP/s (on CUDA the fp32 peak is TF32's, as the
             Trainer turns TF32 on: ``train.tf32``)
  gpt2       (CUDA) the same at the GPT-2 small shape (12 x 768, block 1024, batch 16)
  unet       the DDPM U-Net (genzoo's default recipe): genzoo's step in each mode (fp32, +EMA,
             bf16, bf16 + channels_last, bf16 + compile) against the obvious eager loop round a
             copy of the same network; MFU from counted FLOPs
  vae        the same for the VAE's encoder and decoder
  diffusion  sampling: DPM-Solver++(2M) at 20 steps against DDIM at 100, images/s
  gpt-sample GPT (6 x 384, context 256) tokens/s with and without the key-value cache
  pixelcnn   PixelCNN samples/s (the classic 16x16, 4-level recipe)
  max-batch  (CUDA) the largest batch of the GPT and U-Net steps that fits, in bf16

How: every variant is built and warmed up first (compilation included); then the repeats are
interleaved (each repeat times every variant once, in a rotating order), so that drift of the
machine touches all alike; the figure is the median over repeats, and ratios are taken between
medians of this one process. Threads are pinned (``--threads``: torch's intra-op threads, one
inter-op thread, and the process's CPU affinity), and the load average is printed before and
after: numbers taken while other work ran are not worth keeping.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time
import traceback

import torch

from benchmarks.harness import (build, count_flops, interleaved, machine, markdown,
                                peak_matmul_flops, synthetic_images, table)
from benchmarks.plain import (PlainGPT, gpt_flops_per_token, plain_diffusion_step, plain_gpt_step,
                              plain_vae_step)
from benchmarks.text import synthetic_text
from genzoo import config as C
from genzoo.nn.sampling import generate
from genzoo.training.trainer import TrainConfig, Trainer

PARTS = ("gpt", "gpt2", "unet", "vae", "diffusion", "gpt-sample", "pixelcnn", "max-batch")



def trainer_for(family: str, data, model: dict, train: dict, device) -> Trainer:
    net = build(family, data, None, **model)
    settings = {**net.train_defaults, "progress": False, "eval_every": 0, "ema_decay": 0.0,
                "device": str(device), **train}
    return Trainer(net, data, C.from_dict(TrainConfig, settings, where="train config"))


def modes(device, channels_last: bool, compile_: bool) -> dict[str, dict]:
    out = {"genzoo fp32": {"precision": "fp32"}, "genzoo bf16": {"precision": "bf16"}}
    if channels_last:
        out["genzoo bf16 + channels_last"] = {"precision": "bf16", "channels_last": True}
    if compile_:
        out["genzoo compile"] = {"precision": "fp32", "compile": True}
        out["genzoo bf16 + compile"] = {"precision": "bf16", "compile": True}
    return out


# -- the parts --------------------------------------------------------------------------------
def part_gpt(a, device, peak, L=4, H=4, d=128, T=64, B=12, V=65):
    """genzoo's GPT step in each mode against the plain nanoGPT-style step of the same shape."""
    shape = dict(n_layer=L, n_head=H, n_embd=d, mlp_ratio=4.0, context=T, dropout=0.0,
                 tokenizer="char")
    data = synthetic_text(B * 16, T, V).to(device)
    variants = {}
    for name, m in modes(device, False, not a.no_compile).items():
        tr = trainer_for("gpt", data, shape, {"batch_size": B, **m}, device)
        variants[name] = tr.train_step
    g = torch.Generator().manual_seed(0)
    for bf16 in (False, True):
        plain = PlainGPT(V, T, L, H, d).to(device)
        opt = plain.optimizer()
        x = data.x

        def step(plain=plain, opt=opt, bf16=bf16):
            plain_gpt_step(plain, opt, x[torch.randint(len(x), (B,), generator=g)], bf16)
        variants["plain bf16" if bf16 else "plain fp32"] = step
    n = sum(p.numel() for p in plain.parameters()) - T * d
    per_step = B * T * gpt_flops_per_token(n, L, T, d)
    times = interleaved(variants, device, a.steps, a.repeats, a.warmup)
    return table(times, "plain fp32", B * T, "tokens/s", {k: per_step for k in variants}, peak)


def part_gpt2(a, device, peak):
    """(CUDA) the GPT-2 small shape (12 layers, 12 heads, width 768, block 1024, batch 16,
    vocab 50304): the size at which a GPU's matrix units, not kernel launches, set the pace."""
    if device.type != "cuda":
        return [{"note": "gpt2 runs on CUDA only"}]
    return part_gpt(a, device, peak, L=12, H=12, d=768, T=1024, B=16, V=50304)


def part_unet(a, device, peak):
    side, B = (64, 64) if device.type == "cuda" else (32, 16)
    data = synthetic_images(B * 8, 3, side).to(device)
    model = {"image_size": side}
    variants, flops = {}, {}
    for name, m in {**modes(device, True, not a.no_compile),
                    "genzoo fp32 + EMA": {"precision": "fp32", "ema_decay": 0.999}}.items():
        tr = trainer_for("ddpm", data, model, {"batch_size": B, **m}, device)
        variants[name] = tr.train_step
    net = copy.deepcopy(tr.model.net)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(0)
    for bf16 in (False, True):
        variants["plain bf16" if bf16 else "plain fp32"] = (
            lambda bf16=bf16: plain_diffusion_step(
                net, opt, data.batch(torch.randint(len(data), (B,), generator=g))["x"], bf16))
    per_step = count_flops(variants["plain fp32"])
    flops = {k: per_step for k in variants}
    times = interleaved(variants, device, a.steps, a.repeats, a.warmup)
    return table(times, "plain fp32", B, "images/s", flops, peak)


def part_vae(a, device, peak):
    B = 100
    data = synthetic_images(B * 8, 1, 32).to(device)
    variants = {}
    for name, m in modes(device, True, not a.no_compile).items():
        tr = trainer_for("vae", data, {}, {"batch_size": B, **m}, device)
        variants[name] = tr.train_step
    parts = copy.deepcopy(torch.nn.ModuleDict({"encoder": tr.model.encoder, "head": tr.model.head,
                                               "decoder": tr.model.decoder}))
    opt = torch.optim.Adam(parts.parameters(), lr=tr.model.config.lr)
    beta = tr.model.config.beta
    g = torch.Generator().manual_seed(0)
    for bf16 in (False, True):
        variants["plain bf16" if bf16 else "plain fp32"] = (
            lambda bf16=bf16: plain_vae_step(
                parts, opt, data.batch(torch.randint(len(data), (B,), generator=g))["x"], beta, bf16))
    per_step = count_flops(variants["plain fp32"])
    times = interleaved(variants, device, a.steps, a.repeats, a.warmup)
    return table(times, "plain fp32", B, "images/s", {k: per_step for k in variants}, peak)


def _sampling(model, device, variants_kwargs: dict[str, dict], n: int, a, unit="samples/s"):
    model = model.to(device).eval()
    g = torch.Generator(device).manual_seed(0)
    variants = {k: (lambda kw=kw: model.sample(n, generator=g, **kw))
                for k, kw in variants_kwargs.items()}
    with torch.no_grad():
        times = interleaved(variants, device, 1, a.sample_repeats, 1)
    return table(times, next(iter(variants)), n, unit)


def part_diffusion(a, device, peak):
    side = 64 if device.type == "cuda" else 32
    model = build("ddpm", synthetic_images(64, 3, side), None, image_size=side)
    n = 64 if device.type == "cuda" else (2 if a.quick else 16)
    return _sampling(model, device, {"DDIM, 100 steps": {"sampler": "ddim", "steps": 100},
                                     "DPM-Solver++(2M), 20 steps": {"sampler": "dpm++2m",
                                                                    "steps": 20}}, n, a,
                     "images/s")


def part_gpt_sample(a, device, peak):
    T, V = 256, 65
    model = build("gpt", synthetic_text(8, T, V), "shakespeare-char", context=T).to(device).eval()
    prompt, new = 16, (32 if a.quick else T - 16)
    start = torch.randint(3, V, (1, prompt), generator=torch.Generator().manual_seed(0)).to(device)
    g = torch.Generator(device).manual_seed(0)

    def run(cached):
        model.use_cache = cached
        return generate(model.step, start, new, g, end_id=-1)
    with torch.no_grad():
        times = interleaved({"no cache": lambda: run(False), "KV cache": lambda: run(True)},
                            device, 1, a.sample_repeats, 1)
    return table(times, "no cache", new, "tokens/s")


def part_pixelcnn(a, device, peak):
    model = build("pixelcnn", synthetic_images(16, 1, 16), None)
    return _sampling(model, device, {"fp32": {}}, 4 if a.quick else 16, a)


def part_max_batch(a, device, peak):
    """The largest batch (a power of two) whose bf16 training step fits on the GPU."""
    if device.type != "cuda":
        return [{"note": "max-batch runs on CUDA only"}]
    rows = []
    for family, make in (("gpt", lambda b: (synthetic_text(b, 64, 65), dict(
            n_layer=4, n_head=4, n_embd=128, mlp_ratio=4.0, context=64, dropout=0.0,
            tokenizer="char"))), ("ddpm", lambda b: (synthetic_images(b, 3, 64), {"image_size": 64}))):
        b, best, limit = 16, None, f"the search stops at {2 ** 16}"
        while b <= 2 ** 16:
            try:
                data, model = make(b)
                trainer_for(family, data.to(device), model, {"batch_size": b, "precision": "bf16"},
                            device).train_step()
                torch.cuda.synchronize(device)
                best, b = b, b * 2
            except (torch.cuda.OutOfMemoryError, RuntimeError) as e:
                limit = f"{b}: {str(e).splitlines()[0][:80]}"
                break
            finally:
                torch.cuda.empty_cache()
        rows.append({"variant": f"{family} bf16", "largest batch": best, "next": limit,
                     "GiB": torch.cuda.get_device_properties(device).total_memory / 2**30})
    return rows


CUDA_ONLY = ("gpt2", "max-batch")
RUN = {"gpt": part_gpt, "gpt2": part_gpt2, "unet": part_unet, "vae": part_vae,
       "diffusion": part_diffusion, "gpt-sample": part_gpt_sample, "pixelcnn": part_pixelcnn,
       "max-batch": part_max_batch}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--parts", default=",".join(p for p in PARTS if p not in CUDA_ONLY))
    ap.add_argument("--steps", type=int, default=10, help="training steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sample-repeats", type=int, default=3, help="repeats of the sampling parts")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true", help="leave out the compiled modes")
    ap.add_argument("--quick", action="store_true", help="a few seconds a part: to see it runs")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    if a.quick:
        a.steps, a.repeats, a.sample_repeats, a.warmup, a.no_compile = 2, 2, 2, 1, True
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:a.threads]
        os.sched_setaffinity(0, cores)
    device = torch.device(a.device)
    print(machine(), f"| pinned to {a.threads} thread(s)", flush=True)
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} "
          f"({os.cpu_count()} cores)", flush=True)
    size = 8192 if device.type == "cuda" else 1024
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = {"fp32": peak_matmul_flops(device, torch.float32, n=size),
            "bf16": peak_matmul_flops(device, torch.bfloat16, n=size)}
    print(f"peak matmul: fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.1f} "
          f"GFLOP/s", flush=True)
    results = {}

    def save(load):
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"machine": machine(), "load": load, "peak": peak, "args": vars(a),
                           "results": results}, f, indent=1)
    for part in a.parts.split(","):
        if part not in RUN:
            raise SystemExit(f"unknown part {part!r} (parts: {', '.join(PARTS)})")
        t = time.perf_counter()
        try:
            rows = RUN[part](a, device, peak)
        except Exception as e:     # one part's failure must not lose the others' figures
            traceback.print_exc()
            rows = [{"variant": "failed", "error": f"{type(e).__name__}: {e}"[:300]}]
        results[part] = rows
        save([load0])              # after every part: a run stopped at its limit keeps them
        print(f"\n## {part} ({time.perf_counter() - t:.0f} s)\n" + markdown(rows), flush=True)
        timed = [r for r in rows if "ms" in r and r["variant"].startswith("genzoo")]
        if timed:
            best = min(timed, key=lambda r: r["ms"])
            print(f"fastest genzoo mode: {best['variant']}", flush=True)
    load1 = os.getloadavg()
    print(f"\nload average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if max(load0[0], load1[0]) > a.threads + 0.5:
        print("warning: the machine was busy (load above the pinned threads): rerun alone")
    save([load0, load1])


if __name__ == "__main__":
    main()
