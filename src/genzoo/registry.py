"""Family name -> its class, config, place in the taxonomy and modality.

Family modules register themselves with ``@register``; :func:`families` imports every module
under ``genzoo.models`` once, so adding a family is adding a file.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from genzoo.errors import GenzooError

# The taxonomy of generative models (Goodfellow 2016, as drawn in Foster's book).
TAXONOMY = {
    "explicit-tractable": "explicit density, tractable (exact likelihood)",
    "explicit-approximate": "explicit density, approximate (bound or unnormalised)",
    "implicit": "implicit density (sampling only)",
    "discriminative": "not generative: a feature extractor for the metrics",
}


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type                    # the Family subclass
    config: type                 # its config dataclass
    taxonomy: str                # a key of TAXONOMY
    modality: str                # image | points | text | music | ...
    summary: str                 # one line for `genzoo list`
    # what the family shows once trained: "module:function" (imported only when needed, so
    # that building a model never imports plotting code) or a function
    # (model, data, out_dir, generator) -> [paths]
    showcase: str | Callable | None = None

    def showcase_fn(self) -> Callable | None:
        if isinstance(self.showcase, str):
            module, _, name = self.showcase.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.showcase


_REGISTRY: dict[str, Entry] = {}
_discovered = False


def register(name: str, *, config: type, taxonomy: str, modality: str, summary: str,
             showcase: str | Callable | None = None):
    """Class decorator: make a Family available as ``genzoo train NAME``."""
    if taxonomy not in TAXONOMY:
        raise ValueError(f"unknown taxonomy {taxonomy!r}")

    def deco(cls):
        _REGISTRY[name] = Entry(name, cls, config, taxonomy, modality, summary, showcase)
        cls.family_name = name
        return cls
    return deco


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import genzoo.models as pkg
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
    _discovered = True


def families() -> dict[str, Entry]:
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Entry:
    entries = families()
    if name not in entries:
        raise GenzooError(f"unknown family {name!r} (known: {', '.join(entries)})")
    return entries[name]
