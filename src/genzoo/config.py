"""Typed dataclass configs, YAML files and ``--set key=value`` overrides.

A run is described by three configs: the family's (its hyperparameters, the classic recipe as
defaults), ``TrainConfig`` (the loop) and ``DataConfig`` (the data spec and its options).
Overrides address them as ``lr=1e-3`` (family), ``train.steps=500`` and ``data.image_size=32``.
Every value is checked against the field's type, so a typo fails loudly with the valid names.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from genzoo.errors import GenzooError


class RunRef(str):
    """A config field of this type names a trained run folder: a component the family stands
    on. The builder loads that run's sampling weights, frozen, and hands the module in."""


def run_refs(cls) -> list[str]:
    """The names of the fields of dataclass ``cls`` that are run references."""
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        if RunRef in options:
            out.append(name)
    return out


def _check(cls, name: str, value: Any, where: str) -> Any:
    """``value`` coerced to the declared type of field ``name`` of ``cls``."""
    hints = typing.get_type_hints(cls)
    tp = hints[name]
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if value is None and type(None) in options:
        return None
    for t in options:
        origin = typing.get_origin(t) or t
        if origin is RunRef and isinstance(value, str):
            if not value.strip():
                raise GenzooError(f"{where}: {name} must name a run folder, got an empty string")
            return RunRef(value)
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if origin is bool and isinstance(value, bool):
            return value
        if origin is str and isinstance(value, str):
            return value
        if origin in (tuple, list) and isinstance(value, (list, tuple)):
            args = typing.get_args(t)
            item = args[0] if args else None
            if item in (int, float):
                try:
                    value = [item(v) for v in value]
                except (TypeError, ValueError):
                    break
            return origin(value)
        if origin is dict and isinstance(value, dict):
            return value
    raise GenzooError(f"{where}: {name} must be {_type_name(tp)}, got {value!r}")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls, values: dict, where: str = "config"):
    """An instance of dataclass ``cls`` from ``values``; unknown or ill-typed keys are errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise GenzooError(f"{where}: unknown setting {sorted(unknown)[0]!r} "
                          f"(valid: {', '.join(sorted(names))})")
    cfg = cls(**{k: _check(cls, k, v, where) for k, v in values.items()})
    for f in dataclasses.fields(cls):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise GenzooError(f"{where}: {f.name} must be a finite number, got {v}")
        if (f.name == "lr" or f.name.endswith("_lr")) and isinstance(v, (int, float)) and v <= 0:
            raise GenzooError(f"{where}: {f.name} (a learning rate) must be > 0, got {v}")
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        try:
            validate()
        except (AssertionError, ValueError) as e:
            raise GenzooError(f"{where}: {e}") from None
    return cfg


def to_dict(cfg) -> dict:
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(v):
    if isinstance(v, str):
        return str(v)          # a RunRef is written as plain text
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML would read it: 3 -> int, 1e-3 -> float, [32,64] -> list."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str):           # YAML reads 1e-3 as a string; we want the float
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _is_text(cls, name: str) -> bool:
    """Whether field ``name`` of dataclass ``cls`` holds text (str or str | None)."""
    try:
        tp = typing.get_type_hints(cls).get(name)
    except (TypeError, NameError):
        return False
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return str in options and not ({int, float, bool, list, tuple} & set(options))


def apply_overrides(sections: dict[str, dict], overrides: list[str],
                    default_section: str = "model", types: dict[str, type] | None = None
                    ) -> dict[str, dict]:
    """Apply ``key=value`` strings to nested dicts; ``train.x`` / ``data.x`` pick a section.

    A value for a text field (found through ``types``, section -> dataclass) is kept as typed,
    so that e.g. ``data.template={text}`` stays a template instead of becoming a YAML mapping.
    """
    for item in overrides:
        if "=" not in item:
            raise GenzooError(f"--set {item!r}: expected key=value")
        key, text = item.split("=", 1)
        section, _, name = key.rpartition(".")
        section = section or default_section
        if section not in sections:
            raise GenzooError(f"--set {item!r}: unknown section {section!r} "
                              f"(valid: {', '.join(sections)})")
        name = name.strip()
        keep = types and section in types and _is_text(types[section], name) \
            and text.strip() not in ("null", "None", "~")
        sections[section][name] = text if keep else parse_value(text)
    return sections


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GenzooError(f"{path}: no such config file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise GenzooError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GenzooError(f"{path}: a config file must be a mapping of settings")
    return data


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
