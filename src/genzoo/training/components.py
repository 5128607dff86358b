"""Families built on trained runs, and data derived from a run.

A family's config field of type :class:`~genzoo.config.RunRef` names a trained run folder.
:func:`pin` records it (path, family, step, checkpoint file and its SHA-256) when a run is
resolved; :func:`build_model` loads every pinned component's sampling weights (EMA where kept),
frozen and in eval mode, and hands them to the family's constructor. The family never imports
the training package.

Derived data: a family may declare ``derives_data_from = "FIELD"``: its training data is then
the ``--data`` items passed once through that component's :meth:`derive` (VQ code indices, VAE
latents, a world model's z sequences). The result is cached under ``$GENZOO_CACHE/derived`` by
the content hash of (data, component checkpoint), so the next stage, or a resume, reads it back.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from genzoo import config as C
from genzoo.data import passes
from genzoo.data.cache import cache_dir
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family
from genzoo.training.description import Component, RunSpec, file_sha256


def pin(ref: str, owner: str = "this run") -> Component:
    """The component named by run folder ``ref``, pinned to its latest checkpoint."""
    from genzoo.training.run import RunDir
    path = Path(ref)
    if not (path / "config.yaml").is_file():
        raise GenzooError(f"{ref}: component of {owner} is not a genzoo run folder (no config.yaml)")
    run = RunDir.open(path)
    latest = run.latest_checkpoint()
    if latest is None:
        raise GenzooError(f"{ref}: component of {owner} has no checkpoint yet (train it first)")
    desc = run.description
    step = int(latest.stem.split("_")[1])
    return Component(str(path), str(desc.get("family")), step, latest.name, file_sha256(latest))


def pin_all(spec: RunSpec) -> RunSpec:
    """Record every run reference of ``spec.model`` (before anything is written)."""
    spec.components = {}
    for name in C.run_refs(type(spec.model)):
        ref = getattr(spec.model, name)
        if ref is not None:
            comp = pin(ref, owner=f"{spec.family} ({name})")
            if spec.train.copy_components:
                from genzoo.training.run import RunDir
                comp.description = RunDir.open(ref).description
            spec.components[name] = comp
    return spec


def check(comp: Component, owner: str) -> None:
    """One-line error naming both folders when a component is gone or has changed."""
    p = comp.checkpoint_path
    if not p.is_file():
        raise GenzooError(f"{owner}: its component {comp.path} is missing (no {p.name}); "
                          f"restore that run folder, or retrain with train.copy_components=true")
    if file_sha256(p) != comp.sha256:
        raise GenzooError(f"{owner}: its component {comp.path} has changed since it was used "
                          f"({p.name} has another SHA-256); restore it or train again")


def load_component(comp: Component, owner: str, device="cpu") -> Family:
    """The component's sampling weights, frozen, in eval mode."""
    if comp.description is not None:          # copied in: the owner's checkpoint has the weights
        return build_model(RunSpec.from_dict(comp.description, where=f"{owner}: component"))
    check(comp, owner)
    from genzoo.training.run import load_model
    model, _ = load_model(comp.path, device, checkpoint=comp.checkpoint_path)
    return model.requires_grad_(False).eval()


def build_model(spec: RunSpec, owner: str = "this run", device="cpu") -> Family:
    """The family ``spec`` describes, with fresh weights and its components loaded."""
    if spec.data_info is None:
        raise GenzooError(f"{owner}: the description has no data_info (the data was never read)")
    components = {k: load_component(c, owner, device) for k, c in spec.components.items()}
    return construct(spec, components)


def construct(spec: RunSpec, components: dict[str, Family]) -> Family:
    """The family's constructor, handed its loaded components (families without any take
    only their config and data info)."""
    extra = {"components": components} if components else {}
    return spec.entry.cls(spec.model, spec.data_info, **extra)


# -- data derived from a run -----------------------------------------------------------------
DERIVED = "derived:"


def derived_data(ref: str, progress: bool = True, log=print) -> TensorDataset:
    """``--data derived:RUN_DIR``: the data that run was trained on, read as it read it, passed
    through its model's derive() (e.g. a VAE's latents as points for a flow)."""
    from genzoo import data as D
    from genzoo.training.run import RunDir
    owner = f"--data {DERIVED}{ref}"
    comp = pin(ref, owner=owner)
    model = load_component(comp, owner)
    source = RunDir.open(ref).spec
    return derive(D.load(source.data_spec, source.data), model, comp, progress=progress, log=log)


def derive(ds, component: Family, comp: Component, batch_size: int = 256,
           progress: bool = True, log=print) -> TensorDataset:
    """``ds`` passed through ``component.derive``, cached by the content hash of both (every
    field of the items, since derive() sees them all). Fields it does not return are carried
    over from ``ds`` unchanged (a caption beside the latents of its image). ``ds`` may be
    streamed (read a batch at a time); what derive() returns is held in memory."""
    if type(component).derive is Family.derive:
        raise GenzooError(f"{comp.path}: a {comp.family} run derives no data (its family has no "
                          f"derive()), so it cannot be this stage's component")
    data_key = hashlib.sha256("".join(f"{k}:{h}" for k, h in sorted(passes.fields_hash(ds).items()))
                              .encode()).hexdigest()
    key = data_key[:20] + "-" + comp.sha256[:20]
    path = cache_dir() / "derived" / f"{key}.safetensors"
    if path.is_file():
        try:
            tensors = load_file(str(path))
            return _dataset(tensors, ds, component, comp)
        except Exception:                          # a damaged cache entry is made again
            path.unlink(missing_ok=True)
    device = component.device
    parts: dict[str, list[torch.Tensor]] = {}
    # about 2^24 values a batch: 256 images, but a few episodes of a world model's rollouts
    batch_size = max(1, min(batch_size, (1 << 24) // max(1, math.prod(ds.shape))))
    with torch.no_grad():
        for batch in tqdm(passes.batches(ds, batch_size), total=-(-len(ds) // batch_size),
                          disable=not progress, desc=f"encoding through {comp.path}",
                          unit="batch", dynamic_ncols=True):
            batch = {k: v.to(device) for k, v in batch.items()}
            for k, v in component.derive(batch).items():
                parts.setdefault(k, []).append(v.detach().cpu())
    tensors = {k: torch.cat(v) for k, v in parts.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt_tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")     # writers may race
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(ckpt_tmp))
    ckpt_tmp.replace(path)
    log(f"data: {len(ds)} items encoded through {comp.path} (cached as {path.name})")
    return _dataset(tensors, ds, component, comp)


def _dataset(tensors: dict, ds, component: Family, comp: Component) -> TensorDataset:
    if "x" not in tensors:
        raise GenzooError(f"{comp.path}: its derive() must return a field 'x'")
    made = {k: v for k, v in tensors.items() if k not in ("x", "y")}
    carried = passes.gather(ds, [k for k in ds.items if k not in made])
    items = {**carried, **made}
    modality = {k: m for k, m in ds.meta.get("field_modality", {}).items() if k not in made}
    meta = {"derived_from": comp.path, "source_info": DataInfo.of(ds).to_dict(),
            "field_modality": modality, **component.derived_meta()}
    return TensorDataset(x=tensors["x"], modality=component.derived_modality,
                         source=ds.source_spec, y=passes.labels(ds), class_names=ds.class_names,
                         meta=meta, items={k: v.to(tensors["x"].device) for k, v in items.items()})
