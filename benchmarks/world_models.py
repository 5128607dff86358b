"""World models on CarRacing at a CPU budget: V and M on random rollouts, C by CMA-ES, scored.

    python -m benchmarks.world_models --out /tmp/wm-bench            # ~1 hour on 2 cores
    python -m benchmarks.world_models --out /tmp/wm-try --quick      # seconds: does it run?

Runs the shipped pipeline's chain (world-models/car-racing) with the settings below, then
reports: the controller's score over ``--score-episodes`` real episodes (1000 steps) with its
spread, a random policy's over the same episodes, the paper's 906 +- 21 (full recipe, about a
day on many workers) and the 250-350 that small-compute re-implementations report;
environment steps/s in one process and in the rollout workers, V's and M's training steps/s,
CMA-ES episodes/s, and the time of each stage. Rerunning with the same --out resumes.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.harness import machine, markdown
from genzoo.data import rollouts as R
from genzoo.training import pipeline
from genzoo.training.scoring import in_workers
from genzoo.training.run import RunDir

PAPER = "906 +- 21 (Ha & Schmidhuber 2018, full recipe); small-compute re-implementations 250-350"


def env_steps_per_s(env_id: str, steps: int = 300) -> float:
    """One process stepping the environment with random actions, frames resized as recorded."""
    env = R.make_env(env_id)
    act = R.random_policy("random", R.action_space(env.action_space, env_id), np.random.default_rng(0))
    env.reset(seed=0)
    t = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(act())
        R.frame(obs, 64, env_id)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def random_scores(env_id: str, seeds: list[int], steps: int, workers: int = 0) -> np.ndarray:
    """Total reward of uniformly random actions in each real episode of ``seeds`` (each a
    function of its seed alone, so ``workers`` processes give the same numbers)."""
    if workers > 1:
        return in_workers(functools.partial(random_scores, env_id, steps=steps), seeds, workers)
    env = R.make_env(env_id)
    space = R.action_space(env.action_space, env_id)
    out = []
    for s in seeds:
        env.reset(seed=int(s))
        act, total = R.random_policy("random", space, np.random.default_rng(s)), 0.0
        for _ in range(steps):
            _, r, terminated, truncated, _ = env.step(act())
            total += float(r)
            if terminated or truncated:
                break
        out.append(total)
    return np.array(out)


def chain(a) -> dict:
    data = (f"gym:{a.env}?episodes={a.episodes}&steps={a.steps}&policy=brownian"
            f"&workers={a.workers}")
    c_model = {"vision": "@vision", "memory": "@memory", "max_steps": a.c_max_steps,
               "score_episodes": a.score_episodes, "score_steps": a.score_steps}
    return {"stages": [
        {"name": "vision", "family": "vae", "preset": "world-models", "data": data,
         "data_options": {"view": "frames"}, "steps": a.v_steps,
         "train": {"sample_every": 0, "eval_every": max(1, a.v_steps // 4)}},
        {"name": "memory", "family": "world_m", "data": data, "steps": a.m_steps,
         "model": {"vision": "@vision", "seq_len": a.seq_len},
         "train": {"sample_every": 0, "eval_every": max(1, a.m_steps // 4)}},
        {"name": "controller", "family": "world_c", "data": data, "steps": a.generations,
         "model": c_model,
         "train": {"population": a.population, "episodes": a.c_episodes, "workers": a.workers,
                   "eval_every": max(1, a.generations // 4), "eval_episodes": 8}},
    ]}


def rate(run: Path, key: str) -> float:
    values = [r[key] for r in RunDir(run).metrics() if key in r]
    return float(np.median(values)) if values else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/bench-world-models")
    p.add_argument("--env", default="CarRacing-v3")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=300, help="steps per recorded episode")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--v-steps", type=int, default=2000)
    p.add_argument("--m-steps", type=int, default=2000)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--c-episodes", type=int, default=1)
    p.add_argument("--c-max-steps", type=int, default=500)
    p.add_argument("--score-episodes", type=int, default=100)
    p.add_argument("--score-steps", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="a few seconds: check that it runs")
    a = p.parse_args()
    if a.quick:
        a.episodes, a.steps, a.v_steps, a.m_steps, a.seq_len = 4, 40, 5, 5, 16
        a.generations, a.population, a.c_episodes, a.c_max_steps = 2, 4, 1, 20
        a.score_episodes, a.score_steps = 2, 40
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chain.yaml").write_text(yaml.safe_dump(chain(a), sort_keys=False))
    print(f"machine: {machine()}; load average {os.getloadavg()}")

    single = env_steps_per_s(a.env, 40 if a.quick else 300)
    t0 = time.perf_counter()
    spec = R.parse(f"{a.env}?episodes={a.episodes}&steps={a.steps}&policy=brownian&workers={a.workers}")
    recorded_before = len(list((R.cache_dir() / "rollouts" / spec.key).glob("episode_*.npz")))
    R.record(spec)
    record_s = time.perf_counter() - t0
    stage_s = {"record": record_s}
    t = time.perf_counter()
    pipeline.run(out / "chain.yaml", out)
    stage_s["V + M + C + score"] = time.perf_counter() - t

    score = json.loads((out / "controller" / "showcase" / "score.json").read_text())
    seeds = score["seeds"]
    rnd = random_scores(a.env, seeds, a.score_steps, a.workers)
    steps_recorded = sum(min(a.steps, len(np.load(f)["rewards"]))
                         for f in sorted((R.cache_dir() / "rollouts" / spec.key).glob("episode_*.npz"))[:a.episodes])
    rows = [
        {"what": f"controller over {score['episodes']} real episodes",
         "score": f"{score['mean']:.1f} +- {score['std']:.1f}", "min": score["min"], "max": score["max"]},
        {"what": f"random policy over the same {len(rnd)} episodes",
         "score": f"{rnd.mean():.1f} +- {rnd.std():.1f}", "min": float(rnd.min()), "max": float(rnd.max())},
        {"what": "paper / re-implementations", "score": PAPER},
    ]
    print(markdown(rows))
    speed = [
        {"measure": "env steps/s, one process (random actions, frames resized)", "value": single},
        {"measure": f"env steps/s recording with {a.workers} workers"
                    + (" (cached, not measured)" if recorded_before >= a.episodes else ""),
         "value": steps_recorded / record_s if recorded_before < a.episodes else float("nan")},
        {"measure": "V training steps/s (batch 100, 64x64)", "value": rate(out / "vision", "steps_per_s")},
        {"measure": f"M training steps/s (batch 100, {a.seq_len} steps)",
         "value": rate(out / "memory", "steps_per_s")},
        {"measure": "CMA-ES episodes/s", "value": rate(out / "controller", "episodes_per_s")},
        *({"measure": f"seconds: {k}", "value": v} for k, v in stage_s.items()),
    ]
    print(markdown(speed))
    print(f"load average after: {os.getloadavg()}; runs in {out}; the CMA-ES curve: "
          f"{out / 'controller' / 'showcase' / 'cma_es.png'}")


if __name__ == "__main__":
    main()
