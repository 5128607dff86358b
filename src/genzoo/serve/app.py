"""The explorer's HTTP side: one static page and the JSON API it is drawn from.

    GET  /api/runs                        every run under the folder (+ compare reports)
    GET  /api/runs/{id}[?start=K]         config, metrics (from record K on), sample grids,
                                          showcase, eval.json, sampling options, capabilities
    POST /api/runs/{id}/sample            {n, seed, options}           -> a job
    POST /api/runs/{id}/interpolate       {seeds: [a, b] | images: [data URL, data URL], steps}
    POST /api/runs/{id}/plane             the codes of a 2-d latent     -> a job (data)
    POST /api/runs/{id}/decode            {z: [..]}                     -> a job
    GET  /api/jobs/{job}[?wait=SECONDS]   state, progress, message, error, files
    GET  /api/jobs/{job}/files/{name}     a file the job wrote
    GET  /files/{path}                    a file under the runs folder (images, reports...)

Errors are JSON ``{"error": "one line"}``: 400 bad request, 403 a path outside the folder,
404 unknown run, job or file, 500 anything unexpected (its traceback goes to the log only).
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.serve import latent
from genzoo.serve import options as O
from genzoo.serve import worker as W
from genzoo.serve.runs import NotFound, Refused, RunsDir
from genzoo.training.launch import check_device
from genzoo.training.trainer import resolve_device

STATIC = Path(__file__).parent / "static"
MAX_STEPS = 64           # frames of one interpolation
LOCAL = ["127.0.0.1", "localhost"]
log = logging.getLogger("genzoo.serve")


def create_app(runs_dir: str | Path, device: str = "cpu", work_dir: str | Path | None = None,
               hosts: list[str] = LOCAL):
    """The explorer over ``runs_dir``; its worker thread starts now and stops with the app.

    Requests must name one of ``hosts`` (``["*"]``: any) in their Host header, so that a web
    page whose name is re-pointed at 127.0.0.1 (DNS rebinding) cannot read the runs."""
    runs = RunsDir(runs_dir)
    check_device(device)
    worker = W.Worker(resolve_device(device), work_dir)

    @asynccontextmanager
    async def lifespan(app):
        yield
        worker.close()

    # no /docs or /redoc: those pages load their scripts from a CDN
    app = FastAPI(title="genzoo explorer", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.runs, app.state.worker = runs, worker
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    _errors(app)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/runs")
    def list_runs():
        return runs.listing()

    def family(run_id: str, need: str) -> tuple[Path, dict]:
        """The run's folder and description, if its family can do ``need``."""
        path = runs.run(run_id)
        description = C.read_yaml(path / "config.yaml")
        if not O.family_info(description)["capabilities"][need]:
            raise GenzooError(f"{description['family']}: {O.CANNOT[need]}")
        return path, description

    def queued(run_id: str, path: Path, kind: str, fn) -> JSONResponse:
        return JSONResponse(worker.submit(run_id, path, kind, fn).public(), status_code=202)

    @app.post("/api/runs/{run_id:path}/sample")
    def sample(run_id: str, body: dict = Body(default={})):
        path, description = family(run_id, "sample")
        n = O.bounded_int(body, "n", 16, 1, O.MAX_N)
        seed = O.bounded_int(body, "seed", 0, 0, O.MAX_SEED)
        options = O.request_options(description, body.get("options"))
        return queued(run_id, path, "sample", W.sampling(n, seed, options, worker.chunk))

    @app.post("/api/runs/{run_id:path}/interpolate")
    def interpolate(run_id: str, body: dict = Body(default={})):
        steps = O.bounded_int(body, "steps", 9, 2, MAX_STEPS)
        images, seeds, x = body.get("images"), body.get("seeds"), None
        if images is not None:
            path, description = family(run_id, "upload")
            x = latent.uploads(images, tuple(description["data_info"]["shape"]))
            seeds = None
        else:
            path, _ = family(run_id, "interpolate")
            if seeds is None:
                seeds = [0, 1]
            if not isinstance(seeds, list) or len(seeds) != 2:
                raise GenzooError("seeds: give two seeds, e.g. [0, 1]")
            seeds = [O.bounded_int({"seed": s}, "seed", 0, 0, O.MAX_SEED) for s in seeds]
        return queued(run_id, path, "interpolate", W.interpolation(steps, seeds, x))

    @app.post("/api/runs/{run_id:path}/plane")
    def plane(run_id: str):
        path, _ = family(run_id, "plane")
        return queued(run_id, path, "plane", W.plane())

    @app.post("/api/runs/{run_id:path}/decode")
    def decode(run_id: str, body: dict = Body(default={})):
        path, _ = family(run_id, "plane")
        if not isinstance(body.get("z"), list):
            raise GenzooError("z: give the point as a list of numbers, e.g. [0.5, -1.2]")
        return queued(run_id, path, "decode", W.decoding(body["z"]))

    @app.get("/api/runs/{run_id:path}")
    def run_details(run_id: str, start: int = 0):
        details = runs.details(run_id, max(start, 0))
        if "error" not in details:
            try:
                details.update(O.family_info(details["config"]))
            except (GenzooError, KeyError) as e:
                details["error"] = str(e) if isinstance(e, GenzooError) else f"config lacks {e}"
        return details

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str, wait: float = 0.0):
        job = worker.get(job_id)
        job.finished.wait(min(wait, 10.0) if wait > 0 else 0.0)     # NaN: no wait
        return job.public()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str):
        return FileResponse(worker.file(job_id, name))

    @app.get("/files/{rel:path}")
    def run_file(rel: str):
        return FileResponse(runs.file(rel))

    return app


def _errors(app: FastAPI) -> None:
    """Every error as ``{"error": one line}`` with its status; never a traceback."""
    def reply(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, e: NotFound):
        return reply(404, str(e))

    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused):
        return reply(403, str(e))

    @app.exception_handler(GenzooError)
    async def bad_request(request: Request, e: GenzooError):
        return reply(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        first = (e.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return reply(400, f"bad request: {where + ': ' if where else ''}"
                          f"{first.get('msg', 'not understood')}")

    @app.exception_handler(HTTPException)
    async def http(request: Request, e: HTTPException):
        return reply(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=e)
        return reply(500, f"internal error ({type(e).__name__}); the server's log has the details")
