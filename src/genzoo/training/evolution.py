"""A non-gradient stage: CMA-ES over a family's parameter vector, with the Trainer's run folder.

CMA-ES (Hansen and Ostermeier 2001; Hansen 2016, "The CMA Evolution Strategy: A Tutorial")
samples a population of lambda candidates theta_k = m + sigma * N(0, C), scores each, and moves
the mean m towards a weighted recombination of the best mu of them, adapting the step size sigma
by the length of an evolution path p_sigma and the covariance C by rank-one (p_c) and rank-mu
updates. The family (an :class:`~genzoo.models.evolved.EvolvedFamily`) gives theta and a score
to maximise; one step of this trainer is one generation: ask -> score -> tell. The algorithm is
the ``cma`` package's (Hansen's own), an optional extra: ``pip install 'genzoo[evolution]'``.

Scoring: each candidate's fitness is the mean of ``episodes`` scores on the same episode seeds
for all, here or in worker processes, the same numbers either way (:mod:`genzoo.training.scoring`).

Exact resume without pickle. ``cma`` keeps its state in Python objects. Rather than pickle
them, or rewrite the algorithm, a checkpoint records what the state is a function of: the
initial mean x0, the settings, and the fitness told at every generation (float64 in
safetensors). The sampler draws from its own generator seeded by ``seed``, so on resume a fresh
strategy replayed through the same asks and tells is the very state the run had; the replayed
mean and sigma are checked bit for bit against the ones saved (a different ``cma``, numpy or
BLAS may break that: it is then a logged warning, and the run goes on from the replayed state,
a valid one for the same history). The asked candidates are not stored: they follow from the seed and
the fitness history, and they would cost lambda * P * 8 bytes a generation (a world model's
controller: 0.4 MB a generation, hundreds of MB over a run); the replay costs one ask and tell
per generation done (about 0.1 s for P = 867, lambda = 64), a small fraction of the scoring.

The model's parameters are the distribution mean m, at the end and in every checkpoint, so a
trained run loads like any other: m is the strategy's estimate of the optimum, recombined from
mu candidates, while the best candidate's fitness under a noisy score (random episodes) is
biased up by the selection itself. The best candidate so far is kept too (``evolution.best``).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from genzoo import __version__
from genzoo.errors import GenzooError
from genzoo.training import checkpoint as ckpt
from genzoo.training.scoring import Workers, episode_seeds, score_block
from genzoo.training.trainer import Trainer, resolve_device


@dataclass
class EvolutionConfig:
    generations: int = 100          # one generation = ask, score the population, tell
    population: int = 0             # lambda; 0 = CMA-ES's default 4 + floor(3 ln P)
    sigma0: float = 0.1             # initial step size, in units of theta
    episodes: int = 1               # scores averaged per candidate, the same seeds for all
    workers: int = 0                # processes that score; 0 = in this process
    seed: int = 0
    device: str = "cpu"             # where the model scores (here and in each worker)
    eval_every: int = 0             # score the mean on fixed held-out episodes; 0 = off
    eval_episodes: int = 8
    log_every: int = 1
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    progress: bool = True
    max_minutes: float = 0.0        # wall-clock budget of this session of fit(); 0 = none
    copy_components: bool = False   # copy the weights of the runs it stands on into its checkpoints
    # CMA-ES's own termination criteria (tolfun, tolx, ...) also end a run, for good: a run
    # that has converged stays stopped when resumed with more generations.

    def validate(self):
        if self.generations < 1:
            raise ValueError(f"generations must be >= 1, got {self.generations}")
        if self.population != 0 and self.population < 2:
            raise ValueError("population must be >= 2 (or 0 for CMA-ES's default), "
                             f"got {self.population}")
        if not self.sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {self.sigma0}")
        if self.episodes < 1 or self.eval_episodes < 1:
            raise ValueError(f"episodes and eval_episodes must be >= 1, "
                             f"got {self.episodes}, {self.eval_episodes}")
        if self.workers < 0 or self.seed < 0:
            raise ValueError(f"workers and seed must be >= 0, got {self.workers}, {self.seed}")
        if self.log_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("log_every and keep_checkpoints must be >= 1")
        if self.checkpoint_every < 0 or self.eval_every < 0 or self.max_minutes < 0:
            raise ValueError("checkpoint_every, eval_every and max_minutes must be >= 0")


def _cma():
    try:
        import cma
    except ImportError:
        raise GenzooError("evolution: the cma package is not installed "
                          "(pip install 'genzoo[evolution]')") from None
    return cma


def strategy(x0: np.ndarray, cfg: EvolutionConfig):
    """A fresh CMA-ES from x0, drawing from its own generator seeded by ``cfg.seed`` (never
    the global one), silent, writing no files, with no iteration limit of its own."""
    rng = np.random.default_rng(cfg.seed)
    opts = {"randn": lambda *shape: rng.standard_normal(shape), "seed": np.nan,
            "verbose": -9, "verb_log": 0, "verb_disp": 0, "signals_filename": "",
            "maxiter": np.inf}
    if cfg.population:
        opts["popsize"] = cfg.population
    return _cma().CMAEvolutionStrategy(x0, cfg.sigma0, opts)


class EvolutionTrainer:
    """Evolves ``model`` (fit_with = "evolution") as ``config`` says; writes to ``run`` when
    given one. The same shape as :class:`~genzoo.training.trainer.Trainer`: ``data`` and
    ``held_out`` are accepted for the same call and kept, but the score comes from the model."""

    def __init__(self, model, data, config: EvolutionConfig, run=None, held_out=None,
                 description: dict | None = None, writer=None, log=print):
        try:
            config.validate()
        except ValueError as e:
            raise GenzooError(f"evolution config: {e}") from None
        if getattr(model, "fit_with", "gradient") != "evolution":
            raise GenzooError(f"{type(model).__name__}: not trained by evolution "
                              "(its family does not declare fit_with = 'evolution')")
        self.cfg = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device).eval()
        self.data, self.held_out, self.run, self.log = data, held_out, run, log
        self.description = description or {}
        self.total = config.generations
        self.x0 = model.flat_parameters().double().numpy()
        self.es = strategy(self.x0, config)
        self.history: list[np.ndarray] = []        # fitness told, one row per generation
        self.mean = self.x0.copy()
        self.best, self.best_fitness = self.x0.copy(), None
        self.stopped: dict = {}                     # CMA-ES's own termination reasons
        self.step = 0
        self.last_metrics: dict = {}
        self._pool = None
        if run is not None and run.latest_checkpoint() is not None:
            self._resume(run)

    # -- one generation ----------------------------------------------------------------------
    def score_candidates(self, thetas: np.ndarray, seeds: list[int]) -> np.ndarray:
        """Fitness (n, E) of candidates (n, P) over episodes, here or in the workers."""
        if self._pool is None:
            return score_block(self.model, thetas, seeds)
        return self._pool.score(thetas, seeds)

    def tell(self, asked: list, fitness: np.ndarray) -> None:
        """Move the strategy (cma minimises: it is told -fitness) and record the generation."""
        if not np.all(np.isfinite(fitness)):
            raise GenzooError(f"evolution: the score is not finite at generation {self.step + 1} "
                              f"(fitness {fitness.tolist()})")
        self.es.tell(asked, (-fitness).tolist())
        self.stopped = dict(self.es.stop())
        self.history.append(np.asarray(fitness, dtype=np.float64))
        self.mean = np.array(self.es.mean, dtype=np.float64)
        k = int(np.argmax(fitness))
        if self.best_fitness is None or fitness[k] > self.best_fitness:
            self.best, self.best_fitness = np.array(asked[k], dtype=np.float64), float(fitness[k])
        self.step += 1

    def generation(self) -> dict[str, float]:
        asked = self.es.ask()
        seeds = episode_seeds(self.cfg.seed, 0, self.step, self.cfg.episodes)
        fitness = self.score_candidates(np.stack(asked), seeds).mean(axis=1)
        self.tell(asked, fitness)
        self.model.set_flat_parameters(torch.from_numpy(self.mean))
        return {"fitness/best": float(fitness.max()), "fitness/mean": float(fitness.mean()),
                "fitness/std": float(fitness.std()), "fitness/best_so_far": self.best_fitness,
                "sigma": float(self.es.sigma)}

    def evaluate(self) -> dict[str, float]:
        """The mean's fitness on fixed held-out episodes (the same ones at every call)."""
        seeds = episode_seeds(self.cfg.seed, 1, 0, self.cfg.eval_episodes)
        F = self.score_candidates(self.mean[None], seeds)[0]
        self.model.set_flat_parameters(torch.from_numpy(self.mean))
        return {"val/fitness": float(F.mean()), "val/fitness_std": float(F.std())}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        bar = tqdm(total=self.total, initial=self.step, disable=not cfg.progress, unit="gen",
                   desc=getattr(self.model, "family_name", "") or "evolve", dynamic_ncols=True)
        t0, steps0 = time.perf_counter(), self.step
        try:
            if cfg.workers and self.step < self.total and not self.stopped:
                self._pool = Workers(self.model, self.cfg.workers, self.cfg.device)
            while self.step < self.total and not self.stopped:
                logs = self.generation()
                spent = cfg.max_minutes and time.perf_counter() - t0 >= 60 * cfg.max_minutes
                if self.stopped or spent:
                    self.total = self.step      # converged or budget spent: this is the last
                bar.update(1)
                last = self.step == self.total
                if self.step % cfg.log_every == 0 or last:
                    rate = (self.step - steps0) / max(1e-9, time.perf_counter() - t0)
                    logs["episodes_per_s"] = rate * self.es.popsize * cfg.episodes
                    bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in logs.items()
                                     if k.startswith("fitness/")}, refresh=False)
                    self._log(logs)
                if cfg.eval_every and (self.step % cfg.eval_every == 0 or last):
                    self._log(self.evaluate())
                if self.run is not None and cfg.checkpoint_every and (
                        self.step % cfg.checkpoint_every == 0 or last):
                    self.save()
        except KeyboardInterrupt:     # Ctrl-C: keep the generations done so far, then stop
            if self.run is not None:
                self.save()
            raise
        finally:
            bar.close()
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        if self.stopped:
            self.log(f"CMA-ES stopped at generation {self.step}: "
                     + ", ".join(f"{k}={v}" for k, v in self.stopped.items()))
        return self.last_metrics

    def _log(self, scalars: dict[str, float]) -> None:
        self.last_metrics.update(scalars)
        if self.run is not None:
            self.run.log({"step": self.step, **scalars})

    def sampling_weights(self):
        """The model already holds its sampling weights (the mean): nothing to swap in."""
        return contextlib.nullcontext()

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        self.model.set_flat_parameters(torch.from_numpy(self.mean))
        own = ckpt.own_state(self.model, self.cfg.copy_components)
        tensors = {f"model.{k}": v for k, v in own.items()}
        lam = self.es.popsize
        tensors.update({"evolution.x0": torch.from_numpy(self.x0),
                        "evolution.mean": torch.from_numpy(self.mean),
                        "evolution.best": torch.from_numpy(self.best),
                        "evolution.fitness": torch.from_numpy(
                            np.stack(self.history) if self.history else np.empty((0, lam)))})
        desc = {**self.description, "step": self.step,
                "versions": {"genzoo": __version__, "torch": torch.__version__,
                             "numpy": np.__version__, "cma": _cma().__version__},
                "evolution": {"population": lam, "sigma0": self.cfg.sigma0, "seed": self.cfg.seed,
                              "sigma": float(self.es.sigma),
                              "best_fitness": self.best_fitness,
                              "stopped": {k: str(v) for k, v in self.stopped.items()}},
                "metrics": self.last_metrics}
        return tensors, desc

    # The Trainer's: resume from the newest checkpoint that reads whole (an older one if it is
    # damaged); write state() atomically as step_N, keep the newest keep_checkpoints.
    _resume = Trainer._resume
    save = Trainer.save
    dist, main = None, True         # one process: what those two ask of the ranks

    def load(self, path) -> None:
        """Rebuild the strategy by replaying the recorded generations (see the module's doc)."""
        tensors, desc = ckpt.load(path)
        saved = desc["evolution"]
        for key in ("sigma0", "seed"):
            if saved[key] != getattr(self.cfg, key):
                raise GenzooError(f"{path}: the run was evolved with {key}={saved[key]}, not "
                                  f"{getattr(self.cfg, key)}; resume with the same setting")
        self.x0 = tensors["evolution.x0"].numpy()
        self.es = strategy(self.x0, self.cfg)
        if self.es.popsize != saved["population"]:
            raise GenzooError(f"{path}: the run was evolved with population={saved['population']},"
                              f" not {self.es.popsize}; resume with the same setting")
        self.history, self.step, self.mean, self.stopped = [], 0, self.x0.copy(), {}
        self.best_fitness = None
        for fitness in tensors["evolution.fitness"].numpy():
            self.tell(self.es.ask(), fitness)
        if not (np.array_equal(self.mean, tensors["evolution.mean"].numpy())
                and float(self.es.sigma) == saved["sigma"]):
            drift = float(np.abs(self.mean - tensors["evolution.mean"].numpy()).max())
            self.log(f"warning: {path}: replaying the evolution did not reproduce the saved "
                     f"state (mean off by up to {drift:.3g}; saved with {desc['versions']}); "
                     "resuming from the replayed state, not exactly")
        ckpt.load_own_state(self.model, ckpt.sub(tensors, "model"), path)
        self.model.set_flat_parameters(torch.from_numpy(self.mean))
        self.best = tensors["evolution.best"].numpy().copy()
        self.best_fitness = saved["best_fitness"]
        self.last_metrics = desc.get("metrics", {})
