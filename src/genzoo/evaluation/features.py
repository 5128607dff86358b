"""Feature spaces for the metrics: name -> extractor.

A metric between sets of images is only as meaningful as the space it is computed in, and a
number means nothing without its space, so every extractor has a ``name`` that reports print.

- ``inception`` / ``inception:PATH``: the FID InceptionV3 (pool, 2048-d) with pytorch-fid's
  weights; the only space in which a Fréchet distance is called FID. Without PATH the weights
  come from $GENZOO_INCEPTION_WEIGHTS or the cache, else are downloaded and checked.
- ``classifier:RUN_DIR``: the penultimate layer of a classifier genzoo trained
  (``genzoo train classifier --data SPEC``); a RUN_DIR alone is understood the same way.
- ``clip:RUN_DIR``: the image embedding of a CLIP genzoo trained (``genzoo train clip``), the
  space of a "CLIP FD" (Kynkaanniemi et al. 2023) and of CLIP scores.
- ``pixels``: the images themselves, average-pooled to at most 1024 numbers; the fallback.
- ``auto``: inception when its weights are found, else pixels (and it says so).

A user adds a space with ``@register_extractor("name")`` on ``factory(arg, shape) ->
Extractor``; ``--features name:arg`` reaches it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from genzoo.data.passes import batches
from genzoo.errors import GenzooError


@dataclass
class Extractor:
    name: str                   # what reports print, e.g. "classifier runs/cnn (penultimate, 128-d)"
    fn: Callable[[torch.Tensor], torch.Tensor]   # images float [0,1] (N,C,H,W) -> (N, D)
    fingerprint: str            # identifies the space exactly (cache key)
    is_fid: bool = False        # True only for the standard FID InceptionV3
    batch_size: int = 250
    note: str = ""              # e.g. why a fallback was taken

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = [self.fn(x[i:i + self.batch_size]).float().flatten(1).cpu()
               for i in range(0, len(x), self.batch_size)]
        return torch.cat(out)

    def over(self, ds) -> torch.Tensor:
        """Features of every item of dataset ``ds``, read a batch at a time (it may be streamed:
        only a few batches of its items are ever in memory)."""
        return torch.cat([self(b["x"].float()) for b in batches(ds, self.batch_size)])

    @property
    def distance_name(self) -> str:
        return "FID" if self.is_fid else "FD"


_FACTORIES: dict[str, Callable[[str | None, tuple], Extractor]] = {}


def register_extractor(name: str):
    """Decorator: ``factory(arg: str | None, shape: (C, H, W)) -> Extractor`` under ``name``."""
    def deco(factory):
        _FACTORIES[name] = factory
        return factory
    return deco


def extractor_names() -> list[str]:
    return sorted(_FACTORIES)


def get_extractor(spec: str | None, shape: tuple[int, ...], device="cpu") -> Extractor:
    """The extractor ``spec`` names, for images of ``shape`` (C, H, W)."""
    spec = spec or "auto"
    name, _, arg = spec.partition(":")
    if name not in _FACTORIES:
        path = Path(spec).expanduser()
        if (path / "config.yaml").is_file():
            name, arg = "classifier", spec
        elif path.suffix in (".pth", ".pt", ".safetensors"):
            name, arg = "inception", spec
        else:
            raise GenzooError(f"--features {spec}: unknown feature space "
                              f"(known: {', '.join(extractor_names())}, or a classifier run folder)")
    ex = _FACTORIES[name](arg or None, tuple(shape))
    return _on_device(ex, device)


def _on_device(ex: Extractor, device) -> Extractor:
    module = getattr(ex.fn, "module", None)
    if isinstance(module, torch.nn.Module):
        module.to(device)
    inner = ex.fn
    ex.fn = lambda x: inner(x.to(device))
    return ex


def fit_shape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Images to the channels and side an extractor was built for (bilinear, grey <-> RGB)."""
    c, h, w = shape
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True) if c == 1 else x[:, :1].expand(-1, c, -1, -1)
    if tuple(x.shape[2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x


@register_extractor("pixels")
def pixels(arg, shape) -> Extractor:
    c, h, w = shape
    side = h
    while c * side * side > 1024 and side > 1:
        side = math.ceil(side / 2)
    if side == h:
        return Extractor(f"pixels ({c}x{h}x{w})", lambda x: x.flatten(1), f"pixels:{shape}")
    return Extractor(f"pixels (average-pooled to {c}x{side}x{side})",
                     lambda x: F.adaptive_avg_pool2d(x, side).flatten(1), f"pixels:{shape}:{side}")


class _Bound:
    """A module's method as a plain function, keeping the module reachable for ``.to()``."""

    def __init__(self, module, method, prepare):
        self.module, self.method, self.prepare = module, method, prepare

    def __call__(self, x):
        return getattr(self.module, self.method)(self.prepare(x))


def _run_space(arg, shape, family: str, method: str, what) -> Extractor:
    """The feature space of a trained run of ``family``: its ``method`` on images brought to
    the run's own shape; ``what(model)`` describes the features for reports."""
    from genzoo.evaluation.cache import tensors_hash
    from genzoo.training.run import load_model
    if not arg:
        raise GenzooError(f"--features {family}:RUN_DIR needs the run folder of a {family} "
                          f"(train one with `genzoo train {family} --data SPEC`)")
    model, _ = load_model(arg, "cpu")
    if model.family_name != family:
        raise GenzooError(f"{arg}: a {model.family_name} run, not a {family}")
    own = tuple(model.data.shape)
    fn = _Bound(model, method, lambda x: fit_shape(x, own))
    note = "" if own == tuple(shape) else f"images {tuple(shape)} adapted to the {family}'s {own}"
    return Extractor(f"{family} {arg} ({what(model)})", fn,
                     f"{family}:{tensors_hash(model.state_dict())}", note=note)


@register_extractor("classifier")
def classifier(arg, shape) -> Extractor:
    return _run_space(arg, shape, "classifier", "features",
                      lambda m: f"{m.config.arch}, penultimate {m.feature_dim}-d")


@register_extractor("clip")
def clip(arg, shape) -> Extractor:
    return _run_space(arg, shape, "clip", "image_features",
                      lambda m: f"image embedding, {m.config.embed_dim}-d")


@register_extractor("inception")
def inception(arg, shape) -> Extractor:
    from genzoo.evaluation import inception as I
    from genzoo.evaluation.cache import tensors_hash
    path = Path(arg).expanduser() if arg else I.default_weights_path()
    if path is None:        # named explicitly: download (checked) when online, else say how
        try:
            path = I.fetch_weights()
        except GenzooError as e:
            raise GenzooError(f"--features inception: no weights file, and {e}") from None
    net = I.load_inception(path)
    return Extractor("InceptionV3 pool3 (2048-d, pytorch-fid weights)", _Bound(net, "forward", lambda x: x),
                     f"inception:{tensors_hash(net.state_dict())}", is_fid=True, batch_size=50)


@register_extractor("auto")
def auto(arg, shape) -> Extractor:
    from genzoo.evaluation.inception import WEIGHTS_NAME, default_weights_path
    path = default_weights_path()
    if path is not None and path.is_file():
        return inception(str(path), shape)
    ex = pixels(None, shape)
    ex.note = (f"no InceptionV3 weights ({WEIGHTS_NAME}; set GENZOO_INCEPTION_WEIGHTS or pass "
               "--features inception:PATH), so distances are in pixel space, not FID")
    return ex
