"""The one training loop, for every family.

Each step, every objective of the family is updated ``repeats`` times, each time on a fresh
batch; then the EMA weights move, and on their schedules the loop logs, evaluates on held-out
data, draws a sample grid from a fixed seed and writes a checkpoint. A checkpoint holds all
that the next step depends on (weights, optimisers, EMA, schedule, RNG states, the data
position), so a run killed at any moment resumes from its last checkpoint and ends with the
same weights as an uninterrupted run.

The parts: the settings (training/settings.py), the order of the data (batches.py), one step
over the objectives (stepping.py), checkpoints and resume (resume.py); the loop is here.
"""
from __future__ import annotations

import contextlib
import random
import time

import numpy as np
import torch
from tqdm import tqdm

from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import Family
from genzoo.training import distributed, ranks
from genzoo.training.batches import Batches, split_batch  # noqa: F401 (the public names)
from genzoo.training.ema import EMA
from genzoo.training.resume import Checkpoints
from genzoo.training.settings import (TrainConfig, compile_networks,  # noqa: F401
                                      lr_factor, resolve_device, resolve_precision)
from genzoo.training.stepping import ObjectiveSteps


class Trainer(ObjectiveSteps, Checkpoints):
    """Trains ``model`` on ``data`` as ``config`` says; writes to ``run`` when given one.

    ``run`` is a :class:`genzoo.training.run.RunDir` (or None for in-memory training, as in
    notebooks and tests). ``writer(x, info, stem)`` writes the sample grids drawn over training
    (``genzoo.viz.samples.save_samples``; none are drawn without one).

    In a torch.distributed process group of several ranks (torchrun), each rank trains on its
    shard of every batch and rank 0 alone writes; see :mod:`genzoo.training.ranks`.
    """

    def __init__(self, model: Family, data: TensorDataset, config: TrainConfig,
                 run=None, held_out: TensorDataset | None = None, description: dict | None = None,
                 writer=None, log=print):
        self.cfg = config
        self.device = distributed.local_device(resolve_device(config.device))
        self.dist = ranks.context(self.device)     # None in a single process
        self.precision = resolve_precision(config.precision, self.device)   # fp32 | bf16
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)
        if self.dist is not None:
            self.dist.sync_batchnorm(model)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = config.tf32
            torch.backends.cudnn.allow_tf32 = config.tf32
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model.to(self.device)
        self.data = data.to(self.device)
        self.held_out = held_out.to(self.device) if held_out is not None else None
        self.run = run
        self.writer = writer
        self.log = log
        self.description = description or {}
        self.total = config.total_steps(len(data))
        self._init_objectives(model, config)
        self.ema = (EMA(model, config.ema_decay, model.ema_networks)
                    if config.ema_decay > 0 else None)
        self.nonfinite_skipped = 0
        self.batches = Batches(len(data), config.batch_size, config.seed)
        self._stream = None             # a streamed dataset's batches, decoded ahead
        if self.dist is not None:
            distributed.check_batch(self.dist.world, self.batches.batch_size, config.accumulate)
            self.dist.broadcast_state(model)
            self.dist.seed(config.seed)
        self.step = 0
        self.last_metrics: dict = {}
        self._writer = None
        if config.compile:
            compile_networks(model)
        if run is not None and run.latest_checkpoint() is not None:
            self._resume(run)

    @property
    def main(self) -> bool:
        """Whether this process writes: the only one, or rank 0 of several."""
        return self.dist is None or self.dist.main
    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        if self.run is not None and cfg.tensorboard and self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GenzooError("train.tensorboard: the tensorboard package is not installed "
                                  "(pip install 'genzoo[tensorboard]')") from None
            self._writer = SummaryWriter(str(self.run.path / "tensorboard"))
        bar = tqdm(total=self.total, initial=self.step, disable=not cfg.progress or not self.main,
                   desc=self.model.family_name or "train", unit="step", dynamic_ncols=True)
        t0, steps0 = time.perf_counter(), self.step
        try:
            while self.step < self.total:
                logs = self.train_step()
                if cfg.max_minutes and self._spent(time.perf_counter() - t0):
                    self.total = self.step      # budget spent: log, eval, sample, save as last
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total:
                    rate = (self.step - steps0) / max(1e-9, time.perf_counter() - t0)
                    scalars = (self.dist.mean_scalars(logs) if self.dist is not None
                               else {k: float(v) for k, v in logs.items()})
                    scalars["lr"] = self.schedulers[0].get_last_lr()[0]
                    scalars["steps_per_s"] = rate
                    bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items()
                                     if k.endswith("loss")}, refresh=False)
                    self._log(scalars)
                if self.main and cfg.eval_every and self.held_out is not None and (
                        self.step % cfg.eval_every == 0 or self.step == self.total):
                    self._log(self.evaluate())
                if self.main and self.run is not None and cfg.sample_every and (
                        self.step % cfg.sample_every == 0 or self.step == self.total):
                    self.sample_grid()
                if self.run is not None and cfg.checkpoint_every and (
                        self.step % cfg.checkpoint_every == 0 or self.step == self.total):
                    self.save()
        except KeyboardInterrupt:     # Ctrl-C: keep the work done so far, then stop (several
            if self.run is not None and self.dist is None:   # ranks stop at different points:
                self.save()                                   # their last checkpoint stands)
            raise
        finally:
            bar.close()
            self._stream = None             # stops a data loader's workers
            if self._writer is not None:
                self._writer.close()
        return self.last_metrics

    def _spent(self, seconds: float) -> bool:
        """Whether the max_minutes budget is spent (on any rank: all stop at the same step)."""
        spent = seconds >= 60 * self.cfg.max_minutes
        return self.dist.any(spent) if self.dist is not None else spent

    def _log(self, scalars: dict[str, float]) -> None:
        self.last_metrics.update(scalars)
        if self.run is not None and self.main:
            self.run.log({"step": self.step, **scalars})
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(k, v, self.step)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean of the family's held-out scalars over a few fixed batches."""
        self.model.eval()
        n = len(self.held_out)
        bs = min(self.cfg.batch_size, n)
        sums: dict[str, float] = {}
        count = 0
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)
            for start in range(0, min(n, bs * self.cfg.eval_batches), bs):
                idx = torch.arange(start, min(n, start + bs), device=self.device)
                with self._autocast(), self.sampling_weights():
                    out = self.model.evaluate(self.held_out.batch(idx))
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
                count += len(idx)
        return {f"val/{k}": v / count for k, v in sums.items()}

    def sampling_weights(self):
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def sample_grid(self) -> None:
        """A grid of samples from the same fixed seed at every call, to watch training."""
        if self.writer is None:
            return
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            g = torch.Generator(self.device).manual_seed(self.cfg.seed + 12345)
            with self.sampling_weights():
                x = self.model.sample(self.cfg.sample_n, generator=g)
        self.writer(x, self.model.output_info, self.run.path / "samples" / f"step_{self.step:08d}")
