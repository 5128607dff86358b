r"""Benchmarks of the advanced GANs (issue 12): quality at equal wall time, and speed.

Quality: every family of one command trains on the same prepared data for the same
wall-clock minutes, then is measured alike (``genzoo eval``'s FD, KID, precision/recall in a
named feature space, the novelty check, the collapse indicator) against the same held-out
images. A command is resumable: run it again after a kill and each run continues from its
last checkpoint for what is left of its minutes; finished runs and their evaluations are
reused. After each run it rewrites its own section (keyed by data, families and minutes) of
benchmarks/results/advanced_gans.md: the command, the machine, the load average around each
run, the table.

The issue's runs (each one command; benchmarks/results/advanced_gans.md has what they gave):

    # StyleGAN2 + DiffAugment against DCGAN and WGAN-GP at equal wall time (also flowers64)
    OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans quality --data flowers32 \
        --families stylegan2:cpu,dcgan:small,wgan_gp:small --minutes 30 -n 1000
    # the VQ targets (recon NMSE <= 0.07, perplexity >= 400 of 512); pixel-space FD
    OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans quality --data cifar10 \
        --families vqgan:small --minutes 10 --features pixels -n 500
    # VQ-GAN against the VQ-VAE, each with its GPT prior, at equal total time
    OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans quality --data cifar10 \
        --families vqgan:small+prior,vqvae:small+prior --minutes 10 --prior-minutes 5
    # the speed entries (below), 2 repeats
    OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans speed --quick
    # options: --families FAMILY:PRESET[@KEY=VALUE...],... (default: stylegan2:cpu, progan:cpu,
    #   dcgan:sagan, dcgan:small, wgan_gp:small; e.g. stylegan2:cpu@augment=ada sets a model
    #   setting), --features classifier:RUN_DIR | inception:PATH | pixels
    #   (default: a classifier trained first on the data's labels for --features-minutes),
    #   -n samples, --out DIR, --datasets DIR, --results FILE; --smoke: tiny presets and
    #   3 steps, to check the wiring (writes no results file)

Data: ``flowers32`` / ``flowers64`` are the 1,500 flowers (shuffled with seed 0, the last 300
held out, so the held-out set spans the five classes), ``cifar10`` the 50,000 CIFAR-10 training
images (shuffled, the last 5,000 held out); each is written once to OUT/data/NAME.npz, which
every run reads. Run folders: OUT/NAME/runs/FAMILY-PRESET; the table: OUT/NAME/results.md/json.

Speed (steps/s and images/s of training at batch 32, fp32 and bf16 with their ratio; images/s
of sampling):

    OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans speed [--quick] [--families progan,...]

Prints the machine and its load before and after, and rewrites the speed section of the
results file; numbers taken under load are worthless.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks.harness import (build, machine, markdown, measure_sampling, modes_table,
                                synthetic_images)
from genzoo import data as D
from genzoo.evaluation.run_eval import evaluate_run
from genzoo.training import launch
from genzoo.training.run import RunDir

DATA = {  # name: (file under --datasets, side, held-out count)
    "flowers32": ("flowers/flowers64.tar", 32, 300),
    "flowers64": ("flowers/flowers64.tar", 64, 300),
    "cifar10": ("cifar10/cifar10_jpg.tar:train", 32, 5000),
}
FAMILIES = "stylegan2:cpu,progan:cpu,dcgan:sagan,dcgan:small,wgan_gp:small"
QUIET = dict(progress=False, log=lambda *a: None)


def prepare(a) -> tuple[str, str, int, int]:
    """(name, npz spec, side, held-out count): the named set shuffled once and written."""
    rel, side, holdout = DATA[a.data]
    path = Path(a.out) / "data" / f"{a.data}.npz"
    if not path.exists():
        ds = D.load(str(Path(a.datasets) / rel), D.DataOptions(image_size=side, holdout=0))
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
        ds = ds.subset(order)
        path.parent.mkdir(parents=True, exist_ok=True)
        x = ds.x.permute(0, 2, 3, 1).numpy()
        np.savez(path, x=x, y=ds.y.numpy())
    return a.data, str(path), side, holdout


def train_one(family: str, preset: str, data: str, side: int, holdout: int, minutes: float,
              out: Path, model: dict | None = None, smoke: bool = False) -> tuple[Path, float]:
    """Train into ``out`` for ``minutes`` of wall time, resumably: out/bench.json keeps the
    seconds spent. A run killed part-way continues from its last checkpoint for what is left of
    its minutes (the time after that checkpoint is lost and not counted); a finished run is
    reused."""
    book = out / "bench.json"
    state = json.loads(book.read_text()) if book.exists() else {"seconds": 0.0}
    if state.get("done"):
        return out, state["seconds"]
    last = RunDir(out).latest_checkpoint() if (out / "config.yaml").exists() else None
    if "started" in state:                      # killed: its time up to its last checkpoint
        state["seconds"] += max(0.0, last.stat().st_mtime - state.pop("started")) if last else 0
    left = 3.0 if smoke else minutes * 60 - state["seconds"]
    if last is not None and left <= 0:
        book.write_text(json.dumps({**state, "done": True}))
        return out, state["seconds"]
    budget = {"max_minutes": 0 if smoke else left / 60}
    if last is not None:
        spec = launch.resume_description(out, changes=budget)
    else:
        shutil.rmtree(out, ignore_errors=True)  # killed before its first checkpoint: anew
        spec = launch.resolve(family, data=data, preset="tiny" if smoke else (preset or None),
                              train={"steps": 3 if smoke else 10 ** 9, **budget,
                                     "checkpoint_every": 100, "sample_every": 0 if smoke else 500,
                                     "eval_every": 0},
                              data_options={"holdout": holdout, "image_size": side},
                              config={"model": model or {}})
    out.mkdir(parents=True, exist_ok=True)
    state["started"] = time.time()
    book.write_text(json.dumps(state))
    launch.train(spec, out, resume=last is not None, **QUIET)
    state["seconds"] += time.time() - state.pop("started")
    book.write_text(json.dumps({**state, "done": True}))
    return out, state["seconds"]


def evaluate_once(run: Path, features: str, n: int) -> dict:
    """``genzoo eval``'s measures of a finished run, kept in run/bench_eval.json."""
    path = run / "bench_eval.json"
    key = {"features": features, "n": n}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["result"]
    result = evaluate_run(run, features=features, n=n)
    path.write_text(json.dumps({"key": key, "result": result}, default=str))
    return result


def feature_space(a, data: str, side: int, holdout: int, root: Path) -> str:
    if a.features:
        return a.features
    run, _ = train_one("classifier", "", data, side, holdout, a.features_minutes,
                       root / "runs" / "features", smoke=a.smoke)
    return f"classifier:{run}"


def quality(a) -> None:
    name, data, side, holdout = prepare(a)
    root = Path(a.out) / name
    features = feature_space(a, data, side, holdout, root)
    rows, items = [], a.families.split(",")
    for item in items:
        item, *over = item.split("@")                    # "@key=value": a model setting
        family, _, preset = item.partition(":")
        preset, plus, _ = preset.partition("+")          # "+prior": a GPT prior after it
        tag = f"{preset or 'default'}{''.join('@' + o for o in over)}"
        folder = root / "runs" / f"{family}-{tag}"
        load0 = os.getloadavg()[0]
        model = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in over)}
        run, wall = train_one(family, preset, data, side, holdout, a.minutes, folder, model,
                              smoke=a.smoke)
        first = None
        if plus:
            prior, wall2 = train_one("vq_prior", "", data, side, holdout, a.prior_minutes,
                                     folder.with_name(folder.name + "-prior"),
                                     model={"first_stage": str(run)}, smoke=a.smoke)
            first = evaluate_once(run, features, a.n)
            run, wall = prior, wall + wall2
        result = evaluate_once(run, features, a.n)
        rows.append({**row(f"{family}:{tag}{plus and '+prior'}", run, wall,
                           result, first), "load": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"})
        print(markdown(rows[-1:]), flush=True)
        if a.results and not a.smoke:
            write_section(a.results, f"quality {name} {a.families} {a.minutes:g}",
                          report(a, name, features, rows, len(items)))
    (root / "results.json").write_text(json.dumps(rows, indent=1))
    (root / "results.md").write_text(report(a, name, features, rows, len(items)))
    budget = "smoke (3 steps each)" if a.smoke else f"{a.minutes} min each"
    print(f"\n{name}, {budget}, features {features}:\n" + markdown(rows))


def report(a, name: str, features: str, rows: list[dict], planned: int) -> str:
    """The markdown section of one quality command: what ran, where, under what load."""
    extra = f", the prior {a.prior_minutes:g} min more" if "+prior" in a.families else ""
    done = "" if len(rows) == planned else f" (partial: {len(rows)} of {planned} runs so far)"
    command = "OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans " + " ".join(sys.argv[1:])
    return (f"## {name}: {a.minutes:g} wall-clock minutes of training each{extra}{done}\n\n"
            f"    {command}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; "
            f"`load` is the 1-minute load average before-after each run (2 = both cores busy: "
            f"above it the run shared the machine and its minutes bought fewer steps). "
            f"Features: {features}; {a.n} samples per model. `spread_ratio`: samples' per-pixel "
            f"spread over the reals' in the last training batch; `spread_held`: the same over up "
            f"to {a.n} held-out images, of the evaluated generator (the collapse check).\n\n"
            + markdown(rows) + "\n")


def write_section(path: str, key: str, text: str) -> None:
    """Put ``text`` into the markdown file ``path`` under ``key``, replacing that key's old
    section (so that a rerun or a resumed command updates its own table only)."""
    file = Path(path)
    old = file.read_text() if file.exists() else (
        "# Advanced GANs (issue 12): measured numbers\n\nWritten by "
        "`python -m benchmarks.advanced_gans` (see its docstring for the plan).\n")
    begin, end = f"<!-- {key} -->", f"<!-- end {key} -->"
    block = f"{begin}\n{text}{end}\n"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(new)


def row(label: str, run: Path, wall: float, result: dict, first: dict | None) -> dict:
    m, nov = result.get("metrics", {}), result.get("novelty") or {}
    last = {}
    for r in RunDir(run).metrics():
        last.update(r)
    out = {"model": label, "steps": result.get("steps"), "minutes": wall / 60,
           "fd": next((v for k, v in m.items() if k in ("fd", "fid")), float("nan")),
           "kid": m.get("kid"), "precision": m.get("precision"), "recall": m.get("recall"),
           "novelty_ratio": nov.get("median_ratio"), "memorising": nov.get("memorising"),
           "spread_ratio": last.get("val/spread_ratio", last.get("critic/spread_ratio")),
           "spread_held": (result.get("held_out") or {}).get("spread_ratio"),
           "ms_per_sample": 1000 * (result.get("seconds_per_sample") or float("nan"))}
    held = (first or result).get("held_out") or {}
    if "recon_nmse" in held:                    # a VQ first stage: its reconstructions
        out.update(recon_nmse=held["recon_nmse"], psnr=held.get("psnr"),
                   perplexity=held.get("perplexity"))
    return out


# -- speed -----------------------------------------------------------------------------------
SPEED = [  # family, preset, model settings (progan: past its schedule, the full network)
    ("stylegan2", "cpu", {}),
    ("progan", "cpu", {"images_per_phase": 1}),
    ("dcgan", "sagan", {}),
    ("vqgan", "small", {"disc_start": 0}),
]


def speed(a) -> None:
    data = synthetic_images(512, 3, 32)
    modes = [{"precision": "fp32"}, {"precision": "bf16"}]
    load0, text = os.getloadavg()[0], []
    for family, preset, model in SPEED:
        if a.families and family not in a.families.split(","):
            continue
        rows = modes_table(family, data, modes, preset=preset, model=model, batch_size=32,
                           steps=a.steps, repeats=2 if a.quick else 3)
        text.append(f"{family} ({preset}), training at batch 32, 32x32 RGB; speedup = bf16 / "
                    f"fp32:\n\n" + markdown(rows, ["family", "preset", "precision", "params",
                                                   "steps_per_s", "items_per_s", "speedup",
                                                   "peak_mem_mb", "spread"]))
        print("\n" + text[-1], flush=True)
        if family == "vqgan":
            continue
        net = build(family, data, preset, **model)
        if family == "progan":
            net.shown.fill_(10 ** 9)
        rows = [measure_sampling(net, 256, repeats=2 if a.quick else 5)]
        text.append(f"{family}: sampling 256 images:\n\n" + markdown(rows, ["n", "samples_per_s",
                                                                          "peak_mem_mb"]))
        print(text[-1], flush=True)
    if a.results:
        command = "OMP_NUM_THREADS=2 python -m benchmarks.advanced_gans " + " ".join(sys.argv[1:])
        write_section(a.results, "speed", f"## Speed\n\n    {command}\n\nMeasured "
                      f"{time.strftime('%Y-%m-%d %H:%M')} on {machine()}, load "
                      f"{load0:.1f}-{os.getloadavg()[0]:.1f}.\n\n" + "\n\n".join(text) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--data", choices=sorted(DATA), required=True)
    q.add_argument("--families", default=FAMILIES)
    q.add_argument("--minutes", type=float, default=30.0, help="wall time per family")
    q.add_argument("--prior-minutes", type=float, default=5.0, help="for FAMILY:PRESET+prior")
    q.add_argument("--features", default=None, help="a feature space; default: train a classifier")
    q.add_argument("--features-minutes", type=float, default=5.0)
    q.add_argument("-n", type=int, default=2000, help="samples per model for the metrics")
    q.add_argument("--datasets", default=os.environ.get("GENZOO_DATASETS", "../shared/datasets"))
    q.add_argument("--out", default="/tmp/advanced-gans")
    q.add_argument("--smoke", action="store_true", help="tiny presets, 3 steps: the wiring only")
    q.add_argument("--results", default="benchmarks/results/advanced_gans.md",
                   help="the markdown file whose section for this command is (re)written after "
                        "each run ('' = none; never with --smoke)")
    s = sub.add_parser("speed")
    s.add_argument("--quick", action="store_true")
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--families", default=None, help="only these (comma-separated)")
    s.add_argument("--results", default="benchmarks/results/advanced_gans.md",
                   help="the markdown file whose speed section is rewritten ('' = none)")
    a = p.parse_args()
    print(machine(), f"| load {os.getloadavg()[0]:.2f}", flush=True)
    quality(a) if a.what == "quality" else speed(a)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
