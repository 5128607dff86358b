"""Benchmark entry: the cost of evaluating 5,000 images on CPU, part by part and whole.

    OMP_NUM_THREADS=1 python -m benchmarks.eval          (from the repository root, in the .venv)
    OMP_NUM_THREADS=1 python -m benchmarks.eval degrade DATA.npz HELD_OUT [FEATURES...]

``degrade``: the metrics of real training images, then of the same images degraded by noise
and blur, against the last HELD_OUT images of DATA.npz (x: uint8 N,H,W), in each feature space.

Parts: feature extraction in each space (InceptionV3 is timed on 100 images and scaled, with
random weights: the cost does not depend on them), then the metrics on 5,000 x 5,000 features:
Fréchet distance, KID (100 subsets of 1,000), precision/recall (k = 3), novelty. Whole: `genzoo
eval -n 5000` on a small VAE run, with a cold and then a warm reference cache.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import machine, markdown, synthetic_images, timed

N = 5000


def _time(fn, repeats=3) -> float:
    fn()                                     # warm-up
    return statistics.median(timed(fn, torch.device("cpu"), repeats))


def features_rows(x: torch.Tensor) -> list[dict]:
    from genzoo.evaluation.features import get_extractor
    from genzoo.evaluation.inception import FIDInceptionV3
    from genzoo.models.base import DataInfo
    from genzoo.models.classifier import Classifier, ClassifierConfig
    rows = []
    px = get_extractor("pixels", tuple(x.shape[1:]))
    rows.append({"space": px.name, "dim": px(x[:2]).shape[1], "images": N,
                 "seconds": _time(lambda: px(x))})
    info = DataInfo("image", tuple(x.shape[1:]), 10)
    for arch in ("mlp", "cnn"):
        clf = Classifier(ClassifierConfig(arch=arch), info).eval()
        with torch.no_grad():
            s = _time(lambda: torch.cat([clf.features(x[i:i + 250]) for i in range(0, N, 250)]))
        rows.append({"space": f"classifier ({arch})", "dim": clf.feature_dim, "images": N, "seconds": s})
    net = FIDInceptionV3().eval()
    k = 100
    with torch.no_grad():
        s = _time(lambda: torch.cat([net(x[i:i + 50]) for i in range(0, k, 50)]), repeats=1)
    rows.append({"space": "InceptionV3 (FID), scaled from 100", "dim": 2048, "images": N,
                 "seconds": s * N / k})
    for r in rows:
        r["images_per_s"] = r["images"] / r["seconds"]
    return rows


def metric_rows() -> list[dict]:
    from genzoo.evaluation import frechet
    from genzoo.evaluation.novelty import novelty
    rows = []
    g = torch.Generator().manual_seed(0)
    for d in (128, 784, 2048):
        a, b = torch.randn(N, d, generator=g), torch.randn(N, d, generator=g) + 0.1
        train = torch.randn(N, d, generator=g)
        rows.append({"dim": d, "fd_s": _time(lambda: frechet.frechet_distance_features(a, b), 1),
                     "kid_s": _time(lambda: frechet.kid(a, b), 1),
                     "precision_recall_s": _time(lambda: frechet.precision_recall(a, b), 1),
                     "novelty_s": _time(lambda: novelty(b, train, a), 1)})
    return rows


def whole_eval() -> list[dict]:
    from genzoo.evaluation.run_eval import evaluate_run
    from genzoo.training import launch
    tmp = Path(tempfile.mkdtemp(prefix="genzoo-bench-eval-"))
    os.environ["GENZOO_CACHE"] = str(tmp / "cache")
    ds = synthetic_images(2 * N + 1000, 1, 28)
    np.savez(tmp / "data.npz", x=ds.x[:, 0].numpy(), y=ds.y.numpy())
    desc = launch.resolve("vae", data=str(tmp / "data.npz"), train={"steps": 20},
                          overrides=["data.holdout=5000"])
    launch.train(desc, tmp / "run", progress=False, log=lambda *a: None)
    rows = []
    for cache in ("cold", "warm"):
        t = time.perf_counter()
        r = evaluate_run(tmp / "run", n=N, features="pixels", device="cpu")
        rows.append({"what": f"genzoo eval -n {N} --features pixels (vae), {cache} cache",
                     "seconds": time.perf_counter() - t, "sampling_s": r["seconds_per_sample"] * N})
    return rows


def degrade(path: str, held_out: int, spaces: list[str]) -> None:
    import torch.nn.functional as F

    from genzoo.evaluation.features import get_extractor
    from genzoo.evaluation.frechet import frechet_distance_features, kid, precision_recall
    x = torch.from_numpy(np.load(path)["x"]).float().div(255)[:, None]
    train, held = x[:-held_out], x[-held_out:]
    g = torch.Generator().manual_seed(0)

    def blur(t, r):
        return F.avg_pool2d(F.pad(t, (r,) * 4, mode="replicate"), 2 * r + 1, stride=1)
    sets = [("train (real)", train)]
    sets += [(f"noise {s}", (train + s * torch.randn(train.shape, generator=g)).clamp(0, 1))
             for s in (0.05, 0.1, 0.2, 0.4)]
    sets += [(f"blur {2 * r + 1}x{2 * r + 1}", blur(train, r)) for r in (1, 2, 3)]
    for space in spaces:
        ex = get_extractor(space, tuple(x.shape[1:]))
        fh = ex(held)
        print(f"\n{ex.name}: against the last {held_out} images")
        print("| images | FD | KID | precision | recall |\n|---|---|---|---|---|")
        print(f"| held-out vs itself | {frechet_distance_features(fh, fh):.3g} | | | |")
        for name, imgs in sets:
            f = ex(imgs)
            k, ks = kid(fh, f, subsets=50, subset_size=min(500, held_out))
            p, r = precision_recall(fh, f)
            print(f"| {name} | {frechet_distance_features(fh, f):.4g} | {k:.4f} ± {ks:.4f} "
                  f"| {p:.3f} | {r:.3f} |")


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(machine())
    x = synthetic_images(N, 1, 28).x.float() / 255
    print(f"\nfeature extraction, {N} grey 28x28 images:")
    print(markdown(features_rows(x), ["space", "dim", "images", "seconds", "images_per_s"]))
    print(f"\nmetrics on {N} vs {N} feature vectors (seconds, one run each):")
    print(markdown(metric_rows()))
    print("\nwhole evaluation:")
    print(markdown(whole_eval()))


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["degrade"]:
        torch.set_num_threads(1)
        degrade(sys.argv[2], int(sys.argv[3]), sys.argv[4:] or ["pixels"])
    else:
        main()
