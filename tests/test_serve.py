"""The explorer's JSON API (`genzoo serve`): every endpoint on runs the tests train, sampling
equal to `genzoo sample`, options checked against the family's declaration, interpolation and
the latent plane, one model computation at a time, and errors that are one line, never a
traceback; paths outside the runs folder are refused."""
from __future__ import annotations

import base64
import io
import shutil
import sys
import time
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="genzoo[serve] is not installed")
pytest.importorskip("httpx", reason="httpx (for FastAPI's TestClient) is not installed")
with warnings.catch_warnings():      # newer Starlette prefers httpx2 but still takes httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from PIL import Image  # noqa: E402

from genzoo import registry  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.errors import GenzooError  # noqa: E402
from genzoo.models.base import DataInfo, SampleOption  # noqa: E402
from genzoo.serve import latent, options  # noqa: E402
from genzoo.serve.app import create_app  # noqa: E402

RULE = "\n" + "-" * 60 + "\n"


def local(app, **kwargs) -> TestClient:
    """A client that names this machine in its requests' Host header."""
    return TestClient(app, base_url="http://127.0.0.1:8000", **kwargs)


@pytest.fixture(scope="module")
def client(explorer_runs):
    with local(create_app(explorer_runs)) as c:
        yield c


def done(client, response) -> dict:
    """The finished job a POST queued."""
    assert response.status_code == 202, response.text
    job = response.json()
    for _ in range(60):
        job = client.get(job["url"], params={"wait": 5}).json()
        if job["state"] in ("done", "error"):
            return job
    raise AssertionError(f"job did not finish: {job}")


def fetch(client, job, name):
    r = client.get(next(f["url"] for f in job["files"] if f["name"] == name))
    assert r.status_code == 200
    return r.content


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "Traceback" not in message and "\n" not in message
    return message


def test_runs_lists_every_run_below_the_folder(client):
    data = client.get("/api/runs").json()
    runs = {r["id"]: r for r in data["runs"]}
    assert set(runs) == {"vae", "text/gpt"}
    assert runs["vae"]["family"] == "vae" and runs["vae"]["data"] == "digits"
    assert runs["vae"]["step"] == 3 and runs["vae"]["steps"] == 3 and not runs["vae"]["training"]
    assert runs["text/gpt"]["modality"] == "text" and "val/loss" in runs["text/gpt"]["last"]
    assert data["reports"] == [{"id": "cmp", "url": "/files/cmp/report.html"}]
    page = client.get("/files/cmp/report.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_run_details(client):
    d = client.get("/api/runs/vae").json()
    assert d["config"]["family"] == "vae" and d["config"]["model"]["latent_dim"] == 2
    assert sorted({m["step"] for m in d["metrics"]}) == [1, 2, 3]
    assert [m["step"] for m in d["metrics"] if "loss" in m] == [1, 2, 3]
    assert [s["step"] for s in d["samples"]] == [1, 2, 3]
    png = client.get(next(f["url"] for f in d["samples"][0]["files"] if f["kind"] == "image"))
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert {"latent_scatter.png", "interpolation.png"} <= {f["name"] for f in d["showcase"]}
    assert d["eval"] == {"fd": 12.5, "kid": None, "features": "pixels"}    # NaN is not JSON
    info = DataInfo.from_dict(d["config"]["data_info"])
    assert d["options"] == [options.describe(o, info)
                            for o in registry.get("vae").cls.sample_options]
    assert d["capabilities"] == {"sample": True, "interpolate": True, "plane": True,
                                 "upload": True}
    g = client.get("/api/runs/text/gpt").json()
    assert g["capabilities"] == {"sample": True, "interpolate": False, "plane": False,
                                 "upload": False}
    assert any(f["kind"] == "text" for s in g["samples"] for f in s["files"])
    later = client.get("/api/runs/vae", params={"start": 2}).json()
    assert later["metrics"] == d["metrics"][2:] and later["metrics_count"] == len(d["metrics"])


def test_a_training_run_is_live_and_half_written_lines_are_skipped(tmp_path, explorer_runs):
    run = tmp_path / "runs" / "live"
    shutil.copytree(explorer_runs / "vae", run, ignore=shutil.ignore_patterns("checkpoints"))
    text = (run / "config.yaml").read_text().replace("steps: 3", "steps: 100")
    (run / "config.yaml").write_text(text)
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": Infinity}\n'
                                       '{"step": 3, "lo')
    with local(create_app(tmp_path / "runs")) as c:
        summary = c.get("/api/runs").json()["runs"][0]
        assert summary["training"] and summary["step"] == 2 and summary["last"]["loss"] is None
        assert c.get("/api/runs/live").json()["metrics"] == [{"step": 1, "loss": 2.0},
                                                              {"step": 2, "loss": None}]
        job = done(c, c.post("/api/runs/live/sample", json={}))
        assert job["state"] == "error" and "no checkpoint yet" in job["error"]


def test_samples_equal_genzoo_sample_with_the_same_seed(client, explorer_runs, tmp_path):
    job = done(client, client.post("/api/runs/vae/sample", json={"n": 5, "seed": 3}))
    assert job["state"] == "done" and job["progress"] == 1.0
    assert fetch(client, job, "sample.png")[:4] == b"\x89PNG"
    x = np.load(io.BytesIO(fetch(client, job, "sample.npz")))["x"]
    assert main(["sample", str(explorer_runs / "vae"), "-n", "5", "--seed", "3",
                 "--out", str(tmp_path / "cli")]) == 0
    assert x.shape == (5, 16, 16, 1) and np.array_equal(x, np.load(tmp_path / "cli.npz")["x"])
    big = done(client, client.post("/api/runs/vae/sample", json={"n": "40", "seed": "3"}))
    y = np.load(io.BytesIO(fetch(client, big, "sample.npz")))["x"]     # drawn in chunks of 16
    assert y.shape == (40, 16, 16, 1)
    again = done(client, client.post("/api/runs/vae/sample", json={"n": 40, "seed": 3}))
    assert np.array_equal(np.load(io.BytesIO(fetch(client, again, "sample.npz")))["x"], y)


def test_text_samples_with_the_declared_options(client):
    declared = {o["name"]: o for o in client.get("/api/runs/text/gpt").json()["options"]}
    assert declared["prompt"]["kind"] == "prompt" and declared["temperature"]["type"] == "float"
    body = {"n": 2, "options": {"prompt": "the d", "max_tokens": "5", "temperature": 0.5,
                                "top_k": ""}}
    job = done(client, client.post("/api/runs/text/gpt/sample", json=body))
    texts = fetch(client, job, "sample.txt").decode().strip().split(RULE)
    assert len(texts) == 2 and all(t.startswith("the d") and len(t) <= 10 for t in texts)
    bad = client.post("/api/runs/text/gpt/sample", json={"options": {"temperature": "hot"}})
    message = error(bad, 400)
    assert "temperature" in message and "'hot'" in message and "not a number" in message
    bad = client.post("/api/runs/text/gpt/sample", json={"options": {"temprature": 1}})
    assert "'temprature'" in error(bad, 400) and "temperature" in error(bad, 400)
    for field, value in (("n", 0), ("n", 1000), ("n", "many"), ("seed", -1)):
        assert field in error(client.post("/api/runs/vae/sample", json={field: value}), 400)
    assert "options" in error(client.post("/api/runs/vae/sample", json={"options": [1]}), 400)


def test_option_values_are_converted_and_checked():
    declared = (SampleOption("steps", int, None), SampleOption("eta", float, 0.0),
                SampleOption("sampler", str, "ddpm", choices=("ddpm", "ddim")),
                SampleOption("ema", bool, True), SampleOption("label", str, kind="label"))
    info = DataInfo("image", (1, 8, 8), 3, ["cat", "dog", "owl"])
    got = options.validate("f", declared, {"steps": "25", "eta": "0.5", "sampler": "ddim",
                                           "ema": "false", "label": "owl"}, info)
    assert got == {"steps": 25, "eta": 0.5, "sampler": "ddim", "ema": False, "label": 2}
    assert options.validate("f", declared, {"steps": None, "label": 1}, info) == {"label": 1}
    for values, words in (({"steps": 2.5}, "not an integer"), ({"steps": True}, "integer"),
                          ({"eta": "nan"}, "not a finite number"), ({"sampler": "euler"}, "ddpm, ddim"),
                          ({"ema": "maybe"}, "maybe"), ({"label": "emu"}, "cat, dog, owl"),
                          ({"label": 3}, "not a class")):
        with pytest.raises(GenzooError, match=words):
            options.validate("f", declared, values, info)
    form = options.describe(declared[4], info)
    assert form["choices"] == ["cat", "dog", "owl"] and form["type"] == "str"


class Line:
    """A toy latent family: decode is the identity, prior draws from the generator."""
    device = torch.device("cpu")

    def prior(self, n, generator):
        return torch.randn(n, 2, generator=generator)

    decode = staticmethod(lambda z: z)


def test_interpolation_is_the_straight_line_and_prefers_the_prior():
    z = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    torch.testing.assert_close(latent.line(Line(), z, 3),
                               torch.tensor([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]]))
    g = torch.Generator().manual_seed(7)
    torch.testing.assert_close(latent.endpoints(Line(), seeds=[7, 7])[1],
                               torch.randn(1, 2, generator=g)[0])


def test_interpolate_between_seeds_and_between_uploaded_images(client):
    job = done(client, client.post("/api/runs/vae/interpolate", json={"seeds": [0, 5], "steps": 4}))
    line = np.load(io.BytesIO(fetch(client, job, "line.npz")))["x"]
    assert line.shape == (4, 16, 16, 1)
    for i in range(4):
        frame = np.load(io.BytesIO(fetch(client, job, f"frame_{i:03d}.npz")))["x"]
        assert np.array_equal(frame[0], line[i])
    same = done(client, client.post("/api/runs/vae/interpolate", json={"seeds": [2, 2]}))
    x = np.load(io.BytesIO(fetch(client, same, "line.npz")))["x"]
    assert len(x) == 9 and (x == x[0]).all()

    def upload(colour, size):
        buf = io.BytesIO()
        Image.new("RGB", size, colour).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    images = [upload((0, 0, 0), (40, 30)), upload((255, 255, 255), (9, 9))]
    job = done(client, client.post("/api/runs/vae/interpolate", json={"images": images, "steps": 3}))
    assert job["state"] == "done" and sum(f["name"].endswith(".png") for f in job["files"]) == 4
    bad = {"images": [images[0], "data:image/png;base64," + base64.b64encode(b"nope").decode()]}
    assert "not an image" in error(client.post("/api/runs/vae/interpolate", json=bad), 400)
    assert "two images" in error(client.post("/api/runs/vae/interpolate", json={"images": images[:1]}), 400)
    assert "two seeds" in error(client.post("/api/runs/vae/interpolate", json={"seeds": 3}), 400)
    assert "steps" in error(client.post("/api/runs/vae/interpolate", json={"steps": 1}), 400)
    assert "no interpolation" in error(client.post("/api/runs/text/gpt/interpolate", json={}), 400)


def test_latent_plane_and_decoding_a_point(client):
    job = done(client, client.post("/api/runs/vae/plane"))
    plane = job["data"]
    assert plane["dim"] == [2] and len(plane["points"]) == 512
    lo, hi, pts = np.array(plane["lo"]), np.array(plane["hi"]), np.array(plane["points"])
    outside = ((pts < lo) | (pts > hi)).any(1).mean()      # the box: 1st-99th percentiles
    assert (lo < hi).all() and 0 < outside <= 0.05
    job = done(client, client.post("/api/runs/vae/decode", json={"z": [0.5, -0.25]}))
    assert fetch(client, job, "point.png")[:4] == b"\x89PNG"
    wrong = done(client, client.post("/api/runs/vae/decode", json={"z": [0.5]}))
    assert wrong["state"] == "error" and "[2] finite numbers" in wrong["error"]
    assert "list of numbers" in error(client.post("/api/runs/vae/decode", json={"z": "0,1"}), 400)
    assert "no latent plane" in error(client.post("/api/runs/text/gpt/plane"), 400)


def test_unknown_runs_jobs_and_files(client):
    assert "'nope'" in error(client.get("/api/runs/nope"), 404)
    assert "'nope'" in error(client.post("/api/runs/nope/sample", json={}), 404)
    assert "no job" in error(client.get("/api/jobs/0123"), 404)
    job = done(client, client.post("/api/runs/vae/decode", json={"z": [0, 0]}))
    assert "no file" in error(client.get(job["url"] + "/files/other.png"), 404)
    assert error(client.get(job["url"] + "/files/..%2F..%2Fpoint.png"), 404)
    assert "no file" in error(client.get("/files/vae/missing.png"), 404)
    assert error(client.get("/no/such/page"), 404)
    assert "JSON" in error(client.post("/api/runs/vae/sample", content=b"{",
                                       headers={"content-type": "application/json"}), 400)


def test_paths_outside_the_folder_are_refused(tmp_path, explorer_runs):
    root, outside = tmp_path / "runs", tmp_path / "private"
    shutil.copytree(explorer_runs / "vae", outside / "run", ignore=shutil.ignore_patterns("checkpoints"))
    (outside / "secret.txt").write_text("secret")
    root.mkdir()
    (root / "link").symlink_to(outside / "run")           # a run reached through a link
    (root / "escape").symlink_to(outside / "secret.txt")
    with local(create_app(root)) as c:
        assert c.get("/api/runs").json()["runs"] == []
        for url in ("/api/runs/link", "/api/runs/..%2Fprivate%2Frun", "/files/escape",
                    "/files/link/samples/step_00000001.png", "/files/%2e%2e/private/secret.txt",
                    "/files/%2Fetc%2Fpasswd"):
            assert "outside the runs folder" in error(c.get(url), 403), url
        assert "outside" in error(c.post("/api/runs/link/sample", json={}), 403)
    with local(create_app(explorer_runs)) as c:
        assert "serves only" in error(
            c.get("/files/vae/checkpoints/step_00000003.safetensors"), 403)


def test_unexpected_failures_are_one_line(explorer_runs, monkeypatch):
    app = create_app(explorer_runs)
    with local(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(app.state.runs, "listing", lambda: 1 / 0)
        assert error(c.get("/api/runs"), 500).startswith("internal error (ZeroDivisionError)")

        def broken(*args, **kwargs):
            raise RuntimeError("deep inside\nthe model")
        monkeypatch.setattr(registry.get("vae").cls, "sample", broken)
        job = done(c, c.post("/api/runs/vae/sample", json={}))
        assert job["state"] == "error" and job["error"] == "sample failed: RuntimeError: deep inside"


def test_one_model_computation_at_a_time(explorer_runs, monkeypatch):
    active, most = [0], [0]
    original = registry.get("vae").cls.sample

    def slow(self, n, generator=None):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.05)
        active[0] -= 1
        return original(self, n, generator=generator)
    monkeypatch.setattr(registry.get("vae").cls, "sample", slow)
    with local(create_app(explorer_runs)) as c:
        # each POST returns at once with a queued job: four jobs wait together
        replies = [c.post("/api/runs/vae/sample", json={"n": 2}) for _ in range(4)]
        assert [done(c, r)["state"] for r in replies] == ["done"] * 4
    assert most[0] == 1


def test_the_model_is_reloaded_when_the_run_moves_on(explorer_runs, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(explorer_runs / "vae", run)
    app = create_app(tmp_path)
    worker = app.state.worker
    first = worker.model(run)
    assert worker.model(run) is first
    for suffix in (".safetensors", ".json"):
        shutil.copy(run / "checkpoints" / f"step_00000003{suffix}",
                    run / "checkpoints" / f"step_00000004{suffix}")
    assert worker.model(run) is not first
    worker.close()


def test_the_page_and_its_script_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "http" not in page.text.replace("http://www.w3.org", "")      # nothing from the web
    for name in ("app.js", "latent.js", "style.css"):
        assert f'"/static/{name}"' in page.text and client.get(f"/static/{name}").status_code == 200
    assert "/api/runs" in client.get("/static/app.js").text
    assert client.get("/docs").status_code == 404      # Swagger's page would load a CDN
    elsewhere = client.get("/api/runs", headers={"host": "attacker.example"})
    assert elsewhere.status_code == 400       # a rebound DNS name does not reach the runs


def test_serve_command_errors(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "none"), "--port", "8123"]) == 2
    assert "no such folder of runs" in capsys.readouterr().err
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["serve", str(tmp_path), "--port", str(s.getsockname()[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--device", "toaster"]) == 2
    assert "'toaster' is not a device" in capsys.readouterr().err


def test_serve_without_its_extra_says_what_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)       # as if it were not installed
    assert main(["serve", str(tmp_path)]) == 2
    assert "pip install 'genzoo[serve]'" in capsys.readouterr().err
