"""Every pipeline shipped with genzoo runs tiny (--smoke) on data the test makes, and its last
stage samples through the command line: a chain's wiring is tested the day it is shipped."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import blobs
from genzoo import registry
from genzoo.cli import main
from genzoo.training import pipeline

SHIPPED = sorted(str(p.relative_to(pipeline.SHIPPED).with_suffix(""))
                 for p in pipeline.SHIPPED.rglob("*.yaml"))


def _data(modality: str, tmp_path):
    """Test data for a chain whose first stage takes this modality (None: the pipeline's own
    data, which must then be offline and small; a file's smoke_data is used as it is)."""
    if modality == "image":
        x, y = blobs(64, side=16)
        np.savez(tmp_path / "blobs.npz", x=x, y=y)
        return str(tmp_path / "blobs.npz")
    if modality == "text":
        (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 40)
        return str(tmp_path / "t.txt")
    return None


def test_there_is_a_shipped_pipeline():
    assert "vq-vae" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_pipeline_runs_tiny_and_its_last_stage_samples(name, tmp_path, capsys):
    path = pipeline.find(name)
    stages, _ = pipeline.read(path)
    data = None if pipeline.smoke_data(path) else _data(registry.get(stages[0].family).modality,
                                                        tmp_path)
    out = tmp_path / "smoke"
    args = ["pipeline", name, "--smoke", "--out", str(out), "--no-progress"]
    code = main(args + (["--data", data] if data else []))
    err = capsys.readouterr().err
    if code == 2 and "pip install 'genzoo[" in err:      # its optional extra is not installed
        pytest.skip(err.strip())
    assert code == 0, err
    for s in stages:
        assert any((out / s.name / "checkpoints").glob("*.safetensors")), s.name
    last = out / stages[-1].name
    assert main(["sample", str(last), "-n", "2", "--out", str(tmp_path / "s")]) == 0, \
        capsys.readouterr().err
    assert list(tmp_path.glob("s*")), "sampling wrote nothing"


def test_every_family_that_stands_on_runs_is_in_a_shipped_pipeline():
    """The contract test cannot build a component-based family alone; its shipped pipeline's
    smoke run (above) is its contract test, so every such family must have one."""
    from genzoo.config import run_refs
    staged = {s.family for name in SHIPPED for s in pipeline.read(pipeline.find(name))[0]}
    needing = {n for n, e in registry.families().items() if run_refs(e.config)}
    assert needing and needing <= staged, f"no shipped pipeline trains {sorted(needing - staged)}"
