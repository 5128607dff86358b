"""Benchmark entry: the music families on the JSB chorales (16th-note grid), measured.

    OMP_NUM_THREADS=2 python -m benchmarks.music --data ../shared/datasets/music/Jsb16thSeparated.npz
    python -m benchmarks.music --data ... --minutes 0.2 --quick      (a smoke run: seconds)

1. Baselines of held-out loss per token on the valid split (S A T B per 16th, data.music=grid):
   unigram per voice, the same voice's previous step, an interpolated trigram.
2. music_transformer, preset ``grid``, trained on the train split for ``--minutes`` of wall
   clock; its loss per token on the whole valid split (target: below 0.70 nats in 10 CPU
   minutes), printed beside the baselines; then 64 samples of 32 steps measured as `genzoo
   eval` measures music (evaluation/music.py): pitch-class and duration histogram distances
   to the valid windows (the train windows' distance beside them) and the copied run (the
   longest run of a sample's notes found in the train split; valid windows beside it).
3. musegan at its CPU default trained for ``--minutes``; MuseGAN's statistics (empty bars, used
   pitch classes, qualified notes, tonal distance soprano-bass) of 512 samples beside the same
   statistics of the valid split and of the valid split with the bass's bars shuffled, and
   the histogram distances and copied runs; the samples read both ways (``argmax``: the
   likeliest pitch of a voice when above 0, else a rest; ``threshold``: every cell above 0).

It prints the machine and its load average before and after (numbers taken under load are
not comparable).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from benchmarks.harness import machine
from genzoo import config as C
from genzoo import data as D
from genzoo.data.music.files import read_grid_npz
from genzoo.evaluation import music as M
from genzoo.evaluation.modalities import Samples
from genzoo.models.base import DataInfo
from genzoo.models.musegan import PRESETS as GAN_PRESETS, MuseGAN, MuseGANConfig
from genzoo.models.music_transformer import (PRESETS as MT_PRESETS, MusicTransformer,
                                             MusicTransformerConfig)
from genzoo.training.trainer import TrainConfig, Trainer


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


@torch.no_grad()
def held_out_nats(model, ds, batch: int = 256) -> float:
    """Mean nats per real target token over every window of ``ds``."""
    model.eval()
    total = count = 0.0
    for i in range(0, len(ds), batch):
        b = ds.batch(torch.arange(i, min(i + batch, len(ds))))
        n = b["mask"][:, 1:].sum().item()
        total += model.loss(b)["loss"].item() * n
        count += n
    return total / count


def transformer(path: str, minutes: float, quick: bool) -> dict:
    cfg = {**MT_PRESETS["grid"], **({"n_layer": 1, "n_embd": 32, "n_head": 2} if quick else {})}
    c = C.from_dict(MusicTransformerConfig, cfg)
    options = D.DataOptions(music="grid", context=c.context, holdout=0)
    train, valid = D.load(f"{path}:train", options), D.load(f"{path}:valid", options)
    torch.manual_seed(0)
    model = MusicTransformer(c, DataInfo.of(train))
    t0 = time.perf_counter()
    trainer = Trainer(model, train, TrainConfig(steps=10**6, max_minutes=minutes, batch_size=64,
                                                grad_clip=1.0, sample_every=0,
                                                checkpoint_every=0, progress=False))
    trainer.fit()
    minutes = (time.perf_counter() - t0) / 60
    info = DataInfo.of(train)
    ids = model.sample(16 if quick else 64, torch.Generator().manual_seed(0), max_tokens=4 * 32)
    notes = M.measure(Samples(ids, info, valid, train))["metrics"]
    return {"steps": trainer.step, "minutes": minutes,
            "valid_nats_per_token": held_out_nats(model, valid), "notes": notes}


def musegan(path: str, minutes: float, quick: bool) -> dict:
    c = C.from_dict(MuseGANConfig, GAN_PRESETS["tiny"] if quick else {})
    train = D.load(f"{path}:train", D.DataOptions(music="pianoroll", pitch_range="auto", holdout=0))
    low, high = train.meta["pitch_low"], train.meta["pitch_high"]
    valid = D.load(f"{path}:valid", D.DataOptions(music="pianoroll", pitch_range=f"{low}-{high}"))
    torch.manual_seed(0)
    model = MuseGAN(c, DataInfo.of(train))
    trainer = Trainer(model, train, TrainConfig(steps=10**6, max_minutes=minutes, batch_size=32,
                                                sample_every=0, checkpoint_every=0,
                                                progress=False))
    trainer.fit()
    model.eval()
    info = DataInfo.of(train)
    out = {"steps": trainer.step}
    for mode in ("argmax", "threshold"):
        with trainer.sampling_weights():
            fake = model.sample(64 if quick else 512, torch.Generator().manual_seed(0),
                                binarize=mode)
        out[f"samples ({mode})"] = M.measure(Samples(fake, info, valid, train))["metrics"]
    real = valid.batch(torch.arange(len(valid)))["x"]
    names = ["soprano", "alto", "tenor", "bass"]
    control = M.shuffle_track(real, 3, torch.Generator().manual_seed(0))
    return out | {"valid": M.roll_statistics(real, low, names),
                  "valid, bass bars shuffled": M.roll_statistics(control, low, names)}


def note_table(m: dict, label: str) -> None:
    """Histogram distances and copied runs (evaluation/music.py) beside their controls."""
    print(f"\n### {label}: note statistics\n| statistic | samples | control |\n|---|---|---|")
    for key, control, what in (("pitch_class_distance", "train_pitch_class_distance", "train"),
                               ("duration_distance", "train_duration_distance", "train"),
                               ("copied_run", "held_out_copied_run", "valid"),
                               ("copied_run_max", "held_out_copied_run_max", "valid"),
                               ("copied_fraction", "held_out_copied_fraction", "valid")):
        print(f"| {key} | {m[key]:.3f} | {m[control]:.3f} ({what}) |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="Jsb16thSeparated.npz (train/valid/test)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per family")
    p.add_argument("--quick", action="store_true", help="tiny models: check that it runs")
    args = p.parse_args()
    print(machine())
    print(load())
    train, _ = read_grid_npz(args.data, "train")
    valid, _ = read_grid_npz(args.data, "valid")
    print("\n## held-out nats per token, valid split (S A T B per 16th)")
    for name, v in M.grid_baselines(train, valid).items():
        print(f"| baseline: {name} | {v:.3f} |")
    r = transformer(args.data, args.minutes, args.quick)
    print(f"| music_transformer (grid preset, {r['steps']} steps, {r['minutes']:.1f} min) "
          f"| {r['valid_nats_per_token']:.3f} |")
    note_table(r["notes"], "music_transformer, 64 samples of 32 steps")
    print(load())
    g = musegan(args.data, args.minutes, args.quick)
    print(f"\n## MuseGAN statistics after {g['steps']} steps (CPU default)")
    print("| statistic | samples (argmax) | samples (threshold) | valid | valid, bass shuffled |"
          "\n|---|---|---|---|---|")
    for k in g["valid"]:
        print(f"| {k} | {g['samples (argmax)'][k]:.3f} | {g['samples (threshold)'][k]:.3f} | "
              f"{g['valid'][k]:.3f} | {g['valid, bass bars shuffled'][k]:.3f} |")
    for mode in ("argmax", "threshold"):
        note_table(g[f"samples ({mode})"], f"MuseGAN, {mode}")
    print(load())


if __name__ == "__main__":
    main()
