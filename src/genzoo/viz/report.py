"""The HTML report: one static page that opens from disk, with no server and no internet.

Everything is inside the file: pictures are PNG data: URIs, the style sheet is inline, there
is no script. One row per run in a table (genzoo.viz.results: family, taxonomy, parameters,
training and sampling time, the metrics of its modality in the feature space named above the
table, one column per comparable kind of likelihood), then each run's samples side by side,
its loss curves and, where the family has one, its latent plot.
"""
from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

from genzoo import __version__
from genzoo.viz.plots import plt
from genzoo.viz.results import Cell, table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 90em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.name, th.name { text-align: left; }
.flag { color: #b00; font-weight: bold; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; } figcaption { text-align: center; font-size: 0.9em; }
img { image-rendering: pixelated; max-width: 24em; border: 1px solid #ddd; }
figure.samples img { width: 16em; }
.note { color: #555; font-size: 0.9em; } pre { max-width: 40em; white-space: pre-wrap; }
"""


def data_uri(path_or_bytes) -> str:
    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def loss_curve_png(records: list[dict], title: str) -> bytes | None:
    """Every logged ``*loss`` against the step, as PNG bytes (None when nothing was logged)."""
    keys = sorted({k for r in records for k in r if k.endswith("loss")})
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=90)
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if k in r and "step" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1.2,
                marker="o" if len(pts) < 20 else None, ms=3)
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _cell(c: Cell) -> str:
    text = html.escape(c.text)
    if c.flag:
        return f'<span class="flag">{text}: {html.escape(c.flag)}</span>'
    return text


def _row(family: str, cells: list[Cell]) -> str:
    tds = "".join(f'<td class="name">{_cell(c)}</td>' if i < 2 else f"<td>{_cell(c)}</td>"
                  for i, c in enumerate(cells))
    return f'<tr class="family" data-family="{html.escape(family)}">{tds}</tr>'


def _figure(src: str, caption: str, family: str, kind: str) -> str:
    cap = html.escape(caption)
    return (f'<figure class="{kind}" data-family="{html.escape(family)}">'
            f'<img alt="{cap}" src="{src}"><figcaption>{cap}</figcaption></figure>')


def _samples_block(r: dict) -> str:
    run = Path(r["run"])
    grid = r.get("sample_grid")
    if grid and Path(run / grid).suffix == ".png" and (run / grid).is_file():
        return _figure(data_uri(run / grid), r["family"], r["family"], "samples")
    if grid and (run / grid).is_file():
        text = (run / grid).read_text(errors="replace")[:3000]
        return (f'<figure class="samples" data-family="{html.escape(r["family"])}">'
                f"<pre>{html.escape(text)}</pre><figcaption>{html.escape(r['family'])}</figcaption></figure>")
    return f'<p class="note">{html.escape(r["family"])}: no samples drawn</p>'


def render(results: list[dict], title: str = "genzoo report") -> str:
    """The whole page for evaluation results (dicts of :func:`genzoo.evaluation.run_eval.evaluate_run`)."""
    from genzoo.training.run import RunDir
    spaces = sorted({r.get("features", {}).get("name", "–") for r in results})
    all_fid = all(r.get("features", {}).get("is_fid") for r in results)
    refs = sorted({f"{r['reference']['source']} ({r['reference']['items']} items)" for r in results})
    head, rows = table(results)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>Reference: {html.escape(', '.join(refs))}. Samples per run: "
             f"{', '.join(sorted({str(r['n_samples']) for r in results}))}.</p>",
             f"<p>Feature space: <b>{html.escape('; '.join(spaces))}</b>. "
             + ("The distance is the standard FID (InceptionV3, pytorch-fid weights)."
                if all_fid else "The distance is a Fréchet distance in this space, <b>not</b> FID: "
                "numbers compare runs of this report, not published FIDs.") + "</p>"]
    notes = [f"{r['family']}: {n}" for r in results for n in r.get("notes", [])]
    if len(results) > 1 and len({n for r in results for n in r.get("notes", [])}) == 1 \
            and all(r.get("notes") for r in results):
        notes = [results[0]["notes"][0]]            # one note shared by every run
    parts += [f'<p class="note">Note: {html.escape(n)}</p>' for n in notes]
    parts.append('<table id="results"><thead><tr>'
                 + "".join(f'<th class="{"name" if i < 2 else ""}">{html.escape(h)}</th>'
                           for i, h in enumerate(head))
                 + "</tr></thead><tbody>"
                 + "".join(_row(r["family"], cells) for r, cells in zip(results, rows))
                 + "</tbody></table>")
    parts.append('<h2>Samples</h2><div class="row" id="samples">'
                 + "".join(_samples_block(r) for r in results) + "</div>")
    curves, latents = [], []
    for r in results:
        run = RunDir(r["run"])
        png = loss_curve_png(run.metrics(), r["family"])
        if png is not None:
            curves.append(_figure(data_uri(png), f"{r['family']}: losses", r["family"], "curve"))
        scatter = run.path / "showcase" / "latent_scatter.png"
        if scatter.is_file():
            latents.append(_figure(data_uri(scatter), f"{r['family']}: latent space", r["family"], "latent"))
    if curves:
        parts.append('<h2>Loss curves</h2><div class="row" id="curves">' + "".join(curves) + "</div>")
    if latents:
        parts.append('<h2>Latent spaces</h2><div class="row" id="latents">' + "".join(latents) + "</div>")
    parts.append(f'<p class="note">genzoo {__version__}, {time.strftime("%Y-%m-%d %H:%M")}. '
                 "Precision/recall: k-NN manifolds, k = 3 (Kynkäänniemi et al. 2019); KID: "
                 "unbiased MMD², cubic kernel, mean ± std over 100 subsets; novelty: share of "
                 "samples that are near-copies of a training item (nearer than half the distance "
                 "95% of held-out items keep), beside the same share of held-out items; "
                 "memorising only when copies exceed that baseline; likelihoods: "
                 "one column per unit and number of levels, a bound (an ELBO, or the density of "
                 "dequantised data) marked as one.</p>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(results: list[dict], path: str | Path, title: str = "genzoo report") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(results, title), encoding="utf-8")
    tmp.replace(path)
    return path
