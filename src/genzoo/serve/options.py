"""A sampling request's options, checked against what the family declares.

A family lists the keywords of its ``sample()`` as :class:`SampleOption` values (name, type,
default, choices, kind), and each parses a value as ``genzoo sample`` does: converted to the
declared type and checked against the declared choices; an option of kind "label" takes a class
name (or index) of the run's data and reaches ``sample()`` as the class index. Anything else is
refused with one line naming the option and what it accepts. The page builds its form from
:func:`describe`.
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


def validate(family: str, declared: tuple[SampleOption, ...], values: Any,
             info: DataInfo) -> dict:
    """The keywords for ``sample()`` from a request's ``options`` (JSON values or form text),
    each parsed as the family declares it (:meth:`SampleOption.parse`); empty values are left
    to the family's defaults."""
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
        if isinstance(value, (dict, list)):
            raise GenzooError(f"{family}: option {name}: one value, not {type(value).__name__}")
        try:
            v = by_name[name].parse(str(value).strip(), info)
        except GenzooError as e:
            raise GenzooError(f"{family}: {e}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise GenzooError(f"{family}: option {name} = {value!r}: not a finite number")
        out[name] = v
    return out


def bounded_int(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    """An integer field of a request body (a number or its text), within [lo, hi]."""
    value = body.get(name, default)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(value)
        v = int(value)
    except ValueError:
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
