"""What a GAN shows once trained (Foster, ch. 4).

- ``samples.png``: the final 8x8 grid of samples.
- ``memorisation.png``: a few samples, each above its nearest training image with the
  Euclidean distance in [0, 1] pixel space; ``memorisation.json`` compares those distances with
  the distances of held-out images to the training set, and calls the GAN memorising only when
  more of its samples are near-copies of training images than held-out images are
  (evaluation/novelty.py).
- ``class_grid.png`` (conditional GANs): one row per class, the same z in every column.
- ``curves.png``: both players' losses, D's view of the game (the Wasserstein estimate and the
  gradient penalty, or D(x) and D(G(z))), and the collapse indicator, from metrics.jsonl.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from genzoo.evaluation.nearest import nearest
from genzoo.evaluation.novelty import novelty, verdict
from genzoo.viz.grid import save_grid, to_uint8
from genzoo.viz.plots import plt, save_figure


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None,
             train=None, k: int = 8) -> list[Path]:
    """``data`` are held-out images (or the training set when nothing was held out);
    ``train`` the training set (``data`` when not given)."""
    out, files = samples_and_memorisation(model, data, out, generator, train, k)
    if getattr(model, "num_classes", 0):
        files.append(class_grid(model, data.class_names, out / "class_grid.png", generator))
    return files + curves_if_logged(out)


@torch.no_grad()
def samples_and_memorisation(model, data, out: Path, generator=None, train=None, k: int = 8
                             ) -> tuple[Path, list[Path]]:
    """What every GAN's showcase begins with: the folder made, the model in eval mode, 64
    samples (``samples.png``) and the memorisation check against ``train`` (or ``data``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    files = [save_grid(model.sample(64, generator=generator), out / "samples.png", nrow=8)]
    files += memorisation(model, data if train is None else train, data, out, generator, k)
    return out, files


def curves_if_logged(out: Path, panels=None) -> list[Path]:
    """``curves.png`` from the run's metrics.jsonl beside ``out``, when there is one."""
    metrics = Path(out).parent / "metrics.jsonl"
    if not metrics.is_file():
        return []
    return [curves(metrics, Path(out) / "curves.png", panels or PANELS)]


PANELS = [("losses", ["critic/loss", "generator/loss"]),
          ("the critic's view", ["critic/wasserstein", "critic/gradient_penalty",
                                 "critic/d_real", "critic/d_fake"]),
          ("collapse indicator: spread of samples / of real images",
           ["critic/spread_ratio", "val/spread_ratio"])]


def curves(metrics: Path, path: Path, panels=PANELS, marks: dict[str, float] | None = None
           ) -> Path:
    """Panels (title, metric keys) of the logged scalars against the step; a panel with none
    of its keys logged is left out. ``marks``: labelled steps drawn as vertical lines."""
    records = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    wasserstein = any("critic/wasserstein" in r for r in records)   # then D(x) alone means little
    panels = [(t, keys) for t, keys in panels if any(k in r for r in records for k in keys)] \
        or panels[:1]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), dpi=100,
                             squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for key in keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            if pts and not (wasserstein and key.startswith("critic/d_")):
                ax.plot(*zip(*pts), label=key, marker="." if key.startswith("val/") else None)
        for name, step in (marks or {}).items():
            ax.axvline(step, color="grey", linestyle=":", label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return Path(path)


def _images(ds, n: int, device) -> torch.Tensor:
    return ds.batch(torch.arange(min(n, len(ds)), device=ds.x.device))["x"].to(device)


def memorisation(model, train, held, out: Path, generator=None, k: int = 8,
                 n_samples: int = 256, n_train: int = 20000) -> list[Path]:
    """Nearest training image of k samples (a picture) and distance statistics (a JSON)."""
    dev = model.device
    reference = _images(train, n_train, dev)
    x_h = _images(held, n_samples, dev) if held is not train else None
    return nearest_training(model.sample(n_samples, generator=generator), reference, x_h, out, k)


def nearest_training(x_g, reference, x_h, out: Path, k: int = 8, label: str = "training"
                     ) -> list[Path]:
    """Samples ``x_g`` beside their nearest ``reference`` images, their distances, and the
    verdict of evaluation/novelty.py against held-out images ``x_h`` (None: no verdict)."""
    idx, d_sample = nearest(x_g, reference)
    stats = {"reference_items": len(reference), "samples": len(x_g),
             "sample_to_train_median": float(d_sample.median()),
             "sample_to_train_min": float(d_sample.min())}
    if x_h is not None:         # the verdict: near-copies against the held-out baseline
        nov = novelty(x_g, reference, x_h).to_dict()
        stats["heldout_to_train_median"] = nov["held_out_distances"][2]
        stats["ratio"] = nov["median_ratio"]
        stats["near_copy_fraction"] = nov["near_copy_fraction"]
        stats["held_out_near_copy_fraction"] = nov["held_out_near_copy_fraction"]
        stats["memorising"] = nov["memorising"]
        stats["verdict"] = verdict(nov, "pixel space")
    path_json = out / "memorisation.json"
    path_json.write_text(json.dumps(stats, indent=2) + "\n")

    k = min(k, len(x_g))
    top = to_uint8(x_g[:k])
    bottom = to_uint8(reference[idx[:k]])
    fig, axes = plt.subplots(2, k, figsize=(1.3 * k, 3.0), dpi=100, squeeze=False)
    for j in range(k):
        for row, img in ((0, top[j]), (1, bottom[j])):
            ax = axes[row, j]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(f"d={float(d_sample[j]):.2f}", fontsize=8)
    axes[0, 0].set_ylabel("sample", fontsize=8)
    axes[1, 0].set_ylabel(f"nearest\n{label}", fontsize=8)
    fig.tight_layout()
    path_png = out / "memorisation.png"
    fig.savefig(path_png)
    plt.close(fig)
    return [path_png, path_json]


def class_grid(model, names: list[str] | None, path: Path, generator=None,
               columns: int = 8) -> Path:
    """One row per class from shared z, labelled with the class names."""
    x = model.class_grid(columns, generator)
    k = model.num_classes
    names = names or [str(i) for i in range(k)]
    imgs = to_uint8(x)
    h, w, c = imgs.shape[1:]
    canvas = np.full((k * (h + 2), columns * (w + 2), c), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, q = divmod(i, columns)
        canvas[r * (h + 2):r * (h + 2) + h, q * (w + 2):q * (w + 2) + w] = img
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * columns, 0.7 * k + 0.4), dpi=100)
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(k)], names, fontsize=8)
    ax.set_xticks([])
    ax.set_title("one row per class, same z down each column", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
