"""One training step of the Trainer: every objective of the family in turn, each updated
``repeats`` times on fresh batches (in ``accumulate`` micro-batches, gradients all-reduced
across ranks), only its own parameters trainable, lazy ones (``every``) on their steps and
late ones (``start``) from their step on, then the learning-rate schedules.

:class:`ObjectiveSteps` is a part of :class:`genzoo.training.trainer.Trainer` (a mixin): it
uses the Trainer's ``model``, ``cfg``, ``data``, ``batches``, ``dist``, ``run`` and ``step``.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from genzoo.errors import GenzooError
from genzoo.training.batches import Batches, split_batch
from genzoo.training.settings import lr_factor


class ObjectiveSteps:
    """The optimisers of a family's objectives and the step that updates them."""

    def _init_objectives(self, model, config) -> None:
        """One optimiser per objective that owns one (a sharing objective uses its owner's),
        and a learning-rate schedule for each."""
        self.objectives = model.objectives()
        # each parameter's own trainability (frozen components stay frozen after a step)
        self._trainable = [(p, p.requires_grad) for p in model.parameters()]
        # one optimiser per objective that owns one; a sharing objective uses its owner's
        names = [o.name for o in self.objectives]
        self.optimizers = [o.make_optimizer() for o in self.objectives if o.shares is None]
        owners = [o.name for o in self.objectives if o.shares is None]
        for o in self.objectives:
            if o.shares is not None and o.shares not in owners:
                raise GenzooError(f"objective {o.name} shares the optimiser of {o.shares!r}, "
                                  f"which has none (objectives: {', '.join(names)})")
        self._opt = [self.optimizers[owners.index(o.shares or o.name)] for o in self.objectives]
        # the step each starts at: a sharer also waits for its owner (whose optimiser it moves)
        start = {o.name: o.start for o in self.objectives}
        self._start = [max(o.start, start[o.shares]) if o.shares else o.start
                       for o in self.objectives]
        # with several players, each trains only its own parameters (ids, found once)
        self._own = [{id(p) for p in o.parameters()} for o in self.objectives]
        f = lr_factor(config, self.total)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, f) for opt in self.optimizers]

    # -- one step --------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, obj, opt) -> dict[str, torch.Tensor] | None:
        """One update of ``obj`` on a fresh batch, in ``accumulate`` micro-batches; None when
        its loss was not finite and the run skips such batches."""
        k = self.cfg.accumulate
        opt.zero_grad(set_to_none=True)
        total: dict[str, torch.Tensor] = {}
        bad = None
        for batch in self._micro_batches(k):
            with self._autocast():
                out = obj.loss(batch)
            loss = out["loss"]
            if not torch.isfinite(loss.detach()).all():
                bad = loss
                break
            (loss / k if k > 1 else loss).backward()
            for name, v in out.items():
                total[name] = total.get(name, 0) + v.detach() / k
        if self.dist is not None and self.dist.reduce_gradients(obj.parameters(), bad is not None):
            return self._nonfinite(obj, bad)
        if bad is not None:
            return self._nonfinite(obj, bad)
        if self.cfg.grad_clip > 0:
            total["grad_norm"] = torch.nn.utils.clip_grad_norm_(list(obj.parameters()),
                                                                self.cfg.grad_clip)
        opt.step()
        return total

    def _micro_batches(self, k: int):
        """The next batch (this rank's shard of it), as ``k`` micro-batches."""
        streamed = getattr(self.data, "streamed", False)
        if streamed and self._stream is None:       # starts where the loop stands
            self._stream = self.data.loader(self._indices_ahead())
        idx = self.batches.next()
        if self.dist is not None:
            idx = self.dist.shard(idx)
        if not streamed:
            return (self.data.batch(part) for part in (idx.chunk(k) if k > 1 else (idx,)))
        got, batch = next(self._stream)
        assert torch.equal(got, idx), "the streamed batches fell out of step with the loop"
        return split_batch(batch, k)

    def _indices_ahead(self):
        """The loop's future batches of indices (this rank's shards), from where it stands now,
        for the data loader's workers to decode ahead; the loop's own Batches stays at the
        batch it consumes."""
        ahead = Batches(len(self.data), self.cfg.batch_size, self.cfg.seed)
        ahead.load(self.batches.state())
        shard = self.dist.shard if self.dist is not None else (lambda idx: idx)
        return (shard(ahead.next()) for _ in iter(int, 1))

    def _nonfinite(self, obj, loss) -> None:
        value = (f"is {float(loss.float().mean())}" if loss is not None
                 else "is not finite on another rank")
        where = f"step {self.step + 1}: loss of objective {obj.name!r} {value}"
        if self.cfg.nonfinite == "skip":
            self.nonfinite_skipped += 1
            return None
        latest = self.run.latest_checkpoint() if self.run is not None else None
        keep = f"; the last good checkpoint is {latest}" if latest else "; no checkpoint was written"
        raise GenzooError(f"{where}: training stopped (lower the lr, clip gradients with "
                          f"train.grad_clip, or set train.nonfinite=skip){keep}")

    def train_step(self) -> dict[str, float]:
        self.model.train()
        self.model.steps_done = self.step
        logs: dict[str, torch.Tensor] = {}
        several = len(self.objectives) > 1
        for obj, opt, mine, start in zip(self.objectives, self._opt, self._own, self._start):
            if not obj.runs_at(self.step, start):
                continue    # a lazy objective waits for its step, a late one for its start
            if several:     # gradients only for this player's (trainable) parameters
                for p, trainable in self._trainable:
                    p.requires_grad_(trainable and id(p) in mine)
            out = None
            for _ in range(obj.repeats):
                out = self._update(obj, opt)
            if out is not None:
                prefix = f"{obj.name}/" if several else ""
                logs.update({prefix + k: v for k, v in out.items()})
        if several:
            for p, trainable in self._trainable:
                p.requires_grad_(trainable)
        if self.nonfinite_skipped:
            logs["nonfinite_skipped"] = torch.tensor(float(self.nonfinite_skipped))
        with warnings.catch_warnings():   # a late objective's optimiser has not stepped yet:
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            for s in self.schedulers:     # its lr follows the run's schedule all the same
                s.step()
        if self.dist is not None:
            self.dist.sync_state(self.model)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        self.model.steps_done = self.step
        return logs

