"""Families trained by an evolution strategy instead of gradients.

Some models are scored, not differentiated: the controller C of a world model (Ha and
Schmidhuber 2018) is judged by the reward of whole episodes, and the reward has no useful
gradient. Such a family declares ``fit_with = "evolution"`` and shows the strategy a vector
theta and a score:

- :meth:`evolved_parameters` are the parameters searched over (by default the family's own,
  never its frozen components), seen as one vector theta through :meth:`flat_parameters` and
  :meth:`set_flat_parameters` (the order of ``named_parameters``);
- :meth:`score` is the fitness of the current parameters in one episode, to MAXIMISE, and a
  function of the parameters and the episode's ``seed`` alone (the environment's reset seed,
  the dream's noise). For the call, the global torch, numpy and ``random`` generators are also
  seeded with ``seed``, so a family that draws from them stays a function of (theta, seed);
- :meth:`score_population` scores several candidates over the same episodes; override it to
  batch (a population of dreams in one pass through M), keeping each row a function of its own
  theta and the seeds only, whatever the batch it comes in.

Worker processes each get a pickled copy of the family (its components too) once, then only
candidate vectors and seeds. What should not travel (an open environment) is made lazily in
:meth:`score` and left out of the pickle (``__getstate__``). The training package's
EvolutionTrainer runs the strategy; the family knows nothing of it.
"""
from __future__ import annotations

import contextlib
import random
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import Family


class EvolvedFamily(Family):
    """Base class of a family whose parameters an evolution strategy finds."""

    fit_with: ClassVar[str] = "evolution"

    def objectives(self):
        raise GenzooError(f"{self.family_name or type(self).__name__}: trained by an evolution "
                          "strategy (fit_with = 'evolution'); it has no gradient objectives")

    # -- the parameter vector theta ----------------------------------------------------------
    def evolved_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("components.")]

    def flat_parameters(self) -> Tensor:
        """theta: the evolved parameters as one float64 vector."""
        return torch.cat([p.detach().reshape(-1).double().cpu() for p in self.evolved_parameters()])

    @torch.no_grad()
    def set_flat_parameters(self, theta: Tensor) -> None:
        params = self.evolved_parameters()
        size = sum(p.numel() for p in params)
        if theta.numel() != size:
            raise ValueError(f"theta has {theta.numel()} values, the family {size} parameters")
        i = 0
        for p in params:
            p.copy_(theta[i:i + p.numel()].view_as(p))
            i += p.numel()

    # -- fitness --------------------------------------------------------------------------------
    def score(self, seed: int) -> float:
        """Fitness (higher is better) of the current parameters in the episode ``seed``."""
        raise NotImplementedError

    @torch.no_grad()
    def score_population(self, thetas: Tensor, seeds: list[int]) -> Tensor:
        """Fitness (n, E) of each candidate theta (n, P) in each episode of ``seeds``."""
        out = torch.empty(len(thetas), len(seeds), dtype=torch.float64)
        for i, theta in enumerate(thetas):
            self.set_flat_parameters(theta)
            for j, seed in enumerate(seeds):
                with self.seeded(seed):
                    out[i, j] = float(self.score(seed))
        return out

    @contextlib.contextmanager
    def seeded(self, seed: int):
        """The global torch, numpy and ``random`` generators seeded with ``seed``, and put back
        as they were afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(seed)   # torch.manual_seed: ~2 ms on CPU here,
            if devices:                                 # it also queues a CUDA seeding
                torch.cuda.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            try:
                yield
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)
