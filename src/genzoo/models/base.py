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

from genzoo.errors import GenzooError


@dataclass
class FieldInfo:
    """One more field of a multi-field item (a caption's tokens beside an image, the actions
    beside a world model's frames): its modality, the shape of one item's field, its dtype."""
    modality: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return {"modality": self.modality, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict) -> "FieldInfo":
        return cls(d["modality"], tuple(d["shape"]), d.get("dtype", "float32"))


@dataclass
class DataInfo:
    """What a family needs to know about its data to be built (saved with every run).

    ``modality`` and ``shape`` describe the main field ``x``; ``fields`` the others an item
    carries (``y`` labels are described by ``num_classes``)."""
    modality: str
    shape: tuple[int, ...]              # one item, e.g. (1, 32, 32)
    num_classes: int = 0
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)   # JSON-able modality extras (e.g. a vocabulary)
    fields: dict[str, FieldInfo] = field(default_factory=dict)
    size: int = 0                       # training items (0: not known, e.g. an older run)

    @classmethod
    def of(cls, ds) -> "DataInfo":
        meta = {k: v for k, v in ds.meta.items() if k != "notes"}
        fields = {k: FieldInfo(ds.meta.get("field_modality", {}).get(k, "tensor"),
                               tuple(v.shape[1:]), str(v.dtype).replace("torch.", ""))
                  for k, v in ds.items.items()}
        meta.pop("field_modality", None)
        return cls(ds.modality, tuple(ds.shape), ds.num_classes, ds.class_names, meta, fields,
                   len(ds))

    def to_dict(self) -> dict:
        return {"modality": self.modality, "shape": list(self.shape),
                "num_classes": self.num_classes, "class_names": self.class_names,
                "meta": self.meta, "fields": {k: f.to_dict() for k, f in self.fields.items()},
                "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        return cls(d["modality"], tuple(d["shape"]), d.get("num_classes", 0),
                   d.get("class_names"), d.get("meta", {}),
                   {k: FieldInfo.from_dict(f) for k, f in (d.get("fields") or {}).items()},
                   d.get("size", 0))


@dataclass(frozen=True)
class SampleOption:
    """One keyword of a family's :meth:`Family.sample`, declared so that generic code (the
    ``sample`` command, the explorer) can offer it without knowing the family."""
    name: str                           # the keyword of sample(); --name-with-dashes on the CLI
    type: type                          # int | float | str | bool
    default: Any = None                 # None: the family's own default
    help: str = ""
    choices: tuple | None = None        # the allowed values, where there is a closed set
    kind: str = ""                      # a hint for user interfaces: "label", "prompt", ...
    fast: Any = None                    # the value where sampling must be quick (genzoo
                                        # compare, eval --fast); None: the default serves

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str, data: DataInfo) -> Any:
        """A value typed by a user (command line, form) -> the keyword's value, checked against
        ``type`` and ``choices``. An option of kind "label" also takes a class name of ``data``."""
        if self.kind == "label":
            names = data.class_names or []
            if text in names:
                return names.index(text)
            if text.lstrip("-").isdigit() and 0 <= int(text) < data.num_classes:
                return int(text)
            known = ", ".join(names or map(str, range(data.num_classes))) or "it has none"
            raise GenzooError(f"{self.flag} {text!r}: not a class of this run ({known})")
        try:
            value = _PARSERS[self.type](text)
        except (KeyError, ValueError):
            raise GenzooError(f"{self.flag} {text!r}: not {_TYPE_NAMES.get(self.type, self.type)}") \
                from None
        if self.choices is not None and value not in self.choices:
            raise GenzooError(f"{self.flag} {text!r}: not one of {', '.join(map(str, self.choices))}")
        return value


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_PARSERS = {int: int, float: float, str: str, bool: _boolean}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "text", bool: "yes or no"}


@dataclass(frozen=True)
class Likelihood:
    """A likelihood as a typed value, so that only comparable numbers share a column.

    ``value`` in ``unit`` ("bits/dim", "nats", "nats/token", "bits/token"); ``levels`` is the
    number of discrete values per dimension it is over (256 for 8-bit pixels, 4 for a 4-level
    PixelCNN, the vocabulary size for tokens; 0 for continuous data); ``exact`` is False for a
    bound (an ELBO)."""
    value: float
    unit: str
    levels: int = 0
    exact: bool = True

    def comparable_with(self, other: "Likelihood") -> bool:
        return self.unit == other.unit and self.levels == other.levels

    def label(self) -> str:
        kind = "" if self.exact else " (bound)"
        over = f" over {self.levels} levels" if self.levels else ""
        return f"{self.unit}{over}{kind}"

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "levels": self.levels, "exact": self.exact}

    @classmethod
    def from_dict(cls, d: dict) -> "Likelihood":
        return cls(float(d["value"]), d["unit"], int(d.get("levels", 0)), bool(d.get("exact", True)))


LossFn = Callable[[dict[str, Tensor]], dict[str, Tensor]]


def fusable(params: list) -> bool:
    """Whether PyTorch's fused Adam kernel (one pass over each tensor for the whole update: the
    faster one, benchmarks/results/scale.md) can take these: float tensors on CPU or CUDA."""
    ts = [t for g in params for t in (g["params"] if isinstance(g, dict) else [g])]
    return bool(ts) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in ts)


@dataclass
class Objective:
    """One loss to minimise over some parameters, with its own optimiser.

    ``loss(batch)`` returns a dict with the scalar ``loss`` plus anything worth logging.
    ``repeats`` is how many updates (each on a fresh batch) it gets per training step: a
    WGAN critic has ``repeats=n_critic`` and its generator ``repeats=1``. ``every=k`` runs it on
    every k-th step only, and ``shares="critic"`` updates through the critic's optimiser: a
    lazy regulariser (StyleGAN2's R1 every 16 steps) is both.
    """
    name: str
    loss: LossFn
    params: list                        # parameters, or param-group dicts for torch.optim
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    optimizer: str = "adam"             # adam | adamw | rmsprop | sgd
    repeats: int = 1
    momentum: float = 0.0               # rmsprop and sgd
    every: int = 1                      # run on every k-th step only (lazy regularisation)
    shares: str | None = None           # update through the optimiser of this objective
    start: int = 0                      # the first step it runs at (0-based)

    def __post_init__(self):
        if self.repeats < 1 or self.every < 1 or self.start < 0:
            raise ValueError(f"objective {self.name}: repeats and every must be >= 1 and start "
                             f">= 0, got {self.repeats}, {self.every}, {self.start}")

    def runs_at(self, step: int, start: int | None = None) -> bool:
        """Whether it is updated at ``step`` (0-based): from its start on, every k-th step."""
        return step >= (self.start if start is None else start) and step % self.every == 0

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Its optimiser over its trainable parameters (frozen ones get no state)."""
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]}
                  if isinstance(g, dict) else g for g in self.params]
        params = [g for g in params if isinstance(g, dict) or g.requires_grad]
        if self.optimizer in ("adam", "adamw"):
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
            return cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay,
                       fused=fusable(params))
        if self.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr, momentum=self.momentum,
                                       weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        raise ValueError(f"objective {self.name}: unknown optimizer {self.optimizer!r} "
                         f"(adam, adamw, rmsprop, sgd)")

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
    # Every family has ``tiny``: a few-second model for the contract test and pipeline smoke runs.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # How it is fitted: "gradient" (the Trainer, through objectives()) or "evolution" (an
    # evolution strategy over a parameter vector: models/evolved.py).
    fit_with: ClassVar[str] = "gradient"
    # The keywords its sample() takes beyond n and generator (see SampleOption).
    sample_options: ClassVar[tuple[SampleOption, ...]] = ()
    # Sub-networks (attribute names) whose weights get an EMA for sampling; empty: all trained
    # parameters. A GAN averages its generator, not its critic.
    ema_networks: ClassVar[tuple[str, ...]] = ()
    # A family trained on data derived from one of its components names that config field; the
    # launcher passes the --data items through the component's derive() once (and caches them).
    derives_data_from: ClassVar[str | None] = None
    # The modality of what derive() returns, for a family that other families stand on.
    derived_modality: ClassVar[str] = ""
    # Components (RunRef config fields) the family also trains without (VQ-GAN's perceptual
    # network): the contract test builds it with them unset; the others it cannot build yet.
    optional_components: ClassVar[tuple[str, ...]] = ()
    # Training steps done so far: the Trainer sets it before each step and on resume, for a
    # recipe that changes over training (VQ-GAN's adversarial term from ``disc_start`` on, as
    # the reference code's ``global_step``). Not saved: the Trainer's step count is.
    steps_done: int = 0

    def __init__(self, config, data: DataInfo, components: dict[str, "Family"] | None = None):
        super().__init__()
        self.config = config
        self.data = data
        # Trained runs this family stands on (config fields of type RunRef), loaded frozen in
        # eval mode by the builder. They live in a ModuleDict so that they follow .to(device),
        # but checkpoints never copy them: they are rebuilt from their own run folders.
        self.components = nn.ModuleDict(components or {})
        for c in self.components.values():
            c.requires_grad_(False).eval()

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

    def likelihood(self, held_out: dict[str, float]) -> Likelihood | None:
        """The family's likelihood of held-out data as a typed value, read from the means of
        its :meth:`evaluate` scalars over the held-out set; None where the mathematics has none
        (GANs, energy-based models) or it is not computed."""
        return None

    def train(self, mode: bool = True):
        """Components stay in eval mode (frozen batch-norm statistics, no dropout)."""
        super().train(mode)
        for c in self.components.values():
            c.eval()
        return self

    def derive(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """A batch of its data -> the fields of the derived items (``x`` at least): the code
        indices of a VQ-VAE, the latents of an autoencoder. Only families others stand on."""
        raise NotImplementedError(f"{self.family_name} derives no data for another stage")

    def derived_meta(self) -> dict:
        """JSON-able facts the next stage needs about derived items (e.g. the codebook size)."""
        return {}

    @property
    def output_info(self) -> DataInfo:
        """What sample() returns: the data's own representation, unless the family samples
        through a component (a prior over codes decodes to the first stage's images)."""
        return self.data

    # -- helpers -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in itertools.chain(self.parameters(), self.buffers()):
            return t.device
        return torch.device("cpu")

    def num_parameters(self) -> int:
        """Its own parameters (the trained runs it stands on are theirs)."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("components."))
