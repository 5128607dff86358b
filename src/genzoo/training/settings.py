"""The settings of a training run (:class:`TrainConfig`) and what follows from them alone: the
device, the learning-rate schedule (linear warm-up, then constant, cosine or linear decay), the
compiled sub-networks."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class TrainConfig:
    steps: int = 3000               # optimisation steps (a step updates every objective)
    epochs: float | None = None     # if set, steps = epochs * len(data) / batch_size
    batch_size: int = 128
    lr_schedule: str = "constant"   # constant | cosine | linear (decay after warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1       # final lr / base lr for cosine and linear
    grad_clip: float = 0.0          # max global grad norm per objective; 0 = off
    precision: str = "fp32"         # fp32 | bf16 (autocast; never fp16 on CPU) | auto (bf16
                                    # on a CPU with AMX, else fp32: TF32 on CUDA, measured faster)
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
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"precision must be fp32, bf16 or auto, got {self.precision!r}")
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



def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with AMX tiles, ``fp32`` elsewhere: on a CUDA GPU that
    means TF32 tensor-core matmuls (``train.tf32``), which beat bf16 autocast at the default
    sizes of the families that ask for ``auto`` (measured on an H200:
    benchmarks/results/scale.md). Large matrix products on a GPU (a big transformer) want
    ``bf16``, asked for explicitly. A family opts in through its ``train_defaults``; on a CPU
    without native bf16, autocast only adds casts."""
    if name != "auto":
        return name
    if device.type == "cpu":
        return "bf16" if torch.cpu._is_amx_tile_supported() else "fp32"
    return "fp32"


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
