"""Text samples and what a language model shows once trained.

The writer for modality "text" prints the samples and writes ``STEM.txt``; its columns in
reports are word 3-gram novelty and repetition beside the held-out text's. The showcase
writes samples at two temperatures, the five likeliest next tokens after a prompt at two
temperatures (Foster's table: the lower the temperature, the more the likeliest token wins),
and for a transformer the attention of every head over the prompt, as a picture and as an
HTML page where each token is shaded by how much the last position attends to it.
"""
from __future__ import annotations

import html
from pathlib import Path

import torch
from tqdm import tqdm

from genzoo.models.base import DataInfo
from genzoo.viz.results import Cell, Column, columns
from genzoo.viz.samples import writer

RULE = "-" * 60


@writer("text")
def write_texts(texts, info: DataInfo, stem: Path, quiet: bool = False, **extra) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = stem.with_suffix(".txt")
    body = f"\n{RULE}\n".join(texts) + "\n"
    path.write_text(body, encoding="utf-8")
    if not quiet:
        tqdm.write(body + RULE)      # tqdm.write keeps a running progress bar intact
    return [path]


def _against_held_out(key: str):
    def show(r: dict) -> Cell:
        m = r.get("metrics", {})
        if key not in m:
            return Cell()
        return Cell(f"{m[key]:.0%} (held-out {m['held_out_' + key]:.0%})")
    return show


@columns("text")
def text_columns(results: list[dict]) -> list[Column]:
    """Share of word 3-grams new to the training text, and repeated within a sample."""
    return [Column("new 3-grams", _against_held_out("novelty_3")),
            Column("repeated 3-grams", _against_held_out("repetition_3"))]


def next_token_table(model, prompt: str | None, temperatures=(1.0, 0.5), k: int = 5) -> str:
    """The ``k`` likeliest next tokens after ``prompt`` with their probabilities, per
    temperature, as plain text."""
    lines = [f"prompt: {prompt!r}"]
    for tau in temperatures:
        p = model.next_token_probs(prompt, tau)
        top = p.topk(min(k, len(p)))
        lines.append(f"temperature {tau}:")
        for prob, i in zip(top.values.tolist(), top.indices.tolist()):
            lines.append(f"  {model.tokenizer.token_str(i)!r:>16}  {prob:7.2%}")
    return "\n".join(lines)


def attention_png(tokens: list[str], maps: list[torch.Tensor], path: Path) -> Path:
    """One heat map per block and head: row t is where position t looks."""
    from genzoo.viz.plots import plt, save_figure     # the headless backend, set there
    L, H = len(maps), maps[0].shape[0]
    n = len(tokens)
    size = max(2.5, 0.18 * n)
    fig, axes = plt.subplots(L, H, figsize=(size * H, size * L), squeeze=False)
    labels = [repr(t)[1:-1] for t in tokens]
    for l, m in enumerate(maps):
        for h in range(H):
            ax = axes[l][h]
            ax.imshow(m[h].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"block {l + 1}, head {h + 1}", fontsize=8)
            if n <= 64:
                ax.set_xticks(range(n), labels, rotation=90, fontsize=6)
                ax.set_yticks(range(n), labels, fontsize=6)
            else:
                ax.set_xticks([]), ax.set_yticks([])
    save_figure(fig, path, dpi=100)
    return path


def attention_html(tokens: list[str], maps: list[torch.Tensor], path: Path) -> Path:
    """Per block and head, the prompt with each token shaded by the last position's
    attention to it."""
    rows = []
    for l, m in enumerate(maps):
        for h in range(m.shape[0]):
            w = m[h, -1]
            w = w / w.max().clamp_min(1e-9)
            spans = "".join(
                f'<span title="{float(m[h, -1, i]):.3f}" style="background:rgba(255,140,0,'
                f'{float(w[i]):.2f})">{html.escape(t).replace(chr(10), "&#8629;<br>")}</span>'
                for i, t in enumerate(tokens))
            rows.append(f"<tr><td>block {l + 1}, head {h + 1}</td><td class=t>{spans}</td></tr>")
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>attention over the prompt</title>"
        "<style>body{font-family:sans-serif}td{padding:4px;vertical-align:top}"
        ".t{font-family:monospace;white-space:pre-wrap}</style>"
        "<p>How much the last position attends to each earlier token (hover for the weight)."
        f"</p><table>{''.join(rows)}</table>", encoding="utf-8")
    return path


def _prompt_from(model, data) -> str:
    """The first words of a held-out window, as a prompt the model has not trained on."""
    ids = [i for i in data.x[0].tolist() if i > 2][:24]
    text = model.tokenizer.decode(ids)
    if model.tokenizer.kind == "word":
        return " ".join(text.split()[:6])
    return text[:24]


@torch.no_grad()
def showcase(model, data, out: Path, generator: torch.Generator | None = None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    prompt = _prompt_from(model, data)
    files = []
    for tau in (1.0, 0.5):
        texts = model.sample(4, generator=generator, max_tokens=200, temperature=tau)
        files += write_texts(texts, model.data, out / f"samples_t{tau:g}".replace(".", "_"), quiet=True)
        texts = model.sample(4, generator=generator, prompt=prompt, max_tokens=200, temperature=tau)
        files += write_texts(texts, model.data, out / f"prompted_t{tau:g}".replace(".", "_"), quiet=True)
    table = out / "next_token.txt"
    table.write_text(next_token_table(model, prompt) + "\n", encoding="utf-8")
    files.append(table)
    if hasattr(model, "attention_maps"):
        tokens, maps = model.attention_maps(prompt)
        files.append(attention_png(tokens, maps, out / "attention.png"))
        files.append(attention_html(tokens, maps, out / "attention.html"))
    return files
