"""`genzoo compare` and `genzoo report`: equal budgets, one table, a page that a real browser
opens from disk without errors, showing every family's row and pictures."""
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from genzoo.cli import main
from genzoo.commands.compare import parse_budget
from genzoo.errors import GenzooError
from genzoo.viz.report import render
from genzoo.viz.results import markdown

from conftest import TINY_AE, chromium

FAMILIES = ["vae", "autoencoder"]


@pytest.fixture
def compared(image_npz, capsys):
    """Two tiny families compared on the blobs with a 3-step budget."""
    assert main(["compare", *FAMILIES, "--data", str(image_npz), "--budget", "3", "--out", "cmp",
                 "-n", "40", "--features", "pixels", "--no-progress", *TINY_AE,
                 "--set", "vae.image_size=20"]) == 0      # the vae's recipe pads 16 -> 20
    return Path("cmp"), capsys.readouterr().out


def test_compare_trains_with_equal_budget_and_reports(compared, image_npz, capsys):
    out, printed = compared
    results = json.loads((out / "results.json").read_text())
    assert [r["family"] for r in results] == FAMILIES
    assert all(r["steps"] == 3 for r in results)
    assert len({r["reference"]["source"] for r in results}) == 1      # one reference for all
    assert all(r["features"]["name"].startswith("pixels") for r in results)
    vae = results[0]
    assert vae["held_out"]["elbo_bpd"] > 0                  # on its own 20x20 held-out items
    assert any("brought to the reference's (1, 16, 16)" in n for n in vae["notes"])
    assert "| vae | explicit-approximate |" in printed and "| FD |" in printed
    page = (out / "report.html").read_text()
    assert page.count('<tr class="family"') == 2 and "not</b> FID" in page
    assert "http://" not in page and "https://" not in page        # nothing fetched from anywhere
    assert main(["compare", *FAMILIES, "--data", str(image_npz), "--budget", "3", "--out", "cmp",
                 "-n", "40", "--features", "pixels"]) == 0
    assert capsys.readouterr().out.count("reusing") == 2             # an interrupted compare resumes


def test_budget_parsing_and_errors(capsys):
    assert parse_budget("500") == (500, None) and parse_budget("200steps") == (200, None)
    assert parse_budget("5min") == (None, 5.0) and parse_budget("2.5m") == (None, 2.5)
    for bad in ("soon", "0", "1.5steps"):
        with pytest.raises(GenzooError, match="--budget"):
            parse_budget(bad)
    assert main(["compare", "nosuchfamily", "--data", "x", "--out", "o"]) == 2
    assert "unknown family" in capsys.readouterr().err


def _result(family, fid=False, likelihood=(3.5, "bits/dim", 256, True)):
    value, unit, levels, exact = likelihood
    return {"run": "nowhere", "family": family, "taxonomy": "implicit", "parameters": 1234,
            "modality": "image",
            "steps": 10, "training_seconds": 5.0, "seconds_per_sample": 0.002, "n_samples": 10,
            "reference": {"source": "ref", "items": 10}, "notes": [],
            "features": {"name": "InceptionV3" if fid else "pixels", "is_fid": fid},
            "metrics": {"fid" if fid else "fd": 12.5, "kid": 0.01, "kid_std": 0.001,
                        "precision": 0.5, "recall": 0.25},
            "held_out": {"bpd": value}, "novelty": {"close_fraction": 0.9, "q": 0.05, "memorising": True},
            "likelihood": {"value": value, "unit": unit, "levels": levels, "exact": exact}}


def test_page_names_its_space_and_flags_memorising():
    page = render([_result("a", fid=True), _result("b<script>", fid=True)])
    assert ">FID</th>" in page and "standard FID" in page and "memorising" in page
    assert "b&lt;script&gt;" in page and "<script>" not in page
    mixed = render([_result("a", fid=True), _result("b")])
    assert ">FD</th>" in mixed and ">FID</th>" not in mixed
    assert "| FD |" in markdown([_result("a", fid=True), _result("b")])
    table = markdown([_result("a")])
    assert "| held-out bits/dim over 256 levels |" in table and "| 3.5 |" in table
    assert "MEMORISING" in table


def test_single_run_report(image_npz, capsys):
    assert main(["train", "vae", "--data", str(image_npz), "--steps", "2", "--out", "v",
                 "--no-progress", *TINY_AE]) == 0
    assert main(["report", "v", "-n", "20", "--features", "pixels"]) == 0
    page = Path("v/report.html").read_text()
    assert page.count('<tr class="family"') == 1 and "data:image/png;base64," in page
    assert Path("v/eval.json").is_file()


def test_report_renders_in_a_real_browser(compared):
    out, _ = compared
    browser = chromium()
    try:
        browser.get((out / "report.html").resolve().as_uri())
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        rows = browser.execute_script(
            "return Array.from(document.querySelectorAll('#results tr.family'))"
            ".map(r => r.dataset.family)")
        assert rows == FAMILIES
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.closest('figure').className,"
            " i.closest('figure').dataset.family, i.complete, i.naturalWidth])")
        for family in FAMILIES:
            mine = [i for i in images if i[1] == family]
            assert {"samples", "curve", "latent"} <= {i[0] for i in mine}, family
            assert all(complete and width > 0 for _, _, complete, width in mine), mine
    finally:
        browser.quit()


def test_per_family_settings_reach_only_their_family():
    from genzoo import registry
    from genzoo.commands.compare import _overrides_for
    sets = ["latent_dim=4", "vae.beta=2", "train.batch_size=8", "data.holdout=5", "nosuch=1"]
    assert _overrides_for("vae", registry.get("vae"), sets) == \
        ["latent_dim=4", "beta=2", "train.batch_size=8", "data.holdout=5"]
    assert _overrides_for("autoencoder", registry.get("autoencoder"), sets) == \
        ["latent_dim=4", "train.batch_size=8", "data.holdout=5"]


class _Table(HTMLParser):
    """The heads and the rows of cell texts of the report's results table."""

    def __init__(self, page: str):
        super().__init__()
        self.heads, self.rows, self._cell = [], [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and dict(attrs).get("class") == "family":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "th":
            self.heads.append(self._cell)
        elif tag == "td":
            self.rows[-1].append(self._cell)
        if tag in ("th", "td"):
            self._cell = None

    def column(self, head: str) -> list[str]:
        return [row[self.heads.index(head)] for row in self.rows]


def test_only_comparable_likelihoods_share_a_column():
    results = [_result("pixelcnn", likelihood=(1.25, "bits/dim", 4, True)),
               _result("pixelcnn_mix", likelihood=(3.5, "bits/dim", 256, True)),
               _result("vae", likelihood=(4.75, "bits/dim", 256, False)),
               _result("gan", likelihood=(0, "", 0, True))]
    results[-1]["likelihood"] = None                 # a GAN has none
    table = _Table(render(results))
    four, eight = "held-out bits/dim over 4 levels", "held-out bits/dim over 256 levels"
    assert table.column(four) == ["1.25", "–", "–", "–"]
    assert table.column(eight) == ["–", "3.5", "4.75 (bound)", "–"]
    assert len([h for h in table.heads if "bits/dim" in h]) == 2
    md = markdown(results)
    assert f"| {four} | {eight} |" in md and "| 1.25 | – |" in md and "| – | 4.75 (bound) |" in md


def test_compare_keeps_a_4_level_pixelcnn_apart_from_256_level_likelihoods(image_npz, capsys):
    assert main(["compare", "pixelcnn", "vae", "--data", str(image_npz), "--budget", "2",
                 "--out", "cmp", "-n", "8", "--features", "pixels", "--no-progress", *TINY_AE,
                 "--set", "pixelcnn.filters=8", "--set", "pixelcnn.residual_blocks=1",
                 "--set", "pixelcnn.image_size=8"]) == 0
    pixelcnn, vae = json.loads(Path("cmp/results.json").read_text())
    assert pixelcnn["likelihood"]["levels"] == 4 and pixelcnn["likelihood"]["exact"]
    assert vae["likelihood"]["levels"] == 256 and not vae["likelihood"]["exact"]
    assert pixelcnn["likelihood"]["value"] == pytest.approx(pixelcnn["held_out"]["bpd"])
    table = _Table(Path("cmp/report.html").read_text())
    four = table.column("held-out bits/dim over 4 levels")
    eight = table.column("held-out bits/dim over 256 levels")
    assert four[1] == "–" and eight[0] == "–"
    assert float(four[0]) == pytest.approx(pixelcnn["likelihood"]["value"], rel=1e-3)
    assert eight[1].endswith(" (bound)")


def test_a_minutes_budget_sets_sampling_and_measuring_aside():
    from genzoo.commands.compare import MEASURE_SHARE, MIN_SAMPLES, TRAIN_SHARE, plan
    fast = plan("x", 1.0, per_sample=0.001, probe_s=1.0, n=1000)
    assert fast["n"] == 1000 and not fast["notes"]
    assert fast["train_minutes"] * 60 == pytest.approx(60 - 1.0 - 1.0 - MEASURE_SHARE * 60)
    slow = plan("x", 1.0, per_sample=1.0, probe_s=1.0, n=1000)      # 1000 s of sampling
    assert slow["n"] == MIN_SAMPLES and "drew 50 samples, not 1000" in slow["notes"][0]
    assert slow["train_minutes"] == pytest.approx(TRAIN_SHARE)       # training keeps its least
    middle = plan("x", 1.0, per_sample=0.1, probe_s=0.0, n=1000)
    assert middle["n"] == 240                                        # 40% of 60 s at 0.1 s


def test_compare_in_minutes_covers_sampling_with_fast_options_and_says_the_cost(image_npz,
                                                                                 capsys):
    tiny_ddpm = ["--set", "widths=[8,16]", "--set", "bottleneck=16", "--set", "blocks=1",
                 "--set", "attention=[4]", "--set", "emb_dim=8", "--set", "T=100",
                 "--set", "image_size=8", "--set", "sample_steps=4"]
    assert main(["compare", "ddpm", "--data", str(image_npz), "--budget", "0.05min",
                 "--out", "cmp", "-n", "20", "--features", "pixels", "--no-progress",
                 *tiny_ddpm]) == 0
    printed = capsys.readouterr().out
    (ddpm,) = json.loads(Path("cmp/results.json").read_text())
    assert ddpm["sample_options"] == {"sampler": "dpm++2m", "steps": 20}   # not its own 4-step ddim
    assert ddpm["budget_seconds"] == pytest.approx(3.0) and ddpm["probe_seconds"] > 0
    plan = json.loads(Path("cmp/runs/ddpm.budget.json").read_text())
    assert 0 < plan["train_minutes"] < 0.05 and plan["n"] <= 20
    assert "| cost |" in printed and " of 3.0 s (train " in printed
    assert "note: sampled with the family's fast options: sampler=dpm++2m, steps=20" in printed
