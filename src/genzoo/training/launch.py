"""From what a user asked for to a trained run folder.

:func:`resolve` merges, in order of increasing precedence, the recipe's defaults, a named
preset, a YAML config file, command-line flags and ``--set`` overrides into one plain
description; :func:`train` checks everything (data, configs, model) before it writes anything,
so bad input never leaves a half-made run folder behind.
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.training.run import RunDir, build_model
from genzoo.training.trainer import TrainConfig, Trainer


def resolve(family: str, *, data: str | None = None, config_file: str | None = None,
            preset: str | None = None, overrides: list[str] = (), train: dict | None = None,
            data_options: dict | None = None) -> dict:
    """The plain description of a run: ``{family, model, train, data}`` sections, validated."""
    entry = registry.get(family)
    sections: dict[str, dict] = {"model": {}, "train": dict(entry.cls.train_defaults), "data": {}}
    if preset:
        presets = entry.cls.presets
        if preset not in presets:
            raise GenzooError(f"{family}: unknown preset {preset!r} "
                              f"(presets: {', '.join(presets) or 'none'})")
        sections["model"].update(presets[preset])
    if config_file:
        loaded = C.read_yaml(config_file)
        for key, value in loaded.items():
            if key in sections and isinstance(value, dict):
                sections[key].update(value)
            elif key == "family" and value != family:
                raise GenzooError(f"{config_file}: is for family {value!r}, not {family!r}")
            elif key not in ("family", "data_info"):
                raise GenzooError(f"{config_file}: unknown section {key!r} (model, train, data)")
    sections["train"].update({k: v for k, v in (train or {}).items() if v is not None})
    sections["data"].update({k: v for k, v in (data_options or {}).items() if v is not None})
    if data is not None:
        sections["data"]["spec"] = data
    C.apply_overrides(sections, list(overrides),
                      types={"model": entry.config, "train": TrainConfig, "data": D.DataOptions})

    model_cfg = C.from_dict(entry.config, sections["model"], where=f"{family} config")
    train_cfg = C.from_dict(TrainConfig, sections["train"], where="train config")
    if "steps" in (train or {}) and train["steps"] is not None:
        train_cfg.epochs = None           # an explicit --steps wins over epochs from a file
    data_section = dict(sections["data"])
    spec = data_section.pop("spec", None)
    if not spec:
        raise GenzooError(f"{family}: no data given (use --data SPEC, e.g. --data digits)")
    recipe = entry.cls.data_defaults(model_cfg)
    data_cfg = C.from_dict(D.DataOptions, {**recipe, **data_section}, where="data options")
    return {"family": family, "model": C.to_dict(model_cfg), "train": C.to_dict(train_cfg),
            "data": {"spec": spec, **C.to_dict(data_cfg)}}


def load_data(description: dict, log=print):
    """(train, held_out) datasets of a run description, with the recipe's notes logged."""
    opts = dict(description["data"])
    spec = opts.pop("spec")
    options = C.from_dict(D.DataOptions, opts, where="data options")
    ds = D.load(spec, options)
    for note in ds.meta.get("notes", []):
        log(f"data: {note}")
    return ds.split(options.holdout)


def train(description: dict, out: str | Path | None = None, *, resume: bool = False,
          progress: bool = True, log=print) -> RunDir:
    """Train the run ``description`` says into ``out`` (a new folder, or an old one to resume)."""
    family = description["family"]
    train_ds, held = load_data(description, log)
    description["data_info"] = DataInfo.of(train_ds).to_dict()
    train_cfg = C.from_dict(TrainConfig, description["train"], where="train config")
    torch.manual_seed(train_cfg.seed)         # the initial weights follow the seed too
    model = build_model(description)
    train_cfg.progress = progress

    if resume:
        run = RunDir.open(out)
        run.write_description(description)
    else:
        out = Path(out) if out else Path("runs") / f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = RunDir.create(out, description)
    log(f"{family}: {model.num_parameters():,} parameters; {len(train_ds)} training items"
        + (f", {len(held)} held out" if held is not None else "") + f"; run folder {run.path}")
    trainer = Trainer(model, train_ds, train_cfg, run=run, held_out=held,
                      description={k: description[k] for k in ("family", "model", "train", "data")})
    if resume:
        log(f"resuming from step {trainer.step}")
    trainer.fit()
    showcase(trainer, held if held is not None else train_ds, log)
    return run


def showcase(trainer: Trainer, data, log=print) -> None:
    """What the family shows once trained, from its sampling (EMA) weights. ``data`` is the
    held-out set; a showcase that also wants the training set (to find the nearest training
    image of a sample) names a ``train`` parameter."""
    entry = registry.get(trainer.model.family_name)
    if entry.showcase is None:
        return
    fn = entry.showcase_fn()
    extra = {"train": trainer.data} if "train" in inspect.signature(fn).parameters else {}
    g = torch.Generator(trainer.device).manual_seed(trainer.cfg.seed)
    with torch.random.fork_rng(devices=[]), trainer.sampling_weights():
        files = fn(trainer.model, data, trainer.run.path / "showcase", generator=g, **extra)
    log(f"pictures: {trainer.run.path / 'showcase'} ({', '.join(p.name for p in files)})")



def resume_description(out: str | Path | None, steps: int | None = None) -> dict:
    """The description of the run in ``out``, optionally extended to ``steps``."""
    if out is None:
        raise GenzooError("--resume needs --out RUN_DIR (the run folder to continue)")
    description = RunDir.open(out).description
    if steps is not None:
        description["train"].update(steps=steps, epochs=None)
    return description
