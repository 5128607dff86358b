"""Families declare their sampling options; `genzoo sample` offers, types and checks them from
the declarations alone, and refuses what the run's family does not declare."""
import inspect
import re

import pytest

from genzoo import registry
from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, SampleOption

from conftest import TINY_AE

# keywords of sample() for Python callers only (tensors, callbacks): never typed by a user
PROGRAMMATIC = {"noise", "record"}


def help_entries(capsys) -> dict[str, str]:
    """`genzoo sample --help`: flag -> its metavar and help, on one line."""
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    options = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    entries = re.split(r"\n  (?=-)", "\n" + options)[1:]
    return {e.split()[0].rstrip(","): " ".join(e.split()[1:]) for e in entries}


@pytest.mark.parametrize("name", [n for n, e in registry.families().items()
                                  if e.taxonomy != "discriminative"])
def test_declared_options_are_the_keywords_of_sample(name):
    cls = registry.get(name).cls
    params = inspect.signature(cls.sample).parameters
    keywords = {k for k in params if k not in ("self", "n", "generator")} - PROGRAMMATIC
    declared = {o.name: o for o in cls.sample_options}
    assert set(declared) == keywords, f"{name}: declare {keywords - set(declared)}"
    for o in declared.values():
        assert o.type in (int, float, str, bool) and o.help, o
        if o.default is not None:
            assert params[o.name].default == o.default, o
        if o.choices is not None:
            assert all(isinstance(c, o.type) for c in o.choices), o
        if o.kind == "label":
            assert o.type is int, o
        if o.fast is not None:          # the quick value: of the option's type and choices
            assert isinstance(o.fast, o.type) and o.fast in (o.choices or (o.fast,)), o


def test_help_lists_every_declared_option_with_its_families(capsys, monkeypatch):
    class Toy(Family):
        sample_options = (SampleOption("wiggle", float, 0.5, "how much it wiggles"),)
    entry = registry.Entry("toy", Toy, object, "implicit", "image", "a toy")
    monkeypatch.setitem(registry._REGISTRY, "toy", entry)
    monkeypatch.setenv("COLUMNS", "1000")     # no wrapping: argparse breaks lines at hyphens
    entries = help_entries(capsys)
    assert entries["--wiggle"] == "X toy: how much it wiggles [default 0.5]"
    for name, e in registry.families().items():
        for o in e.cls.sample_options:
            before, found, _ = entries[o.flag].partition(": " + " ".join(o.help.split()))
            assert found and name in re.split(r"[ ,]+", before.split("; ")[-1]), (name, o.name)
    assert re.match(r"\{ddpm,ddim,dpm\+\+2m\} ddpm(, \w+)*: diffusion sampler", entries["--sampler"])
    assert entries["--label"].startswith("CLASS ")


def test_an_option_clashing_with_the_commands_own_is_refused(monkeypatch):
    class Clash(Family):
        sample_options = (SampleOption("seed", int, help="oops"),)
    monkeypatch.setitem(registry._REGISTRY, "clash",
                        registry.Entry("clash", Clash, object, "implicit", "image", "x"))
    with pytest.raises(ValueError, match="clash declares the sample option 'seed'"):
        main(["sample", "--help"])


def test_an_undeclared_option_is_refused_in_one_line(capsys, image_npz, tmp_path):
    assert main(["train", "vae", "--data", str(image_npz), "--steps", "1", *TINY_AE,
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--temperature", "0.5", "--out", "s"]) == 2
    err = capsys.readouterr().err
    assert err == "genzoo: error: vae does not take --temperature (it takes no sample options)\n"
    assert not (tmp_path / "s.png").exists()


def test_values_are_typed_checked_and_labels_named():
    info = DataInfo("image", (1, 4, 4), num_classes=3, class_names=["cat", "dog", "owl"])
    steps = SampleOption("steps", int, help="x")
    assert steps.parse("12", info) == 12
    with pytest.raises(GenzooError, match=r"^--steps '1\.5': not an integer$"):
        steps.parse("1.5", info)
    eta = SampleOption("eta", float, help="x")
    assert eta.parse("0.25", info) == 0.25
    with pytest.raises(GenzooError, match="not a number"):
        eta.parse("lots", info)
    mode = SampleOption("sampler", str, choices=("a", "b"), help="x")
    assert mode.parse("b", info) == "b"
    with pytest.raises(GenzooError, match=r"--sampler 'c': not one of a, b"):
        mode.parse("c", info)
    flag = SampleOption("clip", bool, help="x")
    assert flag.parse("yes", info) is True and flag.parse("0", info) is False
    label = SampleOption("label", int, kind="label", help="x")
    assert label.parse("owl", info) == 2 and label.parse("1", info) == 1
    for bad in ("3", "-1", "emu"):
        with pytest.raises(GenzooError, match=r"not a class of this run \(cat, dog, owl\)"):
            label.parse(bad, info)
    with pytest.raises(GenzooError, match="it has none"):
        label.parse("0", DataInfo("image", (1, 4, 4)))
