"""A sampling request's options, checked against what the family declares.

A family lists the keywords of its ``sample()`` as :class:`SampleOption` values (name, type,
default, choices, kind). A request's values are converted to the declared type and checked
against the declared choices; an option of kind "label" takes a class name (or index) of the
run's data and reaches ``sample()`` as the class index. Anything else is refused with one line
naming the option and what it accepts. The page builds its form from :func:`describe`.
"""
from __future__ import annotations

import math
from typing import Any

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, SampleOption

MAX_N = 256          # samples per request
MAX_SEED = 2 ** 63 - 1
# what the page is told when a family lacks a capability
CANNOT = {"sample": "a discriminative model does not sample",
          "interpolate": "has no decoder from codes, so no interpolation",
          "plane": "has no decoder from codes, so no latent plane",
          "upload": "cannot encode uploaded images"}
_WHAT = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def class_names(info: DataInfo) -> list[str]:
    return list(info.class_names or [str(i) for i in range(info.num_classes)])


def describe(option: SampleOption, info: DataInfo) -> dict:
    """One option as JSON for the page's form (a label's choices are the run's classes)."""
    choices = class_names(info) if option.kind == "label" else option.choices
    default = option.default
    if isinstance(default, float) and not math.isfinite(default):
        default = None
    return {"name": option.name, "type": getattr(option.type, "__name__", str(option.type)),
            "default": default, "help": option.help, "kind": option.kind,
            "choices": list(choices) if choices is not None else None}


def convert(tp: type, value: Any) -> Any:
    """``value`` (from JSON or a form field) as ``tp``; ValueError when it is not one."""
    if isinstance(value, str):
        value = value.strip()
    if tp is bool:
        if isinstance(value, bool):
            return value
        words = {"true": True, "1": True, "yes": True, "on": True,
                 "false": False, "0": False, "no": False, "off": False}
        if isinstance(value, str) and value.lower() in words:
            return words[value.lower()]
    elif tp is int and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value)
    elif tp is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
        v = float(value)
        if math.isfinite(v):
            return v
    elif tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def label_index(value: Any, info: DataInfo, family: str) -> int:
    names = class_names(info)
    if str(value) in names:
        return names.index(str(value))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    raise GenzooError(f"{family}: label {value!r} is not a class of this run "
                      f"({', '.join(names) or 'it has none'})")


def validate(family: str, declared: tuple[SampleOption, ...], values: Any,
             info: DataInfo) -> dict:
    """The keywords for ``sample()`` from a request's ``options``; empty values are left to
    the family's defaults."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise GenzooError("options: must be an object of option names and values")
    by_name = {o.name: o for o in declared}
    out = {}
    for name, value in values.items():
        if name not in by_name:
            known = ", ".join(by_name) or "it takes none"
            raise GenzooError(f"{family}: no sampling option {name!r} (its options: {known})")
        if value is None or value == "":
            continue
        o = by_name[name]
        if o.kind == "label":
            out[name] = label_index(value, info, family)
            continue
        try:
            v = convert(o.type, value)
        except (ValueError, TypeError):
            raise GenzooError(f"{family}: option {name} = {value!r} is not "
                              f"{_WHAT.get(o.type, o.type)}") from None
        if o.choices is not None and v not in o.choices:
            raise GenzooError(f"{family}: option {name} = {value!r} is not one of "
                              f"{', '.join(map(str, o.choices))}")
        out[name] = v
    return out


def bounded_int(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    """An integer field of a request body, within [lo, hi]."""
    value = body.get(name, default)
    try:
        v = convert(int, value)
    except (ValueError, TypeError):
        raise GenzooError(f"{name} = {value!r} is not an integer") from None
    if not lo <= v <= hi:
        raise GenzooError(f"{name} = {v} must be in {lo}..{hi}")
    return v


def request_options(description: dict, values: Any) -> dict:
    """The keywords for the run's ``sample()`` from a request's ``options``."""
    from genzoo import registry
    family = description["family"]
    return validate(family, registry.get(family).cls.sample_options, values,
                    DataInfo.from_dict(description["data_info"]))


def family_info(description: dict) -> dict:
    """The declared sampling options of a run's family and what the page may offer it.

    Capabilities are read from the family class: ``decode`` (with ``prior`` or ``encode`` for
    codes of a seed) allows interpolation and the latent plane, ``encode`` with image data
    allows uploads; a discriminative model does not sample."""
    from genzoo import registry
    entry = registry.get(description["family"])
    cls = entry.cls
    info = DataInfo.from_dict(description["data_info"])
    has = {m: callable(getattr(cls, m, None)) for m in ("decode", "encode", "prior")}
    latent = has["decode"] and (has["prior"] or has["encode"])
    return {"options": [describe(o, info) for o in cls.sample_options],
            "capabilities": {"sample": entry.taxonomy != "discriminative",
                             "interpolate": latent, "plane": latent,
                             "upload": has["encode"] and has["decode"]
                             and info.modality == "image" and len(info.shape) == 3}}
