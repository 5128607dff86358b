"""The ranks of one run kept one model: what the Trainer asks of the other processes.

Why not ``DistributedDataParallel``. DDP wraps one module and averages the gradients of the
parameters its ``forward`` used, through hooks that the wrapper's forward arms. A family is not
trained through one forward: its objectives call sub-networks directly (two players updated in
turns, a network called inside a loss that first corrupts the data, a network called inside a
sampling chain), so a wrapper round the family would see none of those calls, and a wrapper
round each sub-network would average gradients that belong to another player's update. So the
Trainer does DDP's work explicitly, at the one place every family goes through:

- at the start, every rank takes rank 0's parameters and buffers (a broadcast);
- after the backward pass of each update of an objective (after all its micro-batches), the
  gradients of that objective's trainable parameters are averaged over the ranks: flattened
  into buckets of about 25 MB, one all-reduce per bucket, all launched before the first is
  waited for. Equal parameters, equal averaged gradients and equal optimisers keep the
  parameters (and so the EMA, one copy per rank) equal on every rank with no more traffic.

Cost: one all-reduce of the gradients per update, as DDP, but not overlapped with the backward
pass (DDP starts a bucket's all-reduce while earlier layers are still differentiating); on one
machine that is a small part of a step, over a slow network with a large model the lost
overlap shows. Besides: one tiny all-reduce of flags per update (which parameters got a
gradient on any rank, whether any rank's loss was not finite), the check of the state below
(two fused norm kernels over the weights and an all-gather of two numbers a tensor, per step),
and the logged scalars at log steps.

State that is not moved by the averaged gradients alone:

- After each step every floating-point parameter and buffer is compared across the ranks (by
  its L1 and L2 norms); where they differ, buffers are averaged and parameters take rank 0's
  values. Buffers differ when a step writes them from its own shard: batch-norm running
  statistics, data statistics measured on the first batches, a data-dependent initialisation,
  running moments of codes. For means over the batch the average over equal shards is the
  mean over the global batch (a measured data mean is that of one process, to
  rounding); a variance lacks the between-shard term. Parameters differ when a family edits
  them by hand from its shard (a codebook moving unused codes onto its batch's encodings):
  rank 0's edit, a valid one, then stands for all.
- Integer and boolean buffers are each rank's own: counters agree anyway, and a replay
  buffer (stored as int32 bits) is each rank's own set of chains. Rank 0 gathers them, and
  every rank's RNG states, into each checkpoint; on resume each rank takes back its own.
- Batch norm: on CUDA its layers become ``SyncBatchNorm`` (batch statistics over the global
  batch, as in one process; two small all-gathers per layer and forward). torch has no
  SyncBatchNorm on CPU: there each rank normalises by its own shard's statistics (DDP's
  default), a batch of ``batch_size / W`` for that purpose.
- Randomness: rank r > 0 reseeds from (seed, r), so the noise of the shards is independent, as
  in one process; rank 0 keeps the single-process stream.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from genzoo.training.distributed import active, cpu_group

BUCKET_BYTES = 25 * 2**20


# -- what the Trainer asks of the ranks -----------------------------------------------------
class Ranks:
    """This process's place among the ranks of a run, and the collectives the Trainer uses."""

    def __init__(self, device: torch.device):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = device
        # objects (checkpoint state) travel over gloo on the CPU, whatever the main backend
        self.cpu_group = cpu_group()

    @property
    def main(self) -> bool:
        return self.rank == 0

    # -- batches --------------------------------------------------------------------------
    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's consecutive share of a global batch of indices."""
        b = len(idx) // self.world
        return idx[self.rank * b:(self.rank + 1) * b]

    # -- start: the same weights everywhere, each rank its own noise ----------------------
    def broadcast_state(self, model: torch.nn.Module) -> None:
        self._broadcast([t for _, t in _own_tensors(model)])

    def seed(self, seed: int) -> None:
        """Rank r > 0 draws from its own stream, derived from (seed, r)."""
        if self.rank:
            s = int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])
            _reseed(s)

    def sync_batchnorm(self, model: torch.nn.Module) -> None:
        """On CUDA, batch statistics over the global batch (see the module docstring)."""
        if self.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    # -- each update ----------------------------------------------------------------------
    def reduce_gradients(self, params, bad: bool) -> bool:
        """Average the gradients of ``params`` over the ranks; True (and no averaging) when
        some rank's loss was not finite (``bad`` on this one), so that all skip or stop."""
        seen, ps = set(), []
        for p in params:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                ps.append(p)
        flags = torch.tensor([p.grad is not None for p in ps] + [bad], dtype=torch.float32,
                             device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        flags = flags.tolist()
        if flags[-1]:
            return True
        grads = []
        for p, f in zip(ps, flags):
            if f:       # a gradient on some rank: a rank without one contributes zeros
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                grads.append(p.grad)
        self._mean(grads)
        return False

    def sync_state(self, model: torch.nn.Module) -> None:
        """Make the floating-point parameters and buffers equal on every rank again where a
        step made them differ (compared by their L1 and L2 norms): buffers are averaged,
        parameters set to rank 0's (see the module docstring)."""
        own = [(t, isinstance(p, torch.nn.Parameter)) for p, t in _own_tensors(model)
               if t.is_floating_point()]
        if not own:
            return
        tensors = [t for t, _ in own]
        sums = torch.stack([torch.stack(torch._foreach_norm(tensors, 1)),
                            torch.stack(torch._foreach_norm(tensors, 2))], 1).float()
        everyone = [torch.empty_like(sums) for _ in range(self.world)]
        dist.all_gather(everyone, sums)
        differ = (torch.stack(everyone) != sums).any(0).any(1).tolist()
        self._mean([t for (t, param), d in zip(own, differ) if d and not param])
        self._broadcast([t for (t, param), d in zip(own, differ) if d and param])

    def mean_scalars(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Logged scalars averaged over the ranks: the means over the global batch."""
        keys = sorted(logs)
        if not keys:
            return {}
        v = torch.stack([torch.as_tensor(logs[k]).detach().float().reshape(())
                         .to(self.device) for k in keys])
        dist.all_reduce(v)
        return dict(zip(keys, (v / self.world).tolist()))

    def any(self, flag: bool) -> bool:
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    # -- checkpoints ----------------------------------------------------------------------
    def gather(self, obj):
        """Every rank's ``obj`` (CPU tensors and plain data), in rank order, on rank 0;
        None on the others."""
        out = [None] * self.world if self.main else None
        dist.gather_object(obj, out, dst=0, group=self.cpu_group)
        return out

    def _broadcast(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of ``tensors`` on every rank."""
        for bucket in _buckets(tensors):
            flat = _flatten_dense_tensors(bucket)
            dist.broadcast(flat, 0)
            for t, v in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                t.copy_(v)

    def _mean(self, tensors: list[torch.Tensor]) -> None:
        pending = []
        for bucket in _buckets(tensors):
            flat = _flatten_dense_tensors(bucket)
            pending.append((bucket, flat, dist.all_reduce(flat, async_op=True)))
        for bucket, flat, work in pending:
            work.wait()
            flat.div_(self.world)
            for t, v in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                t.copy_(v)


def context(device: torch.device) -> Ranks | None:
    """The ranks of this run, or None in a single process."""
    return Ranks(device) if active() else None


def rank_local_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The buffers each rank keeps for itself: integer and boolean ones."""
    return {k: b for k, b in model.named_buffers()
            if not k.startswith("components.") and not b.is_floating_point()}


def reseed(seed: int, rank: int, step: int) -> None:
    """A fresh stream for a rank whose saved state is missing (resumed on more ranks)."""
    _reseed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0]))


def _reseed(s: int) -> None:
    import random
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)


def _own_tensors(model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter or buffer, its tensor) of the model's own state: not its frozen components'."""
    items = list(model.named_parameters()) + list(model.named_buffers())
    return [(t, t.data if isinstance(t, torch.nn.Parameter) else t) for k, t in items
            if not k.startswith("components.")]


def _buckets(tensors: list[torch.Tensor]):
    """Groups of tensors of one dtype and about BUCKET_BYTES, in order."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        bucket, size = [], 0
        for t in group:
            bucket.append(t)
            size += t.numel() * t.element_size()
            if size >= BUCKET_BYTES:
                yield bucket
                bucket, size = [], 0
        if bucket:
            yield bucket
