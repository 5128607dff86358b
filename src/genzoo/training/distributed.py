"""Many processes, one run: data-parallel training with torch.distributed.

W processes (ranks; one per device, launched by ``torchrun`` or ``genzoo train --devices W``)
each hold the whole family and read their own shard of every global batch (the config's
``batch_size`` is the global batch: each rank takes ``batch_size / W`` consecutive items of
it). Rank 0 alone logs, draws sample grids, shows the progress bar and writes checkpoints.

How the ranks stay one model (the gradients averaged by hand, the state that averaging does
not move, the randomness of each rank): :mod:`genzoo.training.ranks`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from genzoo.errors import GenzooError

TIMEOUT = timedelta(minutes=30)      # rank 0 may read or derive data while the others wait


# -- the process group ----------------------------------------------------------------------
def launched() -> bool:
    """Started by torchrun (or another launcher setting WORLD_SIZE) with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device_type: str) -> None:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT), once: NCCL for CUDA devices, gloo for the CPU. Nothing happens in
    a single process or when the group exists already (a script that made its own)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise GenzooError("this torch has no torch.distributed: run in one process")
    cuda = device_type == "cuda"
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise GenzooError(f"local rank {local} has no GPU: this machine has "
                              f"{torch.cuda.device_count()}; start fewer processes per node")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)


def local_device(device: torch.device) -> torch.device:
    """This rank's device: a CUDA device is the one of its local rank."""
    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", device.index or 0)))
    return device


def barrier() -> None:
    if active():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


@contextlib.contextmanager
def main_first():
    """The first rank of each machine runs the block first (downloads, derives and caches
    data), then the others (who find the cache). If one fails, it never reaches the barrier:
    the launcher stops the rest."""
    if not active():
        yield
        return
    first = int(os.environ.get("LOCAL_RANK", rank())) == 0
    if not first:
        barrier()
    yield
    if first:
        barrier()


def from_main(obj):
    """Rank 0's value of ``obj`` on every rank (a default run folder named by the time)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, 0, group=cpu_group())
    return box[0]


def quit() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- launching ------------------------------------------------------------------------------
def launch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m genzoo ARGV`` in ``nproc`` processes on this machine through torch's own
    elastic launcher (what ``torchrun --standalone --nproc-per-node N -m genzoo ...`` does);
    the exit status of the first failed process, or 0."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}",
                                         "--module", "genzoo", *argv])
    try:
        run(args)
    except ChildFailedError as e:
        _, failure = e.get_first_failure()
        code = failure.exitcode if failure.exitcode > 0 else 1
        print(f"genzoo: rank {failure.rank} of {nproc} stopped (exit status {failure.exitcode}); "
              f"the other processes were stopped too", file=sys.stderr)
        return code
    return 0


def check_batch(world: int, batch_size: int, accumulate: int) -> None:
    """A global batch must split evenly among the ranks (and their micro-batches)."""
    if batch_size % (world * accumulate):
        per = f" x {accumulate} micro-batches" if accumulate > 1 else ""
        raise GenzooError(f"train.batch_size {batch_size} does not divide among "
                          f"{world} processes{per}: use a multiple of {world * accumulate}")


_CPU_GROUP = None


def cpu_group():
    """The group that objects (checkpoint state) travel over: gloo on the CPU, whatever the
    main backend; None where that is the default group."""
    global _CPU_GROUP
    if dist.get_backend() == "gloo":
        return None
    if _CPU_GROUP is None:
        _CPU_GROUP = dist.new_group(backend="gloo")
    return _CPU_GROUP
