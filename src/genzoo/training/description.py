"""One run description: what a run is, resolved and validated once, then passed down.

A :class:`RunSpec` holds the family's name and typed config, the loop's :class:`TrainConfig`,
the data spec with its :class:`DataOptions`, the data's :class:`DataInfo` once the data has been
read, and the trained runs the family stands on (its components). It is written as
``config.yaml`` and inside every checkpoint, so a checkpoint alone can rebuild its own model.

Components: a family config field of type :class:`~genzoo.config.RunRef` names a trained run
folder. The run records it by path, family, step and the SHA-256 of the very checkpoint file it
was built from; reopening a run whose component is missing or has changed is a one-line error
naming both folders, unless the component's weights were copied into the run
(``train.copy_components``), which lets a run be moved alone.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.training import TRAINERS
from genzoo.training.trainer import TrainConfig

SECTIONS = ("model", "train", "data")


@dataclass
class Component:
    """A trained run a family stands on, pinned to one checkpoint file."""
    path: str
    family: str
    step: int
    checkpoint: str                      # file name inside RUN/checkpoints
    sha256: str
    description: dict | None = None      # the component's own description, when copied in

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.path) / "checkpoints" / self.checkpoint


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class RunSpec:
    family: str
    model: Any                           # the family's config dataclass
    train: TrainConfig                   # or the config of the family's trainer (fit_with)
    data: D.DataOptions
    data_spec: str
    data_info: DataInfo | None = None
    components: dict[str, Component] = field(default_factory=dict)

    @property
    def entry(self) -> registry.Entry:
        return registry.get(self.family)

    # -- plain form (config.yaml, checkpoints) ---------------------------------------------
    def to_dict(self) -> dict:
        d = {"family": self.family, "model": C.to_dict(self.model), "train": C.to_dict(self.train),
             "data": {"spec": self.data_spec, **C.to_dict(self.data)}}
        if self.data_info is not None:
            d["data_info"] = self.data_info.to_dict()
        if self.components:
            d["components"] = {k: c.to_dict() for k, c in self.components.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.yaml") -> "RunSpec":
        """Parse and validate a plain description (one GenzooError naming ``where`` if bad)."""
        if not isinstance(d, dict) or not isinstance(d.get("family"), str):
            raise GenzooError(f"{where}: not a run description (no family)")
        entry = registry.get(d["family"])
        for key in SECTIONS:
            if not isinstance(d.get(key, {}), dict):
                raise GenzooError(f"{where}: section {key!r} must be a mapping")
        model = C.from_dict(entry.config, d.get("model", {}), where=f"{where}: {d['family']} config")
        train = C.from_dict(loop_config(entry), d.get("train", {}), where=f"{where}: train config")
        data = dict(d.get("data", {}))
        spec = data.pop("spec", None)
        if not spec:
            raise GenzooError(f"{where}: no data spec")
        options = C.from_dict(D.DataOptions, data, where=f"{where}: data options")
        try:
            info = DataInfo.from_dict(d["data_info"]) if d.get("data_info") else None
            components = {k: Component(**c) for k, c in (d.get("components") or {}).items()}
        except (KeyError, TypeError, ValueError) as e:
            raise GenzooError(f"{where}: malformed data_info or components ({e})") from None
        return cls(d["family"], model, train, options, str(spec), info, components)


def loop_config(entry) -> type:
    """The config dataclass of the ``train:`` section for a family: its trainer's."""
    return TRAINERS[entry.cls.fit_with][0]


def trainer_class(entry) -> type:
    return TRAINERS[entry.cls.fit_with][1]


def reconcile(entry, model: dict, data: dict, explicit_model: set[str]) -> dict:
    """Make the model's own fields agree with the data options they feed.

    A recipe derives data options from model fields (``data_defaults``: e.g. image_size). When
    the user sets such a data option (``--image-size 64``) the model's field of the same name
    follows it, unless the user also set that field to another value: then it is an error.
    """
    names = {f.name for f in dataclasses.fields(entry.config)}
    probe = C.from_dict(entry.config, model, where=f"{entry.name} config")
    for key in entry.cls.data_defaults(probe):
        if key in data and data[key] is not None and key in names:
            if key in explicit_model and model.get(key) != data[key]:
                raise GenzooError(f"{entry.name}: {key} is {model[key]} in the model settings but "
                                  f"{data[key]} in the data options; set one of them")
            model[key] = data[key]
    return model
