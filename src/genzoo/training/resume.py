"""Checkpoints of a training run and resuming from them: all that the next step depends on
(weights, optimisers, EMA, schedules, RNG states of every library and every rank, the data's
position), so that a run killed at any moment resumes from its last checkpoint and ends with
the same weights as an uninterrupted run. The file format is :mod:`genzoo.training.checkpoint`.

:class:`Checkpoints` is a part of :class:`genzoo.training.trainer.Trainer` (a mixin).
"""
from __future__ import annotations

import random

import numpy as np
import torch

from genzoo import __version__
from genzoo.errors import GenzooError
from genzoo.training import checkpoint as ckpt
from genzoo.training import ranks


def _rng_state() -> tuple[dict, dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    plain = {"python": _jsonable(random.getstate()),
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return tensors, plain


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _set_rng_state(tensors: dict, plain: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    py = plain["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = plain["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


class Checkpoints:
    """save(), load() and the resume of a Trainer from its run folder."""

    def _resume(self, run) -> None:
        """Continue from the newest checkpoint that reads whole; a damaged newer one (a disk
        that filled up, a copy cut short) is named, and the older one is used."""
        damaged = []
        for path in reversed(ckpt.listing(run.path / "checkpoints")):
            try:
                self.load(path)
                break
            except GenzooError as e:
                damaged.append(str(e))
        else:
            raise GenzooError(f"{damaged[0]}; no older checkpoint reads either: start a new run")
        for message in damaged:
            self.log(f"warning: {message}; resuming from the older {path.name}")
        if self.main:
            run.truncate_metrics(self.step)

    def state(self) -> tuple[dict, dict]:
        own = ckpt.own_state(self.model, self.cfg.copy_components)
        tensors = {f"model.{k}": v for k, v in own.items()}
        desc = {**self.description, "step": self.step, "batches": self.batches.state(),
                "versions": {"genzoo": __version__, "torch": torch.__version__}}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
            desc["ema_updates"] = self.ema.updates
        desc["optimizers"] = [ckpt.flatten(o.state_dict(), f"optim.{i}", tensors)
                              for i, o in enumerate(self.optimizers)]
        desc["schedulers"] = [s.state_dict() for s in self.schedulers]
        rng_t, rng_plain = _rng_state()
        tensors.update(rng_t)
        desc["rng"] = rng_plain
        desc["metrics"] = self.last_metrics
        return tensors, desc

    def save(self) -> None:
        """Write a checkpoint (rank 0; the other ranks hand it their own state)."""
        if self.dist is not None:
            gathered = self.dist.gather(self._rank_state())
            if not self.main:
                return
        tensors, desc = self.state()
        if self.dist is not None:
            desc["ranks"] = {"world": self.dist.world, "rng": []}
            for r, (own, plain) in enumerate(gathered[1:], 1):
                tensors.update({f"rank.{r}.{k}": v for k, v in own.items()})
                desc["ranks"]["rng"].append(plain)
        folder = self.run.path / "checkpoints"
        previous = self.run.latest_checkpoint()
        try:
            ckpt.save(folder / ckpt.name_for(self.step), tensors, desc)
        except OSError as e:
            kept = f"the previous checkpoint {previous.name} is intact" if previous else "no checkpoint was kept"
            raise GenzooError(f"{folder}: could not write the checkpoint of step {self.step} "
                              f"({e.strerror or e}); {kept}") from None
        for old in ckpt.listing(folder)[:-self.cfg.keep_checkpoints]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)

    def load(self, path) -> None:
        tensors, desc = ckpt.load(path, self.device)
        mine = self.model.family_name or desc.get("family")     # an unregistered model: any
        if desc.get("family", mine) != mine:
            raise GenzooError(f"{path}: a checkpoint of family {desc.get('family')}, not of "
                              f"{mine}")
        ckpt.load_own_state(self.model, ckpt.sub(tensors, "model"), path)
        if self.ema is not None and "ema_updates" in desc:
            self.ema.load_state_dict(ckpt.sub(tensors, "ema"), desc["ema_updates"])
        for opt, skel in zip(self.optimizers, desc["optimizers"]):
            opt.load_state_dict(ckpt.unflatten(skel, tensors))
        for s, st in zip(self.schedulers, desc["schedulers"]):
            s.load_state_dict(st)
        self.batches.load(desc["batches"])
        _set_rng_state({k: v.cpu() for k, v in tensors.items() if k.startswith("rng.")}, desc["rng"])
        self.step = desc["step"]
        self.model.steps_done = self.step
        self.last_metrics = desc.get("metrics", {})
        self._load_rank_state(tensors, desc)
        self._stream = None

    def _rank_state(self) -> tuple[dict, dict]:
        """What this rank keeps for itself: its integer buffers and its RNG states."""
        own = {f"model.{k}": v.cpu() for k, v in ranks.rank_local_buffers(self.model).items()}
        rng_t, rng_plain = _rng_state()
        return {**own, **rng_t}, rng_plain

    def _load_rank_state(self, tensors: dict, desc: dict) -> None:
        """Rank r > 0 takes back its own state; one written by another number of ranks
        continues, though not bit for bit."""
        saved = desc.get("ranks", {}).get("world", 1)
        world, r = (self.dist.world, self.dist.rank) if self.dist is not None else (1, 0)
        if saved != world and self.main:
            self.log(f"warning: the checkpoint was written by {saved} process(es) and this run "
                     f"has {world}: it goes on, but not bit for bit as an unchanged run would")
        if 0 < r < saved:
            mine = ckpt.sub(tensors, f"rank.{r}")
            self.model.load_state_dict(ckpt.sub(mine, "model"), strict=False)
            _set_rng_state({k: v.cpu() for k, v in mine.items() if k.startswith("rng.")},
                           desc["ranks"]["rng"][r - 1])
        elif r >= saved:                    # a rank the checkpoint did not have
            ranks.reseed(self.cfg.seed, r, self.step)
