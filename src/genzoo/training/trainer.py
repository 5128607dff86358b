"""The one training loop, for every family.

Each step, every objective of the family is updated ``repeats`` times, each time on a fresh
batch; then the EMA weights move, and on their schedules the loop logs, evaluates on held-out
data, draws a sample grid from a fixed seed and writes a checkpoint. A checkpoint holds all
that the next step depends on (weights, optimisers, EMA, schedule, RNG states, the data
position), so a run killed at any moment resumes from its last checkpoint and ends with the
same weights as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from genzoo import __version__
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import Family
from genzoo.training import checkpoint as ckpt
from genzoo.training import distributed
from genzoo.training.ema import EMA


@dataclass
class TrainConfig:
    steps: int = 3000               # optimisation steps (a step updates every objective)
    epochs: float | None = None     # if set, steps = epochs * len(data) / batch_size
    batch_size: int = 128
    lr_schedule: str = "constant"   # constant | cosine | linear (decay after warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1       # final lr / base lr for cosine and linear
    grad_clip: float = 0.0          # max global grad norm per objective; 0 = off
    precision: str = "fp32"         # fp32 | bf16 (autocast; never fp16 on CPU)
    compile: bool = False           # torch.compile the family's sub-networks
    tf32: bool = True               # CUDA: TF32 tensor-core matmuls and convolutions (fp32
                                    # range, 10-bit mantissa products, fp32 sums)
    channels_last: bool = False     # NHWC layout of 4-d weights (and so of conv activations):
                                    # what tensor cores want under bf16
    ema_decay: float = 0.0          # 0 = no EMA; sampling uses the EMA weights when kept
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    log_every: int = 10
    eval_every: int = 500           # held-out evaluation; 0 = off
    eval_batches: int = 4
    sample_every: int = 500         # sample grid from a fixed seed; 0 = off
    sample_n: int = 64
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    tensorboard: bool = False
    progress: bool = True
    max_minutes: float = 0.0        # wall-clock budget of this session of fit(); 0 = none.
                                    # When spent, the current step becomes the last one.
    accumulate: int = 1             # micro-batches per update (batch_size is split among them)
    nonfinite: str = "stop"         # stop | skip: what a NaN/inf loss does (stop keeps the last
                                    # good checkpoint and names the loss and step)
    copy_components: bool = False   # copy the weights of the runs this one stands on into its
                                    # checkpoints, so that the run folder can be moved alone

    def validate(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.sample_n < 1 or self.eval_batches < 1:
            raise ValueError("sample_n and eval_batches must be >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr_schedule not in ("constant", "cosine", "linear"):
            raise ValueError(f"lr_schedule must be constant, cosine or linear, got {self.lr_schedule!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0, got {self.max_minutes}")
        if self.checkpoint_every < 0 or self.sample_every < 0 or self.log_every < 1:
            raise ValueError("checkpoint_every and sample_every must be >= 0, log_every >= 1")
        if self.accumulate < 1 or self.batch_size % self.accumulate:
            raise ValueError(f"accumulate must be >= 1 and divide batch_size {self.batch_size}, "
                             f"got {self.accumulate}")
        if self.nonfinite not in ("stop", "skip"):
            raise ValueError(f"nonfinite must be stop or skip, got {self.nonfinite!r}")

    def total_steps(self, n_items: int) -> int:
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * n_items / min(self.batch_size, n_items)))
        return self.steps


def compile_networks(module: torch.nn.Module) -> None:
    """torch.compile each sub-network of a family in place (``Module.compile``), so state_dict
    keys keep no ``_orig_mod.`` prefix. Containers (ModuleList/Dict) have no forward of their
    own: what they hold is compiled instead."""
    for name, child in module.named_children():
        if name == "components":         # frozen runs it stands on: not trained, not compiled
            continue
        if isinstance(child, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            compile_networks(child)
        else:
            child.compile()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def lr_factor(cfg: TrainConfig, total: int):
    """Multiplier of the base learning rate at a step: linear warm-up, then the schedule."""
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        t = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        lo = cfg.min_lr_ratio
        if cfg.lr_schedule == "cosine":
            return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t))
        return 1 - (1 - lo) * t
    return f


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


class Trainer:
    """Trains ``model`` on ``data`` as ``config`` says; writes to ``run`` when given one.

    ``run`` is a :class:`genzoo.training.run.RunDir` (or None for in-memory training, as in
    notebooks and tests). ``writer(x, info, stem)`` writes the sample grids drawn over training
    (``genzoo.viz.samples.save_samples``; none are drawn without one).

    In a torch.distributed process group of several ranks (torchrun), each rank trains on its
    shard of every batch and rank 0 alone writes; see :mod:`genzoo.training.distributed`.
    """

    def __init__(self, model: Family, data: TensorDataset, config: TrainConfig,
                 run=None, held_out: TensorDataset | None = None, description: dict | None = None,
                 writer=None, log=print):
        self.cfg = config
        self.device = distributed.local_device(resolve_device(config.device))
        self.dist = distributed.context(self.device)     # None in a single process
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
        # with several players, each trains only its own parameters (ids, found once)
        self._own = [{id(p) for p in o.parameters()} for o in self.objectives]
        f = lr_factor(config, self.total)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, f) for opt in self.optimizers]
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

    @property
    def main(self) -> bool:
        """Whether this process writes: the only one, or rank 0 of several."""
        return self.dist is None or self.dist.main

    # -- one step --------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
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
        logs: dict[str, torch.Tensor] = {}
        several = len(self.objectives) > 1
        for obj, opt, mine in zip(self.objectives, self._opt, self._own):
            if self.step % obj.every:
                continue                  # a lazy objective waits for its step
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
        for s in self.schedulers:
            s.step()
        if self.dist is not None:
            self.dist.sync_state(self.model)
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return logs

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

    # -- checkpoints -----------------------------------------------------------------------
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
        self.last_metrics = desc.get("metrics", {})
        self._load_rank_state(tensors, desc)
        self._stream = None

    def _rank_state(self) -> tuple[dict, dict]:
        """What this rank keeps for itself: its integer buffers and its RNG states."""
        own = {f"model.{k}": v.cpu() for k, v in distributed.rank_local_buffers(self.model).items()}
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
            distributed.reseed(self.cfg.seed, r, self.step)
