"""The run folder: where a training run leaves everything it makes.

    RUN/config.yaml        the resolved configs (family, model, train, data) and the data info
    RUN/metrics.jsonl      one JSON object per logged step
    RUN/samples/           sample grids from a fixed seed, over training
    RUN/checkpoints/       step_XXXXXXXX.safetensors (+ a readable .json beside each)
    RUN/showcase/          what the family shows once trained (reconstructions, latent plots...)
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family
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
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.write_description(description)
        return run

    def write_description(self, description: dict) -> None:
        tmp = self.path / ".config.yaml.tmp"
        C.write_yaml(tmp, description)
        tmp.replace(self.path / "config.yaml")

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise GenzooError(f"{path}: not a genzoo run folder (no config.yaml)")
        return cls(path)

    @property
    def description(self) -> dict:
        return C.read_yaml(self.path / "config.yaml")

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


def build_model(description: dict) -> Family:
    """The family described by a run's config, with fresh weights."""
    from genzoo import registry
    entry = registry.get(description["family"])
    cfg = C.from_dict(entry.config, description["model"], where=f"{description['family']} config")
    return entry.cls(cfg, DataInfo.from_dict(description["data_info"]))


def load_model(run_dir: str | Path, device: str | torch.device = "cpu",
               ema: bool = True) -> tuple[Family, dict]:
    """The trained family of a run (EMA weights when it kept them and ``ema``), and its
    checkpoint description."""
    run = RunDir.open(run_dir)
    path = run.latest_checkpoint()
    if path is None:
        raise GenzooError(f"{run.path}: the run has no checkpoint yet")
    model = build_model(run.description)
    tensors, desc = ckpt.load(path, device)
    model.load_state_dict(ckpt.sub(tensors, "model"))
    averaged = ckpt.sub(tensors, "ema")
    if ema and averaged:
        model.load_state_dict(averaged, strict=False)
    return model.to(device).eval(), desc
