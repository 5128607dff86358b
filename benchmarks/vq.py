r"""Quality run: the VQ-VAE pipeline (first stage, then the prior over its code maps) on real
images, one data set at a time.

    OMP_NUM_THREADS=2 python -m benchmarks.vq --data fashion --out /tmp/vq-bench
    OMP_NUM_THREADS=2 python -m benchmarks.vq --data flowers --out /tmp/vq-bench
    # options: --vq-minutes 6 --prior-minutes 3 (or --vq-steps / --prior-steps), --preset small,
    #          --batch-size 32, --features classifier:RUN_DIR (default: pixels), --datasets DIR
    # the CIFAR-10 reference point of the advanced-GAN issue (first stage only, 10 minutes):
    OMP_NUM_THREADS=2 python -m benchmarks.vq --data ../shared/datasets/cifar10/cifar10_jpg.tar:train \
        --holdout 1000 --shuffle --vq-minutes 10 --prior-minutes 0 --out /tmp/vq-bench

Names: ``fashion`` is the Fashion-MNIST subset (28x28 padded to 32x32, the last 615 of 3,615
held out); ``flowers`` the 1,500 flowers at 32x32 (shuffled with seed 0, 300 held out, so the
held-out set spans the five classes). A path is read as it is (``--holdout N``).

Per data set: trains a ``vqvae`` (preset ``small``, batch 32, constant lr) for a wall-clock
budget, encodes the training and held-out images through it once, trains a ``vq_prior`` (GPT
over the 8x8 code maps) on the training codes, and reports on the held-out images:
reconstruction MSE (per pixel, and divided by the held-out data's variance), PSNR, the
codebook's perplexity and used codes over all held-out positions, the prior's bits per code
(log2 512 = 9 for a uniform prior), and the Fréchet distance to the held-out images (in the
named feature space) of: the held-out reconstructions (the floor the decoder sets), images from
independently drawn codes (the VQ-VAE alone), and the prior's samples. Run folders, metrics and
showcases are left under --out/NAME. Prints the machine and its load before and after.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.harness import machine, markdown
from genzoo import config as C
from genzoo import data as D
from genzoo.data.dataset import TensorDataset
from genzoo.evaluation.features import get_extractor
from genzoo.evaluation.frechet import frechet_distance_features
from genzoo.models.base import DataInfo
from genzoo.models.vq.prior import VQPrior, VQPriorConfig
from genzoo.models.vq.vqvae import PRESETS, VQVAE, VQVAEConfig
from genzoo.nn.quantize import perplexity
from genzoo.training import TrainConfig, Trainer
from genzoo.training.run import RunDir
from genzoo.viz.vq import prior_showcase, showcase

NAMED = {  # name: (file under --datasets, held-out count, shuffle before holding out)
    "fashion": ("fashion-mnist/fashion_mnist_train_first3615.npz", 615, False),
    "flowers": ("flowers/flowers64.tar", 300, True),
}


def load(a) -> tuple[str, TensorDataset, TensorDataset]:
    if a.data in NAMED:
        rel, holdout, shuffle = NAMED[a.data]
        spec = str(Path(a.datasets) / rel)
    else:
        spec, holdout, shuffle = a.data, a.holdout, a.shuffle
    ds = D.load(spec, D.DataOptions(image_size=a.image_size, holdout=holdout))
    if shuffle:
        ds = ds.subset(torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)))
    train, held = ds.split(holdout)
    return Path(spec).stem if a.data not in NAMED else a.data, train, held


def fresh_run(path: Path) -> RunDir:
    if path.exists():
        raise SystemExit(f"{path} exists: give another --out (the Trainer would resume it)")
    path.mkdir(parents=True)
    return RunDir(path)


def loop(steps: int | None, minutes: float, batch_size: int, eval_every: int) -> TrainConfig:
    return TrainConfig(steps=steps or 10**7, max_minutes=0 if steps else minutes,
                       batch_size=batch_size, eval_every=eval_every, eval_batches=4,
                       sample_every=0, checkpoint_every=10**8, log_every=50, seed=0)


def trained(model, train, held, cfg: TrainConfig, run: RunDir) -> tuple[Trainer, dict]:
    t = time.perf_counter()
    trainer = Trainer(model, train, cfg, run=run, held_out=held)
    trainer.fit()
    wall = time.perf_counter() - t
    return trainer, {"steps": trainer.step, "minutes": wall / 60, "steps_per_s": trainer.step / wall}


@torch.no_grad()
def in_batches(fn, x: torch.Tensor, bs: int = 250) -> torch.Tensor:
    return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


def codes_dataset(vq: VQVAE, ds: TensorDataset) -> TensorDataset:
    x = ds.batch(torch.arange(len(ds)))["x"]
    return TensorDataset(x=in_batches(vq.encode_codes, x), modality=vq.derived_modality,
                         source=ds.source, y=ds.y, class_names=ds.class_names,
                         meta=vq.derived_meta())


def run_one(a) -> dict:
    name, train, held = load(a)
    out = Path(a.out) / name
    torch.manual_seed(0)
    preset = {k: v for k, v in PRESETS.get(a.preset, {}).items() if "." not in k}   # model part
    vq = VQVAE(C.from_dict(VQVAEConfig, {**preset, "image_size": a.image_size}), DataInfo.of(train))
    print(f"{name}: {len(train)} training / {len(held)} held-out images {tuple(train.shape)}; "
          f"vqvae {vq.num_parameters():,} parameters")
    _, vq_time = trained(vq, train, held, loop(a.vq_steps, a.vq_minutes, a.batch_size, 500),
                         fresh_run(out / "vqvae"))
    vq.eval()
    x = held.batch(torch.arange(len(held)))["x"]
    k = in_batches(vq.encode_codes, x)
    rec = in_batches(vq.decode_codes, k)
    mse = float(F.mse_loss(rec, x))
    counts = torch.bincount(k.flatten(), minlength=vq.config.codebook_size)
    row = {"data": name, "vq_steps": vq_time["steps"], "vq_min": vq_time["minutes"],
           "recon_mse": mse, "recon_nmse": mse / float(x.var()), "psnr_db": 10 * math.log10(1 / mse),
           "perplexity": float(perplexity(counts)), "codes_used": int((counts > 0).sum())}
    showcase(vq, held, out / "vqvae" / "showcase", torch.Generator().manual_seed(0))

    ex = get_extractor(a.features, tuple(x.shape[1:]))
    ref = ex(x)
    n = len(x)
    independent = torch.cat([vq.sample(min(250, n - i), torch.Generator().manual_seed(i))
                             for i in range(0, n, 250)])
    row.update({"fd_recon": frechet_distance_features(ref, ex(rec)),
                "fd_vq_independent": frechet_distance_features(ref, ex(independent)),
                "features": ex.name})
    if not a.prior_steps and a.prior_minutes <= 0:
        return row

    codes_train, codes_held = codes_dataset(vq, train), codes_dataset(vq, held)
    torch.manual_seed(0)
    settings = {**VQPrior.presets.get(a.prior_preset, {}), "lr": a.prior_lr}
    prior = VQPrior(C.from_dict(VQPriorConfig, settings), DataInfo.of(codes_train),
                    {"first_stage": vq})
    _, prior_time = trained(prior, codes_train, codes_held,
                            loop(a.prior_steps, a.prior_minutes, a.batch_size, 250),
                            fresh_run(out / "prior"))
    prior.eval()
    nll = in_batches(lambda c: F.cross_entropy(prior.logits(c.flatten(1)).transpose(1, 2),
                                               c.flatten(1), reduction="none").mean(1), codes_held.x)
    row.update({"prior_steps": prior_time["steps"], "prior_min": prior_time["minutes"],
                "bits_per_code": float(nll.mean()) / math.log(2)})
    prior_showcase(prior, codes_held, out / "prior" / "showcase", torch.Generator().manual_seed(0))

    t = time.perf_counter()
    drawn = torch.cat([prior.sample(min(250, n - i), torch.Generator().manual_seed(i))
                       for i in range(0, n, 250)])
    row["prior_samples_per_s"] = n / (time.perf_counter() - t)
    row["fd_prior"] = frechet_distance_features(ref, ex(drawn))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="fashion | flowers | a data spec")
    p.add_argument("--datasets", default=os.environ.get("GENZOO_DATASETS", "../shared/datasets"))
    p.add_argument("--holdout", type=int, default=500, help="held-out count for a path")
    p.add_argument("--shuffle", action="store_true", help="shuffle a path's items before")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--out", default="/tmp/vq-bench")
    p.add_argument("--preset", default="small", help="vqvae preset ('' = the paper's widths)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vq-minutes", type=float, default=6.0)
    p.add_argument("--vq-steps", type=int, default=None, help="fixed steps instead of minutes")
    p.add_argument("--prior-preset", default="", help="vq_prior preset (e.g. pixelcnn)")
    p.add_argument("--prior-lr", type=float, default=3e-4)
    p.add_argument("--prior-minutes", type=float, default=3.0, help="0: first stage only")
    p.add_argument("--prior-steps", type=int, default=None)
    p.add_argument("--features", default="pixels", help="pixels | classifier:RUN_DIR | ...")
    a = p.parse_args()
    print(machine(), f"| load {os.getloadavg()[0]:.2f}")
    row = run_one(a)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(markdown([row]))
    path = Path(a.out) / f"{row['data']}.json"
    path.write_text(json.dumps(row, indent=1))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
