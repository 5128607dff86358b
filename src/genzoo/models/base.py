"""The family contract.

A family is an ``nn.Module`` built from its typed config and a :class:`DataInfo`. It knows the
mathematics of its model and nothing of loops, devices, files or logging: it tells the Trainer
what to optimise through :meth:`Family.objectives`, and draws new data with :meth:`sample`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch import Tensor, nn


@dataclass
class DataInfo:
    """What a family needs to know about its data to be built (saved with every run)."""
    modality: str
    shape: tuple[int, ...]              # one item, e.g. (1, 32, 32)
    num_classes: int = 0
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)   # JSON-able modality extras (e.g. a vocabulary)

    @classmethod
    def of(cls, ds) -> "DataInfo":
        meta = {k: v for k, v in ds.meta.items() if k != "notes"}
        return cls(ds.modality, tuple(ds.shape), ds.num_classes, ds.class_names, meta)

    def to_dict(self) -> dict:
        return {"modality": self.modality, "shape": list(self.shape),
                "num_classes": self.num_classes, "class_names": self.class_names,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        return cls(d["modality"], tuple(d["shape"]), d.get("num_classes", 0),
                   d.get("class_names"), d.get("meta", {}))


LossFn = Callable[[dict[str, Tensor]], dict[str, Tensor]]


@dataclass
class Objective:
    """One loss to minimise over some parameters, with its own optimiser.

    ``loss(batch)`` returns a dict with the scalar ``loss`` plus anything worth logging.
    ``repeats`` is how many updates (each on a fresh batch) it gets per training step: a
    WGAN critic has ``repeats=n_critic`` and its generator ``repeats=1``.
    """
    name: str
    loss: LossFn
    params: list                        # parameters, or param-group dicts for torch.optim
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    optimizer: str = "adam"             # adam | adamw
    repeats: int = 1

    def make_optimizer(self) -> torch.optim.Optimizer:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.optimizer]
        return cls(self.params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)

    def parameters(self) -> Iterable[nn.Parameter]:
        for p in self.params:
            if isinstance(p, dict):
                yield from p["params"]
            else:
                yield p


class Family(nn.Module):
    """Base class of every generative family (and of the classifiers used as features)."""

    family_name: ClassVar[str] = ""
    # Trainer defaults of the recipe (batch size, steps, EMA decay...), overridable by the user.
    train_defaults: ClassVar[dict[str, Any]] = {}
    # Named alternatives to the default recipe: ``--preset NAME`` applies these settings.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config, data: DataInfo):
        super().__init__()
        self.config = config
        self.data = data

    # -- what the Trainer calls ------------------------------------------------------------
    @classmethod
    def data_defaults(cls, config) -> dict[str, Any]:
        """Data options the recipe asks for (e.g. ``image_size=32``); the user's win."""
        return {}

    def objectives(self) -> list[Objective]:
        raise NotImplementedError

    def evaluate(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Held-out scalars for one batch (no gradients); by default the first loss."""
        return self.objectives()[0].loss(batch)

    def sample(self, n: int, generator: torch.Generator | None = None, **conditions) -> Any:
        """``n`` new items in the data's own representation (images: float in [0, 1])."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in itertools.chain(self.parameters(), self.buffers()):
            return t.device
        return torch.device("cpu")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
