"""Benchmark entry: the music families on the JSB chorales (16th-note grid), measured.

    OMP_NUM_THREADS=2 python -m benchmarks.music --data ../shared/datasets/music/Jsb16thSeparated.npz
    python -m benchmarks.music --data ... --minutes 0.2 --quick      (a smoke run: seconds)

1. Baselines of held-out loss per token on the valid split (S A T B per 16th, data.music=grid):
   unigram per voice, the same voice's previous step, an interpolated trigram.
2. music_transformer, preset ``grid``, trained on the train split for ``--minutes`` of wall
   clock; its loss per token on the whole valid split (target: below 0.70 nats in 10 CPU
   minutes), printed beside the baselines.
3. musegan at its CPU default trained for ``--minutes``; MuseGAN's statistics (empty bars, used
   pitch classes, qualified notes, tonal distance soprano-bass) of 512 samples beside the same
   statistics of the valid split and of the valid split with the bass's bars shuffled.

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
    return {"steps": trainer.step, "minutes": (time.perf_counter() - t0) / 60,
            "valid_nats_per_token": held_out_nats(model, valid)}


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
    with trainer.sampling_weights():
        fake = model.sample(64 if quick else 512, torch.Generator().manual_seed(0))
    real = valid.batch(torch.arange(len(valid)))["x"]
    names = ["soprano", "alto", "tenor", "bass"]
    control = M.shuffle_track(real, 3, torch.Generator().manual_seed(0))
    return {"steps": trainer.step, "samples": M.roll_statistics(fake, low, names),
            "valid": M.roll_statistics(real, low, names),
            "valid, bass bars shuffled": M.roll_statistics(control, low, names)}


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
    print(load())
    g = musegan(args.data, args.minutes, args.quick)
    print(f"\n## MuseGAN statistics after {g['steps']} steps (CPU default)")
    keys = list(g["valid"])
    print("| statistic | samples | valid | valid, bass shuffled |\n|---|---|---|---|")
    for k in keys:
        print(f"| {k} | {g['samples'][k]:.3f} | {g['valid'][k]:.3f} | "
              f"{g['valid, bass bars shuffled'][k]:.3f} |")
    print(load())


if __name__ == "__main__":
    main()
