"""From what a user asked for to a trained run folder.

:func:`resolve` merges, in order of increasing precedence, the recipe's defaults, a named
preset, a YAML config file, command-line flags and ``--set`` overrides into one
:class:`RunSpec`, validated once; :func:`train` checks everything else (components, data, the
model) before it writes anything, so bad input never leaves a half-made run folder behind.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.training import distributed
from genzoo.training.components import (DERIVED, construct, derive, derived_data,
                                         load_component, pin_all)
from genzoo.training.description import RunSpec, loop_config, reconcile, trainer_class
from genzoo.training.run import RunDir
from genzoo.training.trainer import TrainConfig, Trainer, resolve_device


def resolve(family: str, *, data: str | None = None, config_file: str | None = None,
            preset: str | None = None, overrides: list[str] = (), train: dict | None = None,
            data_options: dict | None = None, config: dict | None = None) -> RunSpec:
    """The run description (a validated :class:`RunSpec`, data not read yet) of what was asked.
    ``config`` holds sections like a config file's (a pipeline stage's), above the file."""
    entry = registry.get(family)
    sections: dict[str, dict] = {"model": {}, "train": dict(entry.cls.train_defaults), "data": {}}
    explicit: dict[str, dict] = {"model": {}, "train": {}, "data": {}}
    if preset:
        presets = entry.cls.presets
        if preset not in presets:
            raise GenzooError(f"{family}: unknown preset {preset!r} "
                              f"(presets: {', '.join(presets) or 'none'})")
        for key, value in presets[preset].items():     # "train.x" / "data.x" reach those
            section, _, name = key.rpartition(".")
            sections[section or "model"][name] = value
    if config_file:
        if Path(config_file).is_dir():
            raise GenzooError(f"{config_file}: is a folder, not a config file")
        loaded = C.read_yaml(config_file)
        for key, value in loaded.items():
            if key in sections and isinstance(value, dict):
                explicit[key].update(value)
            elif key == "family" and value != family:
                raise GenzooError(f"{config_file}: is for family {value!r}, not {family!r}")
            elif key not in ("family", "data_info", "components"):
                raise GenzooError(f"{config_file}: unknown section {key!r} (model, train, data)")
    for key, value in (config or {}).items():
        explicit[key].update(value)
    explicit["train"].update({k: v for k, v in (train or {}).items() if v is not None})
    explicit["data"].update({k: v for k, v in (data_options or {}).items() if v is not None})
    if data is not None:
        explicit["data"]["spec"] = data
    loop = loop_config(entry)
    C.apply_overrides(explicit, list(overrides),
                      types={"model": entry.config, "train": loop, "data": D.DataOptions})
    for key in sections:
        sections[key].update(explicit[key])
    if loop is not TrainConfig:
        sections["train"] = _generations(sections["train"], family)
    train_cfg = C.from_dict(loop, sections["train"], where="train config")
    if loop is TrainConfig and "steps" in (train or {}) and train["steps"] is not None:
        train_cfg.epochs = None           # an explicit --steps wins over epochs from a file
    data_section = dict(sections["data"])
    spec = data_section.pop("spec", None)
    if not spec:
        raise GenzooError(f"{family}: no data given (use --data SPEC, e.g. --data digits)")
    model = reconcile(entry, sections["model"], data_section, set(explicit["model"]))
    model_cfg = C.from_dict(entry.config, model, where=f"{family} config")
    recipe = entry.cls.data_defaults(model_cfg)
    data_cfg = C.from_dict(D.DataOptions, {**recipe, **data_section}, where="data options")
    check_device(train_cfg.device)
    return RunSpec(family, model_cfg, train_cfg, data_cfg, str(spec))


def _generations(train: dict, family: str) -> dict:
    """A family fitted by evolution counts generations: --steps N means N generations, and
    batches or epochs mean nothing to it."""
    train = {k: v for k, v in train.items() if v is not None}
    for key in ("epochs", "batch_size"):
        if key in train:
            raise GenzooError(f"{family}: trained by an evolution strategy, it has no {key} "
                              f"(--steps N sets the generations)")
    if "steps" in train:
        train["generations"] = train.pop("steps")
    return train


def check_device(name: str) -> None:
    """A device that exists here, before anything is written."""
    try:
        dev = resolve_device(name)
    except (RuntimeError, ValueError):
        raise GenzooError(f"train.device: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenzooError(f"train.device: {name!r} asked for, but this machine has no CUDA GPU")
    if dev.type not in ("cpu", "cuda"):
        raise GenzooError(f"train.device: {name!r} is not supported (auto, cpu, cuda, cuda:N)")


def load_data(spec: RunSpec, components: dict | None = None, progress: bool = True, log=print):
    """(train, held_out) datasets of a run, with the recipe's notes logged. A family trained on
    data derived from a component gets the items adapted as that component's recipe adapted
    them (its image size...) and passed through it (cached); so does any family given
    ``--data derived:RUN_DIR`` (that run's own data, through that run's model)."""
    through = spec.entry.cls.derives_data_from
    if through is not None and through not in spec.components:
        raise GenzooError(f"{spec.family}: set {through}=RUN_DIR (the trained run whose "
                          f"encoding of the data it models)")
    if spec.data_spec.startswith(DERIVED):
        ds = derived_data(spec.data_spec[len(DERIVED):], progress, log)
    else:
        options = spec.data
        if through is not None:   # adapted by the component's recipe, as its run read it
            comp, model = spec.components[through], components[through]
            own = RunSpec.from_dict(comp.description or RunDir.open(comp.path).description,
                                    where=f"{comp.path}/config.yaml").data
            theirs = {k: getattr(own, k) for k in type(model).data_defaults(model.config)}
            for k, v in theirs.items():
                if getattr(options, k) not in (None, v):
                    raise GenzooError(f"{spec.family}: its {through} {comp.path} read the data "
                                      f"with {k}={v}; set data.{k}={v} (or leave it unset)")
            options = dataclasses.replace(options, **theirs)
        ds = D.load(spec.data_spec, options)
    for note in ds.meta.get("notes", []):
        log(f"data: {note}")
    if through is not None:
        ds = derive(ds, components[through], spec.components[through], progress=progress, log=log)
    return ds.split(spec.data.holdout)


def prepare(spec: RunSpec, owner: str = "this run", progress: bool = True, log=print):
    """(model, train, held_out) of a run: components loaded, data read, the model built."""
    spec = pin_all(spec) if not spec.components else spec
    components = {k: load_component(c, owner) for k, c in spec.components.items()}
    train_ds, held = load_data(spec, components, progress, log)
    spec.data_info = DataInfo.of(train_ds)
    torch.manual_seed(spec.train.seed)          # the initial weights follow the seed too
    try:
        model = construct(spec, components)
    except (ValueError, AssertionError, IndexError) as e:
        raise GenzooError(f"{spec.family} cannot be built on {spec.data_spec} "
                          f"{tuple(spec.data_info.shape)}: {e}") from None
    return model, train_ds, held


def train(spec: RunSpec | dict, out: str | Path | None = None, *, resume: bool = False,
          progress: bool = True, log=print, writer=None) -> RunDir:
    """Train the run ``spec`` describes into ``out`` (a new folder, or an old one to resume).
    ``writer(x, info, stem)`` writes the sample grids over training (viz.samples.save_samples).

    Started by torchrun (several ranks), every rank builds the same model and reads the data
    (rank 0 first: it downloads, derives and caches); rank 0 alone makes the run folder,
    holds its lock, logs and writes, and the others follow its checkpoints."""
    if isinstance(spec, dict):
        spec = RunSpec.from_dict(spec)
    distributed.setup(resolve_device(spec.train.device).type)
    main = distributed.is_main()
    if distributed.active() and spec.entry.cls.fit_with != "gradient":
        raise GenzooError(f"{spec.family}: trained by {spec.entry.cls.fit_with}, it runs in one "
                          f"process (train.workers score its population in parallel), not "
                          f"under torchrun")
    if not main:
        log, progress = (lambda *_: None), False
    owner = str(out) if out else spec.family
    with distributed.main_first():     # prepare() loads (and checks) each component once
        model, train_ds, held = prepare(spec, owner, progress, log)
    if distributed.active():            # before any folder is made
        distributed.check_batch(distributed.world(), min(spec.train.batch_size, len(train_ds)),
                                spec.train.accumulate)
    spec.train.progress = progress
    if resume:
        run = RunDir.open(out)
    else:
        out = Path(distributed.from_main(str(out or default_out(spec.family))))
        if main:
            run = RunDir.create(out, spec.to_dict())
        distributed.barrier()
        run = RunDir.open(out) if not main else run
    with run.lock() if main else contextlib.nullcontext():
        ranks = f" on {distributed.world()} processes" if distributed.active() else ""
        log(f"{spec.family}: {model.num_parameters():,} parameters; {len(train_ds)} training items"
            + (f", {len(held)} held out" if held is not None else "") + f"{ranks}; "
            f"run folder {run.path}")
        trainer = trainer_class(spec.entry)(model, train_ds, spec.train, run=run, held_out=held,
                                            description=spec.to_dict(), writer=writer, log=log)
        if getattr(trainer, "precision", None):
            log(f"device {trainer.device}, {trainer.precision}"
                + (" (precision auto)" if spec.train.precision == "auto" else ""))
        if resume:      # the description changes only once the checkpoint has loaded
            if trainer.step > trainer.total:
                raise GenzooError(f"{run.path}: {trainer.step} steps are done already; "
                                  f"--steps {trainer.total} would not extend it")
            if main:
                run.write_description(spec.to_dict())
            log(f"resuming from step {trainer.step}")
        trainer.fit()
        if main:
            showcase(trainer, held if held is not None else train_ds, log)
    return run


def default_out(family: str) -> Path:
    return Path("runs") / f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"


def showcase(trainer: Trainer, data, log=print) -> None:
    """What the family shows once trained, from its sampling (EMA) weights. ``data`` is the
    held-out set; a showcase that also wants the training set (to find the nearest training
    image of a sample) names a ``train`` parameter, one that titles its pictures with the
    step a ``step`` parameter."""
    entry = registry.get(trainer.model.family_name)
    if entry.showcase is None:
        return
    fn = entry.showcase_fn()
    wants = inspect.signature(fn).parameters
    extra = {k: v for k, v in (("train", trainer.data), ("step", trainer.step)) if k in wants}
    g = torch.Generator(trainer.device).manual_seed(trainer.cfg.seed)
    with torch.random.fork_rng(devices=[]), trainer.sampling_weights():
        files = fn(trainer.model, data, trainer.run.path / "showcase", generator=g, **extra)
    log(f"pictures: {trainer.run.path / 'showcase'} ({', '.join(p.name for p in files)})")



# What a resume may change: how long the run goes on, where and how visibly it runs. Anything
# else would make the continued run differ from an uninterrupted one.
RESUMABLE = ("steps", "epochs", "device", "progress", "max_minutes", "workers")


def resume_description(out: str | Path | None, steps: int | None = None,
                       changes: dict | None = None) -> RunSpec:
    """The description of the run in ``out``, with the ``changes`` a resume may make
    (``steps`` extends it); any other change is refused in one line."""
    if out is None:
        raise GenzooError("--resume needs --out RUN_DIR (the run folder to continue)")
    spec = RunDir.open(out).spec
    changes = {k: v for k, v in (changes or {}).items() if v not in (None, [], False)}
    if steps is not None:
        changes["steps"] = steps
    refused = sorted(set(changes) - set(RESUMABLE))
    if refused:
        raise GenzooError(f"{out}: --resume continues the run as it was; {refused[0]} cannot "
                          f"change (a resume may change {', '.join(RESUMABLE)}); start a new run")
    if not isinstance(spec.train, TrainConfig):
        changes = _generations(changes, spec.family)
    elif "steps" in changes:
        spec.train.steps, spec.train.epochs = changes.pop("steps"), None
    for k, v in changes.items():
        if not hasattr(spec.train, k):
            raise GenzooError(f"{out}: {spec.family} has no {k} to change on resume")
        setattr(spec.train, k, v)
    if "device" in changes:
        check_device(spec.train.device)
    try:
        spec.train.validate()
    except ValueError as e:
        raise GenzooError(f"{out}: {e}") from None
    return spec
