"""Pipelines: a chain of runs, each standing on the ones before it.

A pipeline file is YAML: an optional ``out`` folder and a list of ``stages``. Each stage is an
ordinary run (``name``, ``family``, ``data``, and optionally ``preset``, ``steps`` or
``epochs``, ``model:``/``train:``/``data_options:`` sections and ``set:`` overrides), trained
into ``OUT/NAME``. A string ``@NAME`` anywhere in a stage's settings stands for the run folder
of the earlier stage NAME, so a VQ-VAE's prior says ``model: {first_stage: "@vqvae"}``.

The same command resumes: a stage recorded as finished in ``OUT/pipeline.json`` is kept, the
one that was interrupted continues from its last checkpoint, the rest run afresh. ``smoke``
runs every stage at its family's ``tiny`` preset for a few steps, to check the wiring of a
chain before spending hours on it, on the file's ``smoke_data`` spec if it names one (a few
short rollouts where the real run records hundreds) unless ``data`` is given.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from genzoo import config as C
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.training import launch
from genzoo.training.description import loop_config
from genzoo.training.run import RunDir

STAGE_KEYS = {"name", "family", "data", "preset", "steps", "epochs", "model", "train",
              "data_options", "set"}
SHIPPED = Path(__file__).resolve().parent.parent / "pipelines"
# (workers: an evolution stage scores in-process; spawning a pool costs more than the smoke)
SMOKE = {"steps": 3, "eval_every": 0, "sample_every": 0, "log_every": 1, "sample_n": 4,
         "workers": 0}


@dataclass
class Stage:
    name: str
    family: str
    data: str
    preset: str | None = None
    steps: int | None = None
    epochs: float | None = None
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data_options: dict = field(default_factory=dict)
    set: list = field(default_factory=list)


def find(name: str) -> Path:
    """A pipeline file: a path, or the name of one shipped with genzoo (``vq-vae``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (SHIPPED / name, SHIPPED / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = sorted(str(p.relative_to(SHIPPED).with_suffix("")) for p in SHIPPED.rglob("*.yaml"))
    raise GenzooError(f"{name}: no such pipeline file (shipped: {', '.join(shipped) or 'none'})")


def read(path: Path) -> tuple[list[Stage], str | None]:
    """The stages of a pipeline file, checked: names unique, references to earlier stages."""
    doc = C.read_yaml(path)
    unknown = set(doc) - {"out", "stages", "smoke_data"}
    if unknown:
        raise GenzooError(f"{path}: unknown key {sorted(unknown)[0]!r} (out, stages, smoke_data)")
    raw = doc.get("stages")
    if not isinstance(raw, list) or not raw:
        raise GenzooError(f"{path}: needs a non-empty list of stages")
    stages: list[Stage] = []
    for i, s in enumerate(raw):
        where = f"{path}: stage {i + 1}"
        if not isinstance(s, dict):
            raise GenzooError(f"{where}: must be a mapping")
        bad = set(s) - STAGE_KEYS
        if bad:
            raise GenzooError(f"{where}: unknown key {sorted(bad)[0]!r} ({', '.join(sorted(STAGE_KEYS))})")
        for key in ("name", "family", "data"):
            if not isinstance(s.get(key), str) or not s[key]:
                raise GenzooError(f"{where}: needs {key}: TEXT")
        stage = C.from_dict(Stage, s, where=where)
        if stage.name in {t.name for t in stages} or "/" in stage.name:
            raise GenzooError(f"{where}: name {stage.name!r} is used twice or holds a '/'")
        for ref in _refs(s):
            if ref not in {t.name for t in stages}:
                raise GenzooError(f"{where}: @{ref} names no earlier stage")
        stages.append(stage)
    if not isinstance(doc.get("smoke_data", ""), str):
        raise GenzooError(f"{path}: smoke_data must be a data spec")
    return stages, doc.get("out")


def smoke_data(path: Path) -> str | None:
    """The data spec a pipeline file names for its smoke runs, if any (a few short rollouts
    where the real run records hundreds)."""
    return C.read_yaml(path).get("smoke_data")


def _refs(value) -> list[str]:
    if isinstance(value, str) and value.startswith("@"):
        return [value[1:]]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _bind(value, folders: dict[str, Path]):
    """``value`` with every ``@NAME`` replaced by that stage's run folder."""
    if isinstance(value, str) and value.startswith("@"):
        return str(folders[value[1:]])
    if isinstance(value, dict):
        return {k: _bind(v, folders) for k, v in value.items()}
    if isinstance(value, list):
        return [_bind(v, folders) for v in value]
    return value


def _resolve(stage: Stage, folders: dict[str, Path], smoke: bool, data: str | None):
    s = stage
    model, train = _bind(s.model, folders), {**_bind(s.train, folders)}
    overrides = [_bind(o, folders) for o in s.set]
    preset, steps, epochs = s.preset, s.steps, s.epochs
    if smoke:
        preset, steps, epochs = "tiny", SMOKE["steps"], None
        fields = {f.name for f in dataclasses.fields(loop_config(registry.get(stage.family)))}
        train.update({k: v for k, v in SMOKE.items() if k in fields})
    return launch.resolve(stage.family, data=data or s.data, preset=preset, overrides=overrides,
                          train={"steps": steps, "epochs": epochs},
                          config={"model": model, "train": train,
                                  "data": _bind(s.data_options, folders)})


def run(path: Path, out: str | Path | None = None, *, smoke: bool = False,
        data: str | None = None, progress: bool = True, log=print, writer=None) -> Path:
    """Train (or resume) every stage of the pipeline in ``path``; returns its folder."""
    stages, default_out = read(path)
    if smoke and data is None:
        data = smoke_data(path)
    if out is None and smoke:
        import tempfile
        out = tempfile.mkdtemp(prefix=f"genzoo-smoke-{path.stem}-")
    root = Path(out or default_out or Path("runs") / path.stem)
    folders = {s.name: root / s.name for s in stages}
    # every stage is resolved before anything is trained, so a typo fails in the first second
    for s in stages:
        if not (folders[s.name] / "config.yaml").is_file():
            _resolve(s, folders, smoke, data)
    state_file = root / "pipeline.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"finished": []}
    for i, s in enumerate(stages):
        folder = folders[s.name]
        tag = f"stage {i + 1}/{len(stages)} {s.name} ({s.family})"
        if s.name in state["finished"] and (folder / "config.yaml").is_file():
            log(f"pipeline: {tag}: finished earlier, kept")
            continue
        if (folder / "config.yaml").is_file():
            log(f"pipeline: {tag}: resuming {folder}")
            spec = RunDir.open(folder).spec
            launch.train(spec, folder, resume=True, progress=progress, log=log, writer=writer)
        else:
            log(f"pipeline: {tag}: training into {folder}")
            launch.train(_resolve(s, folders, smoke, data), folder, progress=progress, log=log,
                         writer=writer)
        state["finished"].append(s.name)
        tmp = state_file.with_name(".pipeline.json.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(state_file)
    log(f"pipeline: all {len(stages)} stages done in {root}")
    return root
