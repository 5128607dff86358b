"""The run folder: where a training run leaves everything it makes.

    RUN/config.yaml        the resolved configs (family, model, train, data) and the data info
    RUN/metrics.jsonl      one JSON object per logged step
    RUN/samples/           sample grids from a fixed seed, over training
    RUN/checkpoints/       step_XXXXXXXX.safetensors (+ a readable .json beside each)
    RUN/showcase/          what the family shows once trained (reconstructions, latent plots...)
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import Family
from genzoo.training import checkpoint as ckpt


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, description: dict) -> "RunDir":
        """A new run folder holding ``config.yaml``; refuses to overwrite another run."""
        path = Path(path)
        if (path / "config.yaml").exists():
            raise GenzooError(f"{path}: already holds a run (use --resume, or another --out)")
        check_writable(path)
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.write_description(description)
        return run

    @contextlib.contextmanager
    def lock(self):
        """Hold ``RUN/.lock`` (this process's id) while training in the folder: a second
        process is refused; a lock left by a process that no longer runs is taken over."""
        path = self.path / ".lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                try:
                    pid = int(path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise GenzooError(f"{self.path}: another genzoo process (pid {pid}) is "
                                      f"training in this run folder") from None
                path.unlink(missing_ok=True)            # stale: its process is gone
        else:
            raise GenzooError(f"{self.path}: could not take the run folder's lock")
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        try:
            yield self
        finally:
            path.unlink(missing_ok=True)

    def write_description(self, description: dict) -> None:
        tmp = self.path / ".config.yaml.tmp"
        C.write_yaml(tmp, description)
        tmp.replace(self.path / "config.yaml")

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise GenzooError(f"{path}: not a genzoo run folder (no config.yaml)")
        run = cls(path)
        if not isinstance(run.description.get("family"), str):      # empty, or not ours
            raise GenzooError(f"{path / 'config.yaml'}: not a run description (no family)")
        return run

    @property
    def description(self) -> dict:
        return C.read_yaml(self.path / "config.yaml")

    @property
    def spec(self):
        """The run description, parsed and validated (a RunSpec)."""
        from genzoo.training.description import RunSpec
        return RunSpec.from_dict(self.description, where=str(self.path / "config.yaml"))

    def log(self, record: dict) -> None:
        record = {"time": round(time.time(), 3), **record}
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, step: int) -> None:
        """Forget records logged after ``step`` (a resumed run logs them again)."""
        p = self.path / "metrics.jsonl"
        if p.exists():
            keep = [json.dumps(r) + "\n" for r in self.metrics() if r.get("step", 0) <= step]
            tmp = p.with_name(".metrics.jsonl.tmp")
            tmp.write_text("".join(keep))
            tmp.replace(p)
        for stale in (self.path / "checkpoints").glob(".tmp-*"):   # a write cut off by a kill
            stale.unlink()

    def latest_checkpoint(self) -> Path | None:
        found = ckpt.listing(self.path / "checkpoints")
        return found[-1] if found else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(path: Path) -> None:
    """One line, before anything is written, when ``path`` cannot become a run folder."""
    if path.exists() and not path.is_dir():
        raise GenzooError(f"{path}: exists and is not a folder (choose another --out)")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise GenzooError(f"{path}: {parent} is a file, so no folder can be made below it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GenzooError(f"{path}: {parent} is not writable")
    try:
        probe = Path(tempfile.mkdtemp(prefix=".genzoo-probe-", dir=parent))
        probe.rmdir()
    except OSError as e:
        raise GenzooError(f"{path}: cannot write in {parent} ({e.strerror or e})") from None


def build_model(description, device="cpu") -> Family:
    """The family described by a run's description (a RunSpec or its plain dict), with fresh
    weights and its components loaded frozen."""
    from genzoo.training.components import build_model as build
    from genzoo.training.description import RunSpec
    spec = description if isinstance(description, RunSpec) else RunSpec.from_dict(description)
    return build(spec, device=device)


def load_model(run_dir: str | Path, device: str | torch.device = "cpu", ema: bool = True,
               checkpoint: str | Path | None = None) -> tuple[Family, dict]:
    """The trained family of a run (EMA weights when it kept them and ``ema``), and its
    checkpoint description. The checkpoint carries the whole run description, so it rebuilds
    its own model; ``checkpoint`` picks one file (default: the latest)."""
    from genzoo.training.components import build_model as build
    from genzoo.training.description import RunSpec
    run = RunDir.open(run_dir)
    path = Path(checkpoint) if checkpoint is not None else run.latest_checkpoint()
    if path is None:
        raise GenzooError(f"{run.path}: the run has no checkpoint yet")
    tensors, desc = ckpt.load(path, device)
    family = run.description["family"]
    if desc.get("family", family) != family:
        raise GenzooError(f"{path}: a checkpoint of family {desc.get('family')}, but {run.path} "
                          f"is a run of {family}")
    whole = desc if "data_info" in desc else {**run.description, **desc}
    spec = RunSpec.from_dict(whole, where=str(path))
    model = build(spec, owner=str(run.path), device=device)
    ckpt.load_own_state(model, ckpt.sub(tensors, "model"), path)
    averaged = ckpt.sub(tensors, "ema")
    if ema and averaged:
        model.load_state_dict(averaged, strict=False)
    return model.to(device).eval(), desc
