"""One worker thread runs every model computation of the explorer, in the order asked.

Two requests never run a model at the same time: each becomes a :class:`Job` with an id, waits
in one queue, and runs on the worker thread with the run's model (loaded once, reloaded when
the run has a newer checkpoint). The page polls a job for its state and progress and then
fetches its files. Samples are drawn in chunks of at most ``chunk`` with one generator, so a
long request reports progress and the same seed and count always give the same samples (for a
count up to ``chunk``, the same as ``genzoo sample --seed``). A failure becomes the job's
one-line error; the traceback goes to the server's log only.
"""
from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from genzoo.errors import GenzooError
from genzoo.serve import latent
from genzoo.serve.runs import NotFound, file_entry
from genzoo.training.run import RunDir, load_model
from genzoo.viz.samples import save_samples

log = logging.getLogger("genzoo.serve")


@dataclass
class Job:
    id: str
    run: str
    kind: str
    state: str = "queued"            # queued | running | done | error
    progress: float = 0.0            # 0..1
    message: str = "waiting for the worker"
    error: str | None = None
    files: list[str] = field(default_factory=list)     # names inside the job's folder
    data: dict | None = None                           # JSON results (the latent plane)
    created: float = field(default_factory=time.time)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def public(self) -> dict:
        url = f"/api/jobs/{self.id}"
        return {"id": self.id, "run": self.run, "kind": self.kind, "state": self.state,
                "progress": round(self.progress, 4), "message": self.message,
                "error": self.error, "url": url, "data": self.data,
                "files": [file_entry(n, f"{url}/files/{n}") for n in self.files]}


class Worker:
    def __init__(self, device: str | torch.device = "cpu", work_dir: str | Path | None = None,
                 keep_jobs: int = 100, keep_models: int = 2, chunk: int = 16):
        self.device = torch.device(device)
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="genzoo-serve-"))
        self.keep_jobs, self.keep_models, self.chunk = keep_jobs, keep_models, chunk
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.models: OrderedDict[Path, tuple[Path, float, Any]] = OrderedDict()
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="genzoo-serve-worker", daemon=True)
        self.thread.start()

    # -- the request side ----------------------------------------------------------------------
    def submit(self, run_id: str, run_path: Path, kind: str, fn: Callable) -> Job:
        """Queue ``fn(job, model, out_dir)`` on run ``run_path``'s model; returns the job."""
        job = Job(uuid.uuid4().hex[:16], run_id, kind)
        with self.lock:
            self.jobs[job.id] = job
            self._forget_old()
        self.queue.put((job, run_path, fn))
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for a while only)")
        return job

    def file(self, job_id: str, name: str) -> Path:
        job = self.get(job_id)
        if name not in job.files:        # only the names the job wrote: no paths at all
            raise NotFound(f"job {job_id}: no file {name!r}")
        return self.work_dir / job.id / name

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def _forget_old(self) -> None:
        done = [j for j in self.jobs.values() if j.finished.is_set()]
        for job in done[:max(0, len(self.jobs) - self.keep_jobs)]:
            del self.jobs[job.id]
            shutil.rmtree(self.work_dir / job.id, ignore_errors=True)

    # -- the worker side -----------------------------------------------------------------------
    def model(self, path: Path):
        """The run's sampling model, loaded once per checkpoint (a training run moves on)."""
        ckpt = RunDir.open(path).latest_checkpoint()
        if ckpt is None:
            raise GenzooError(f"{path.name}: the run has no checkpoint yet")
        stamp = ckpt.stat().st_mtime
        cached = self.models.get(path)
        if cached is None or cached[:2] != (ckpt, stamp):
            self.models.pop(path, None)
            model, _ = load_model(path, self.device)
            self.models[path] = (ckpt, stamp, model)
            while len(self.models) > self.keep_models:
                self.models.popitem(last=False)
        self.models.move_to_end(path)
        return self.models[path][2]

    def _loop(self) -> None:
        while (item := self.queue.get()) is not None:
            self._run(*item)

    def _run(self, job: Job, path: Path, fn: Callable) -> None:
        job.state, job.message = "running", "loading the model"
        out = self.work_dir / job.id
        try:
            out.mkdir(parents=True)
            model = self.model(path)
            job.message = "working"
            with torch.no_grad():
                written = fn(job, model, out) or []
            job.files = [Path(p).relative_to(out).as_posix() for p in written]
            job.state, job.progress, job.message = "done", 1.0, "done"
        except GenzooError as e:
            job.state, job.error, job.message = "error", str(e), "failed"
        except Exception as e:        # noqa: BLE001 - the page gets one line, the log the rest
            log.exception("job %s (%s on %s) failed", job.id, job.kind, job.run)
            first = (str(e).splitlines() or [""])[0][:300]
            job.state, job.message = "error", "failed"
            job.error = f"{job.kind} failed: {type(e).__name__}: {first}"
        finally:
            job.finished.set()


# -- the computations ---------------------------------------------------------------------------
def output_info(model):
    return getattr(model, "output_info", model.data)


def join(parts: list) -> Any:
    """Chunks of samples as one batch: tensors and dicts of tensors concatenated, lists
    joined."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if torch.is_tensor(first):
        return torch.cat(parts)
    if isinstance(first, list):
        return [item for p in parts for item in p]
    if isinstance(first, dict):
        return {k: join([p[k] for p in parts]) for k in first}
    raise GenzooError(f"samples of type {type(first).__name__} cannot be drawn in chunks; "
                      f"ask for at most the chunk size at once")


def sampling(n: int, seed: int, options: dict, chunk: int) -> Callable:
    def fn(job: Job, model, out: Path) -> list[Path]:
        g = torch.Generator(model.device).manual_seed(seed)
        parts = []
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            parts.append(model.sample(k, generator=g, **options))
            job.progress = 0.95 * (start + k) / n
            job.message = f"sampled {start + k} of {n}"
        job.message = "writing files"
        return save_samples(join(parts), output_info(model), out / "sample")
    return fn


def interpolation(steps: int, seeds=None, x=None) -> Callable:
    def fn(job: Job, model, out: Path) -> list[Path]:
        frames = latent.line(model, latent.endpoints(model, seeds, x), steps)
        files = save_samples(frames, output_info(model), out / "line")
        for i in range(steps):       # each frame on its own, for the page's slider
            job.progress = 0.5 + 0.5 * i / steps
            files += save_samples(frames[i:i + 1], output_info(model), out / f"frame_{i:03d}")
        return files
    return fn


def decoding(z) -> Callable:
    def fn(job: Job, model, out: Path) -> list[Path]:
        return save_samples(latent.point(model, z), output_info(model), out / "point")
    return fn


def plane() -> Callable:
    def fn(job: Job, model, out: Path) -> list[Path]:
        job.data = latent.plane(model)
        return []
    return fn
