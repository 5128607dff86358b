"""The order of the data: endless seeded permutations of the items, whose whole state is a
position (so that a resumed run sees the very same batches), and micro-batches."""
from __future__ import annotations

import torch


class Batches:
    """Endless batches of indices: a fresh permutation each epoch, seeded by (seed, epoch).

    Its whole state is (epoch, position), so resuming from a checkpoint continues the very
    same sequence of batches.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load(self, state: dict) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._perm = self._permutation()


def split_batch(batch: dict[str, torch.Tensor], k: int):
    """A batch as ``k`` micro-batches (views)."""
    if k == 1:
        return (batch,)
    parts = {name: v.chunk(k) for name, v in batch.items()}
    return ({name: p[i] for name, p in parts.items()} for i in range(k))

