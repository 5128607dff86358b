"""Scoring a population of parameter vectors over episodes, in this process or in workers.

Each candidate's fitness is the mean of ``episodes`` scores, all candidates of a
generation on the same episode seeds (common random numbers: the ranking then reflects the
parameters, not which candidate drew the easier episodes). The seeds derive from (seed,
generation) alone and each candidate's score from (theta, seeds) alone, so a population scored
in-process or over any number of worker processes gives the same numbers, to the bit. Workers
are spawned (not forked: safe with CUDA and threads, and the same on every platform), each with
its own private copy of the model and one thread.
"""
from __future__ import annotations

import copy
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch


def episode_seeds(seed: int, stream: int, generation: int, n: int) -> list[int]:
    """``n`` episode seeds of a generation (stream 0) or of the held-out evaluation (stream 1)."""
    return [int(s) for s in np.random.SeedSequence([seed, stream, generation]).generate_state(n)]


def blocks(n: int, e: int, parts: int) -> list[tuple[slice, slice]]:
    """The (candidates, episodes) grid cut into about ``parts`` tasks: by candidates, or by
    episodes when there are fewer candidates (scoring one mean over many episodes)."""
    def cut(m):
        edges = np.linspace(0, m, min(m, parts) + 1).round().astype(int)
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    if n >= parts or n >= e:
        return [(r, slice(0, e)) for r in cut(n)]
    return [(slice(0, n), c) for c in cut(e)]


def score_block(model, thetas: np.ndarray, seeds: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model.score_population(torch.from_numpy(thetas), seeds).double().numpy()


def in_workers(fn, seeds: list[int], workers: int) -> np.ndarray:
    """``fn(seeds)`` (an array whose last axis follows the seeds), with the seeds cut into
    ``workers`` consecutive chunks scored in as many spawned one-thread processes (here when
    ``workers`` <= 1), joined in order: the same numbers when each episode is a function of its
    seed alone. ``fn`` must pickle (a module-level function, or a ``functools.partial`` of
    one: what it binds is pickled once per chunk)."""
    chunks = [c.tolist() for c in np.array_split(np.array(seeds), max(1, workers)) if len(c)]
    if len(chunks) <= 1:
        return np.asarray(fn(list(seeds)))
    with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return np.concatenate([np.asarray(p) for p in pool.map(fn, chunks)], axis=-1)


class Workers:
    """``n`` spawned one-thread processes, each holding a private copy of ``model``, that
    score blocks of a population over episodes."""

    def __init__(self, model, n: int, device: str):
        blob = pickle.dumps(copy.deepcopy(model).cpu())      # bytes: a private copy each
        self.n = n
        self.pool = multiprocessing.get_context("spawn").Pool(
            n, initializer=_init_worker, initargs=(blob, device))

    def score(self, thetas: np.ndarray, seeds: list[int]) -> np.ndarray:
        """Fitness (n, E) of candidates (n, P) over the episodes of ``seeds``."""
        tasks = blocks(len(thetas), len(seeds), 4 * self.n)
        parts = self.pool.starmap(_worker_score, [(thetas[r], seeds[c]) for r, c in tasks])
        F = np.empty((len(thetas), len(seeds)))
        for (r, c), part in zip(tasks, parts):
            F[r, c] = part
        return F

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


_worker_model = None


def _init_worker(blob: bytes, device: str) -> None:
    global _worker_model
    torch.set_num_threads(1)
    _worker_model = pickle.loads(blob).to(device).eval()


def _worker_score(thetas: np.ndarray, seeds: list[int]) -> np.ndarray:
    return score_block(_worker_model, thetas, seeds)
