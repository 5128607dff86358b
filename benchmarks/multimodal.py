"""Benchmark entry: the multimodal families, CLIP and text-to-image latent diffusion.

    python -m benchmarks.multimodal clip --data cifar10 --minutes 4     (from the repository root)
    python -m benchmarks.multimodal clip --data shapes --minutes 4
    python -m benchmarks.multimodal t2i-train --out runs/bench-t2i --minutes 5 4 20 4
    python -m benchmarks.multimodal t2i --out runs/bench-t2i --n 500
    python -m benchmarks.multimodal t2i-reader --out runs/bench-t2i --n 500

``clip``: a CLIP (preset ``cpu``) trained for a wall-clock budget (the step count is set from
the measured rate of the first steps, so the cosine schedule ends on time). CIFAR-10: the
training images captioned "a photo of a {class}"; zero-shot accuracy on the 10,000 test
images, and retrieval recall@1/5 of test images against their captions (one caption per class:
a caption retrieves any image of its class). Shapes: recall@1/5 on ``shapes:test`` and on
``shapes:novel`` (colour-shape pairs never seen in training), and zero-shot accuracy per
attribute: for each picture, its full caption against the captions that change one attribute
of its first group (colour, shape, size, count, position or relation).

``t2i-train``: the shipped text-to-image chain on ``shapes`` with budgets in minutes for the
first stage, the CLIP text encoder, the latent diffusion model and a second CLIP (another seed)
that only judges, so that the CLIP score is not taken by the text encoder the model was
trained with. ``t2i``: for prompts = the first captions of ``--n`` pictures of ``shapes:test``
and ``shapes:novel``, samples at guidance w = 0, 1, 2, 3, 5, 8, each measured by the Fréchet
distance and KID in the judge's image-embedding space against the pictures of those captions,
the CLIP score (judge), and the accuracy of each asked-for attribute as read back from the
generated pictures by data/shapes.py (colour by nearest palette entry, objects as connected
pieces: a deterministic reader, exact on drawn pictures).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from benchmarks.harness import machine, markdown
from genzoo import data as D
from genzoo.data import shapes as S
from genzoo.evaluation import contrastive as K
from genzoo.evaluation.features import get_extractor
from genzoo.evaluation.frechet import frechet_distance_features, kid
from genzoo.training import launch
from genzoo.training.run import load_model
from genzoo.training.trainer import Trainer

CIFAR = "/work/shared/datasets/cifar10/cifar10_jpg.tar"
GUIDANCE = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)
QUIET = dict(progress=False, log=lambda *a: None)


def where() -> str:
    return f"{machine()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"


def budgeted(family: str, data: str, minutes: float, out: Path, **kw) -> Path:
    """Train ``family`` for about ``minutes``: the step count comes from the rate of a few
    timed steps, so that the learning-rate schedule ends when the budget does."""
    probe = launch.resolve(family, data=data, **kw)
    model, train, _ = launch.prepare(probe, progress=False, log=lambda *a: None)
    trainer = Trainer(model, train, probe.train, log=lambda *a: None)
    trainer.train_step()
    t = time.perf_counter()
    for _ in range(3):
        trainer.train_step()
    rate = 3 / (time.perf_counter() - t)
    steps = max(10, int(minutes * 60 * rate))
    train_kw = {**kw.pop("train", {}), "steps": steps, "max_minutes": 1.1 * minutes,
                "progress": False}
    spec = launch.resolve(family, data=data, train=train_kw, **kw)
    t = time.perf_counter()
    launch.train(spec, out, **QUIET)
    print(f"{family}: {steps} steps at {rate:.2f} steps/s measured, {time.perf_counter() - t:.0f} s "
          f"with its showcase -> {out}", flush=True)
    return out


# ------------------------------------------------------------------ CLIP
def variants(scene: S.Scene, attribute: str) -> list[str]:
    """Full captions of ``scene`` with one attribute of its first group changed; the true one first."""
    g, rest = scene.groups[0], scene.groups[1:]
    taken = {h.colour for h in rest}
    change = {"colour": [dict(colour=c) for c in S.COLOURS if c not in taken],
              "shape": [dict(shape=s) for s in S.SHAPES], "size": [dict(size=s) for s in S.SIZES],
              "count": [dict(count=k) for k in (1, 2, 3)]}
    if attribute == "position":
        scenes = [S.Scene(scene.groups, w) for w in (S.POSITIONS if not rest else S.RELATIONS)]
    else:
        scenes = [S.Scene((S.Group(**{**g.__dict__, **c}),) + rest, scene.where)
                  for c in change[attribute]]
    texts = [s.captions()[0] for s in scenes]
    true = scene.captions()[0]
    return [true] + [t for t in dict.fromkeys(texts) if t != true]


@torch.no_grad()
def attribute_zero_shot(model, ds) -> dict[str, float]:
    scenes = [S.parse(cs[0]) for cs in K.caption_texts(ds)]
    I = K.embed_images(model, ds.batch(torch.arange(len(ds)))["x"])
    cache: dict[str, torch.Tensor] = {}
    out = {}
    for attribute in S.ATTRIBUTES:
        lists = [variants(s, attribute) for s in scenes]
        new = sorted({t for texts in lists for t in texts} - set(cache))
        for i in range(0, len(new), 500):
            for t, e in zip(new[i:i + 500], K.embed_texts(model, new[i:i + 500])):
                cache[t] = e
        right = [int((torch.stack([cache[t] for t in texts]) @ I[i]).argmax() == 0)
                 for i, texts in enumerate(lists)]
        out[f"zero_shot_{attribute}"] = sum(right) / len(right)
    return out


def clip(data: str, minutes: float, out: Path, n: int) -> None:
    print(where())
    if data == "cifar10":
        source = CIFAR if Path(CIFAR).is_file() else "cifar10"
        train, tests = f"{source}:train", {"cifar10 test": f"{source}:test"}
        opts = {"captions": "a photo of a {class}", "holdout": 0}
    else:
        train, tests, opts = "shapes", {"shapes:test": "shapes:test", "shapes:novel": "shapes:novel"}, {}
    run = budgeted("clip", train, minutes, out, preset="cpu", data_options=opts)
    model, desc = load_model(run)
    rows = []
    for name, spec in tests.items():
        options = D.DataOptions(**{**opts, "holdout": 0, "max_items": n if data != "cifar10" else None,
                                   "image_size": model.data.shape[1], "tokenizer": "bpe"})
        ds = D.load(spec, options)
        row = {"test set": name, "items": len(ds), **K.retrieval(model, ds)}
        if ds.y is not None:
            row["zero_shot_accuracy"] = K.zero_shot(model, ds)
        else:
            row.update(attribute_zero_shot(model, ds))
        rows.append(row)
        print(markdown(rows[-1:]), flush=True)
    print(f"\nclip ({model.num_parameters():,} parameters, {desc['step']} steps, {minutes} min) on {train}")
    print(markdown(rows))
    (out / "benchmark.json").write_text(json.dumps({"rows": rows, "machine": where()}, indent=1))


# ------------------------------------------------------------------ text-to-image
def t2i_train(out: Path, minutes: list[float]) -> None:
    print(where())
    ae, cl, ldm, judge = minutes
    budgeted("kl_autoencoder", "shapes", ae, out / "autoencoder", train={"precision": "bf16"})
    budgeted("clip", "shapes", cl, out / "clip", preset="cpu")
    budgeted("clip", "shapes", judge, out / "judge", preset="cpu", train={"seed": 1})
    budgeted("latent_diffusion", "shapes", ldm, out / "diffusion", train={"precision": "bf16"},
             overrides=[f"first_stage={out / 'autoencoder'}", f"text_encoder={out / 'clip'}"])


@torch.no_grad()
def t2i(out: Path, n: int, sampler: str, steps: int) -> None:
    print(where())
    model, desc = load_model(out / "diffusion")
    judge, _ = load_model(out / "judge")
    shape = tuple(model.output_info.shape)
    space = get_extractor(f"clip:{out / 'judge'}", shape)
    rows = []
    for split in ("shapes:test", "shapes:novel"):
        ds = D.load(split, D.DataOptions(max_items=n, image_size=shape[1], holdout=0))
        real = ds.batch(torch.arange(len(ds)))["x"]
        prompts = [cs[0] for cs in K.caption_texts(ds)]
        scenes = [S.parse(p) for p in prompts]
        f_real = space(real)
        noise = torch.randn(len(ds), *model.data.shape, generator=torch.Generator().manual_seed(0))
        for w in GUIDANCE:
            t = time.perf_counter()
            x = torch.cat([model.sample(len(p), torch.Generator().manual_seed(i + 1), sampler=sampler,
                                        steps=steps, guidance=w, prompt=p, noise=z)
                           for i, (p, z) in enumerate(zip(_chunks(prompts), noise.split(250)))])
            secs = time.perf_counter() - t
            f = space(x)
            k, _ = kid(f_real, f, subsets=50, subset_size=min(len(x), 100))
            checks = [S.check(s, S.read_objects(img), shape[1]) for s, img in zip(scenes, x)]
            row = {"prompts": split, "w": w, "FD_clip": frechet_distance_features(f_real, f),
                   "KIDx1000_clip": 1000 * k, "clip_score": K.clip_score(judge, x, prompts)}
            row.update({a: sum(c[a] for c in checks) / len(checks) for a in S.ATTRIBUTES})
            row["all"] = sum(all(c.values()) for c in checks) / len(checks)
            row["s_per_image"] = secs / len(x)
            rows.append(row)
            print(markdown(rows[-1:]), flush=True)
    real_scores = {split: K.clip_score(judge, *_real(split, n, shape)) for split in ("shapes:test", "shapes:novel")}
    print(f"\nlatent_diffusion {out / 'diffusion'} (step {desc['step']}), {sampler} {steps} steps, "
          f"{n} prompts per set; FD/KID in {space.name}; CLIP score by {out / 'judge'} "
          f"(real pictures with their captions: {real_scores})")
    print(markdown(rows))
    (out / "benchmark.json").write_text(json.dumps({"rows": rows, "real_clip_score": real_scores,
                                                     "machine": where()}, indent=1))


@torch.no_grad()
def reader_ceiling(out: Path, n: int) -> None:
    """What the attribute reader gives on the real pictures of the prompts and on the stage-1
    autoencoder's reconstructions of them: the ceiling of the attribute accuracies above (a
    generated picture can at best look like a reconstruction)."""
    print(where())
    model, _ = load_model(out / "diffusion")
    first, _ = load_model(out / "autoencoder")
    shape = tuple(model.output_info.shape)
    rows = []
    for split in ("shapes:test", "shapes:novel"):
        x, prompts = _real(split, n, shape)
        scenes = [S.parse(p) for p in prompts]
        recon = torch.cat([first.reconstruct(c).clamp(0, 1) for c in x.split(250)])
        for what, images in (("real pictures", x), ("autoencoder reconstructions", recon)):
            checks = [S.check(sc, S.read_objects(img), shape[1]) for sc, img in zip(scenes, images)]
            row = {"prompts": split, "pictures": what}
            row.update({a: sum(c[a] for c in checks) / len(checks) for a in S.ATTRIBUTES})
            row["all"] = sum(all(c.values()) for c in checks) / len(checks)
            rows.append(row)
    print(markdown(rows))


def _chunks(items, k: int = 250):
    return [items[i:i + k] for i in range(0, len(items), k)]


def _real(split: str, n: int, shape) -> tuple[torch.Tensor, list[str]]:
    ds = D.load(split, D.DataOptions(max_items=n, image_size=shape[1], holdout=0))
    return ds.batch(torch.arange(len(ds)))["x"], [cs[0] for cs in K.caption_texts(ds)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("clip")
    c.add_argument("--data", choices=["cifar10", "shapes"], default="cifar10")
    c.add_argument("--minutes", type=float, default=4.0)
    c.add_argument("--n", type=int, default=2000, help="shapes: test items per set")
    c.add_argument("--out", default=None)
    tt = sub.add_parser("t2i-train")
    tt.add_argument("--out", default="runs/bench-t2i")
    tt.add_argument("--minutes", type=float, nargs=4, default=[5, 4, 20, 4],
                    metavar=("AE", "CLIP", "LDM", "JUDGE"))
    t = sub.add_parser("t2i")
    t.add_argument("--out", default="runs/bench-t2i")
    t.add_argument("--n", type=int, default=500)
    t.add_argument("--sampler", default="dpm++2m")
    t.add_argument("--steps", type=int, default=20)
    r = sub.add_parser("t2i-reader", help="the attribute reader on real pictures and on the "
                                          "autoencoder's reconstructions: the accuracies' ceiling")
    r.add_argument("--out", default="runs/bench-t2i")
    r.add_argument("--n", type=int, default=500)
    a = p.parse_args()
    if a.what == "t2i-reader":
        reader_ceiling(Path(a.out), a.n)
    elif a.what == "clip":
        clip(a.data, a.minutes, Path(a.out or f"runs/bench-clip-{a.data}"), a.n)
    elif a.what == "t2i-train":
        t2i_train(Path(a.out), a.minutes)
    else:
        t2i(Path(a.out), a.n, a.sampler, a.steps)


if __name__ == "__main__":
    main()
