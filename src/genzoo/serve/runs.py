"""The runs under the explorer's folder: finding them, describing them, serving their files.

A run is a folder holding ``config.yaml``; a compare folder holds ``report.html``. A run's id is
its path relative to the folder (``cmp/runs/vae``). Every path the API takes is resolved with
symlinks followed and refused when it leads outside the folder (``..``, an absolute path, a
link to elsewhere), and only the kinds of file that runs hold are served.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from urllib.parse import quote

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.training.checkpoint import listing

# a run whose metrics.jsonl changed this recently and that has steps to go is training
LIVE_SECONDS = 60
KINDS = {".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image", ".svg": "image",
         ".wav": "audio", ".mid": "midi", ".midi": "midi", ".txt": "text", ".npz": "array",
         ".html": "page", ".json": "json", ".jsonl": "json", ".yaml": "text", ".csv": "text"}


class NotFound(GenzooError):
    """An unknown run, job or file (HTTP 404)."""


class Refused(GenzooError):
    """A path that leads outside the runs folder, or a file of a kind not served (HTTP 403)."""


def finite(obj):
    """``obj`` with NaN and infinities as None: JSON has no such numbers (a diverged loss)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a line being written is skipped."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(finite(rec))
    return out


def file_entry(name: str, url: str) -> dict:
    return {"name": name, "url": url, "kind": KINDS.get(Path(name).suffix.lower(), "file")}


class RunsDir:
    def __init__(self, root: str | Path):
        root = Path(root)
        if not root.is_dir():
            raise GenzooError(f"{root}: no such folder of runs")
        self.root = root.resolve()

    # -- paths -----------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """``rel`` inside the folder, symlinks followed; a path leading outside is refused."""
        if "\x00" in rel:
            raise Refused(f"{rel!r}: not a path")
        p = (self.root / rel).resolve()
        if p != self.root and self.root not in p.parents:
            raise Refused(f"{rel!r}: outside the runs folder")
        return p

    def rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix() if p != self.root else self.root.name

    def url(self, p: Path) -> str:
        return "/files/" + quote(p.relative_to(self.root).as_posix())

    def run(self, run_id: str) -> Path:
        """The folder of run ``run_id`` (the folder itself when it is one run)."""
        p = self.root if run_id == self.root.name and self._is_run(self.root) else self.path(run_id)
        if not self._is_run(p):
            raise NotFound(f"no run {run_id!r} in {self.root}")
        return p

    def file(self, rel: str) -> Path:
        p = self.path(rel)
        if not p.is_file():
            raise NotFound(f"no file {rel!r} in {self.root}")
        if p.suffix.lower() not in KINDS:
            raise Refused(f"{rel!r}: the explorer serves only the files runs hold "
                          f"({', '.join(sorted(KINDS))})")
        return p

    @staticmethod
    def _is_run(p: Path) -> bool:
        return (p / "config.yaml").is_file()

    def scan(self) -> tuple[list[Path], list[Path]]:
        """(run folders, report pages of folders that are not runs), in path order. Links are
        not followed, hidden folders and the insides of runs are not searched."""
        runs, reports = [], []
        for here, dirs, files in os.walk(self.root):
            here = Path(here)
            if "config.yaml" in files:
                runs.append(here)
                dirs.clear()
                continue
            if "report.html" in files:
                reports.append(here / "report.html")
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        return sorted(runs), sorted(reports)

    # -- what the API returns -----------------------------------------------------------------
    def summary(self, path: Path) -> dict:
        """Family, data, steps done and last metrics of one run."""
        out = {"id": self.rel(path)}
        try:
            d = C.read_yaml(path / "config.yaml")
        except GenzooError as e:
            return {**out, "error": str(e)}
        metrics = read_metrics(path / "metrics.jsonl")
        last: dict = {}
        for rec in metrics:
            last.update(rec)
        last.pop("time", None)
        total = (d.get("train") or {}).get("steps")
        step = last.get("step", 0)
        ckpts = listing(path / "checkpoints")
        try:
            age = time.time() - (path / "metrics.jsonl").stat().st_mtime
        except FileNotFoundError:
            age = math.inf
        return {**out, "family": d.get("family"), "data": (d.get("data") or {}).get("spec"),
                "modality": (d.get("data_info") or {}).get("modality"),
                "step": step, "steps": total,
                "checkpoint_step": int(ckpts[-1].stem.split("_")[1]) if ckpts else None,
                "training": bool(total and step < total and age < LIVE_SECONDS),
                "last": last}

    def details(self, run_id: str, start: int = 0) -> dict:
        """Everything the page shows of one run; metrics from record ``start`` on (a page that
        follows a training run asks for the records it has not seen; held-out records come
        after the training record of the same step, so a step number would not do)."""
        path = self.run(run_id)
        out = self.summary(path)
        if "error" in out:
            return out
        samples: dict[int, list] = {}
        for f in sorted((path / "samples").glob("step_*.*")):
            step = f.stem.split("_")[1]
            if step.isdigit() and f.suffix.lower() in KINDS:
                samples.setdefault(int(step), []).append(file_entry(f.name, self.url(f)))
        showcase = [file_entry(f.name, self.url(f)) for f in sorted((path / "showcase").glob("*"))
                    if f.is_file() and f.suffix.lower() in KINDS]
        evaluation = None
        if (path / "eval.json").is_file():
            try:
                evaluation = finite(json.loads((path / "eval.json").read_text()))
            except (ValueError, UnicodeDecodeError):
                evaluation = {"error": "eval.json is not valid JSON"}
        report = path / "report.html"
        metrics = read_metrics(path / "metrics.jsonl")
        return {**out, "config": finite(C.read_yaml(path / "config.yaml")),
                "metrics": metrics[start:], "metrics_count": len(metrics),
                "samples": [{"step": s, "files": fs} for s, fs in sorted(samples.items())],
                "showcase": showcase, "eval": evaluation,
                "report": self.url(report) if report.is_file() else None}

    def listing(self) -> dict:
        runs, reports = self.scan()
        return {"root": str(self.root), "runs": [self.summary(p) for p in runs],
                "reports": [{"id": self.rel(r.parent), "url": self.url(r)} for r in reports]}
