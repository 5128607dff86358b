"""What a world model shows (Ha and Schmidhuber 2018).

M: for a few held-out episodes, V's reconstruction of each frame next to M's dream of the same
episode, started from its first real codes and fed the real actions (a strip, a GIF and, where
PyAV is installed, an MP4: viz/rollout.py), and dreams from V's prior under random actions.
C: the real frames of an episode, V's reconstructions and M's dream from the same start, side
by side; the CMA-ES curve (mean, best and spread of the population's fitness per generation,
the mean's held-out score); the final score of the controller over ``score_episodes`` real
episodes with its spread (``score.json``, and printed), and a video of the controller driving.
The scoring runs in ``train.workers`` processes, episode seeds from a stream that training
never uses.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from genzoo.training.scoring import episode_seeds, in_workers, score_block
from genzoo.training.run import RunDir
from genzoo.viz.plots import plt, save_figure
from genzoo.viz.rollout import save_strip, save_videos

CONTEXT = 8         # real steps M reads before it dreams on
SHOWN = 64          # steps shown in strips and GIFs


def _decode(vision, z: torch.Tensor) -> torch.Tensor:
    """Codes (n, T, Z) -> frames (n, T, C, H, W)."""
    return vision.decode(z.flatten(0, 1)).view(*z.shape[:2], *vision.data.shape)


def dream_rows(memory, z, actions, generator=None, real=None) -> list[torch.Tensor]:
    """For each episode: [its real frames,] V's reconstructions, M's dream from the same
    start (the first CONTEXT codes read, then M's own samples, with the real actions)."""
    vision = memory.components["vision"]
    dreamed = memory.continue_dream(z, actions, CONTEXT, None, generator)
    recon, dream = _decode(vision, z), _decode(vision, dreamed)
    rows = []
    for i in range(len(z)):
        rows += ([real[i]] if real is not None else []) + [recon[i], dream[i]]
    return rows


def _shown(batch: dict, n: int) -> int:
    """Steps every one of the episodes shown has (at most SHOWN)."""
    return max(2, min(SHOWN, int(batch["mask"][:n].sum(1).min())))


@torch.no_grad()
def memory_showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    model.eval()
    n = min(3, len(data))
    b = {k: v.to(model.device) for k, v in data.batch(torch.arange(n, device=data.x.device)).items()}
    T = _shown(b, n)
    rows = dream_rows(model, b["x"][:, :T], b["actions"][:, :T], generator)
    files = [save_strip(rows, out / "reconstruction_vs_dream.png"),
             *save_videos(rows, out / "reconstruction_vs_dream.gif")]
    samples = list(model.sample(4, generator=generator, steps=T))
    files += [save_strip(samples, out / "dreams.png"), *save_videos(samples, out / "dreams.gif")]
    return files


@torch.no_grad()
def controller_showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    model.eval()
    memory, vision = model.components["memory"], model.components["vision"]
    b = {k: v.to(model.device) for k, v in data.batch(torch.arange(1, device=data.x.device)).items()}
    T = _shown(b, 1)
    z = vision.derive({"x": b["x"][:, :T]})["x"]
    rows = dream_rows(memory, z, b["actions"][:, :T], generator, real=b["x"][:, :T])
    files = [save_strip(rows, out / "real_reconstruction_dream.png"),
             *save_videos(rows, out / "real_reconstruction_dream.gif")]
    run = _run(out.parent)
    if run is not None and run.metrics():
        files.append(cma_es_curve(run.metrics(), out / "cma_es.png"))
    seed, workers = (run.spec.train.seed, run.spec.train.workers) if run else (0, 0)
    seeds = episode_seeds(seed, 2, 0, model.config.score_episodes)
    scores = real_scores(model, seeds, workers)
    summary = {"env": model.data.meta["env"], "episodes": len(scores),
               "mean": float(scores.mean()), "std": float(scores.std()),
               "min": float(scores.min()), "max": float(scores.max()),
               "scores": scores.tolist(), "seeds": seeds}
    (out / "score.json").write_text(json.dumps(summary, indent=1))
    print(f"{model.family_name}: score over {len(scores)} real episodes of {summary['env']}: "
          f"{summary['mean']:.1f} +- {summary['std']:.1f} (min {summary['min']:.1f}, "
          f"max {summary['max']:.1f})")
    frames = model.play(seeds[0], record=True, steps=model.config.score_steps)[1]
    files += [out / "score.json", *save_videos([torch.stack(frames[::2]).float() / 255],
                                                out / "controller.gif", ms=60)]
    return files


def _run(path: Path) -> RunDir | None:
    return RunDir(path) if (path / "config.yaml").is_file() else None


def real_scores(model, seeds: list[int], workers: int = 0) -> np.ndarray:
    """The controller's total reward in each real episode of ``seeds`` (of ``score_steps``, in
    ``workers`` processes), whether it was evolved in the real environment or in the dream."""
    theta = model.flat_parameters().numpy()[None]
    model.testing = True
    try:
        return in_workers(functools.partial(score_block, model, theta), seeds, workers)[0]
    finally:
        model.testing = False


def cma_es_curve(records: list[dict], path: Path) -> Path:
    """The population's fitness per generation: mean with one standard deviation either side,
    the best of the generation, the best so far, and the mean's held-out score."""
    rec = [r for r in records if "fitness/mean" in r]
    g = np.array([r["step"] for r in rec])
    mean, std = (np.array([r[k] for r in rec]) for k in ("fitness/mean", "fitness/std"))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.fill_between(g, mean - std, mean + std, alpha=0.25, label="population mean +- std")
    ax.plot(g, mean, label="population mean")
    ax.plot(g, [r["fitness/best"] for r in rec], label="best of generation")
    ax.plot(g, [r["fitness/best_so_far"] for r in rec], "--", label="best so far")
    val = [(r["step"], r["val/fitness"]) for r in records if "val/fitness" in r]
    if val:
        ax.plot(*zip(*val), "o-", label="mean's held-out score")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (total reward)")
    ax.set_title("CMA-ES", fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
