"""How evaluation results are shown: one table for the HTML report, `genzoo compare` (Markdown)
and `genzoo eval` (the terminal).

Its columns: what every run has (family, taxonomy, parameters, steps, training time, time per
sample); the columns of each modality present, which the modality registers with
``@columns(name)`` (images and points here: the Fréchet distance, KID, precision/recall and
novelty of their feature space; text in viz/text.py); then one column per kind of likelihood
present. Only likelihoods of one unit over the same number of levels compare (a 4-level
PixelCNN's bits/dim is not beside 256-level ones), so each kind has its own column, named by
its unit and levels, and a bound is marked as one.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Callable

from genzoo.models.base import Likelihood


@dataclass
class Cell:
    text: str = "–"
    flag: str = ""              # a warning beside the value ("memorising")


@dataclass
class Column:
    head: str
    cell: Callable[[dict], Cell]    # one result dict (eval.json) -> its cell


_COLUMNS: dict[str, Callable[[list[dict]], list[Column]]] = {}


def columns(modality: str):
    """Decorator: ``fn(results of this modality) -> [Column]`` shows that modality's metrics."""
    def deco(fn):
        _COLUMNS[modality] = fn
        return fn
    return deco


def modality_columns(modality: str, results: list[dict]) -> list[Column]:
    if modality not in _COLUMNS:
        try:        # a modality module may register its columns on import
            importlib.import_module(f"genzoo.viz.{modality}")
        except ModuleNotFoundError as e:
            if e.name != f"genzoo.viz.{modality}":
                raise
    return _COLUMNS[modality](results) if modality in _COLUMNS else []


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _per_sample(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _cost(r: dict) -> Cell:
    """What the row cost in wall-clock time: training, sampling, measuring (and the budget)."""
    if r.get("eval_seconds") is None:
        return Cell()
    train = r.get("training_seconds") or 0.0
    sampling = r["seconds_per_sample"] * r["n_samples"]
    measure = max(0.0, r["eval_seconds"] - sampling)
    total = train + r["eval_seconds"] + r.get("probe_seconds", 0.0)
    budget = f" of {_duration(r['budget_seconds'])}" if r.get("budget_seconds") else ""
    return Cell(f"{_duration(total)}{budget} (train {_duration(train)}, sample "
                f"{_duration(sampling)}, measure {_duration(measure)})")


GENERAL = [
    Column("family", lambda r: Cell(r["family"])),
    Column("taxonomy", lambda r: Cell(r["taxonomy"])),
    Column("parameters", lambda r: Cell(f"{r['parameters']:,}")),
    Column("steps", lambda r: Cell(str(r.get("steps")))),
    Column("training time", lambda r: Cell(_duration(r.get("training_seconds")))),
    Column("time / sample", lambda r: Cell(_per_sample(r["seconds_per_sample"]))),
    Column("cost", _cost),
]


def likelihood_columns(results: list[dict]) -> list[Column]:
    """One column per kind of likelihood in ``results`` (unit and levels), in order of appearance."""
    kinds: list[Likelihood] = []
    for r in results:
        if r.get("likelihood"):
            lk = Likelihood.from_dict(r["likelihood"])
            if not any(k.comparable_with(lk) for k in kinds):
                kinds.append(dataclasses.replace(lk, exact=True))

    def cell(kind: Likelihood) -> Callable[[dict], Cell]:
        def show(r: dict) -> Cell:
            lk = Likelihood.from_dict(r["likelihood"]) if r.get("likelihood") else None
            if lk is None or not kind.comparable_with(lk):
                return Cell()
            return Cell(f"{lk.value:.4g}" + ("" if lk.exact else " (bound)"))
        return show
    return [Column(f"held-out {k.label()}", cell(k)) for k in kinds]


def table(results: list[dict]) -> tuple[list[str], list[list[Cell]]]:
    """(heads, one row of cells per result)."""
    modalities = list(dict.fromkeys(r.get("modality") for r in results))
    cols = list(GENERAL)
    for m in modalities:
        mine = [r for r in results if r.get("modality") == m]
        for c in modality_columns(m, mine):
            head = f"{m}: {c.head}" if len(modalities) > 1 else c.head
            cols.append(Column(head, lambda r, c=c, m=m: c.cell(r) if r.get("modality") == m
                               else Cell()))
    cols += likelihood_columns(results)
    return [c.head for c in cols], [[c.cell(r) for c in cols] for r in results]


def markdown(results: list[dict]) -> str:
    """The table in Markdown (what `genzoo compare` prints)."""
    heads, rows = table(results)
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(c.text + (f" {c.flag.upper()}" if c.flag else "") for c in row)
              + " |" for row in rows]
    return "\n".join(lines)


def text(result: dict) -> str:
    """One result as aligned ``name  value`` lines for the terminal: its row of the table,
    the feature space and reference, every held-out scalar and the notes."""
    heads, (row,) = table([result])
    rows = [(h, c.text + (f"  {c.flag.upper()}" if c.flag else "")) for h, c in zip(heads, row)]
    rows.insert(len(GENERAL), ("samples", result["n_samples"]))
    rows.insert(len(GENERAL), ("reference", f"{result['reference']['source']} "
                                            f"({result['reference']['items']} items)"))
    if "features" in result:
        rows.insert(len(GENERAL), ("feature space", result["features"]["name"]))
    rows += [(f"held-out {k}", f"{v:.4g}") for k, v in result.get("held_out", {}).items()]
    rows += [("note", note) for note in result.get("notes", [])]
    w = max(len(str(k)) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


# -- images and points: metrics in a feature space -----------------------------------------------
def _number(key: str, spec: str) -> Callable[[dict], Cell]:
    def show(r: dict) -> Cell:
        v = r.get("metrics", {}).get(key)
        return Cell(format(v, spec)) if v is not None else Cell()
    return show


def _kid(r: dict) -> Cell:
    m = r.get("metrics", {})
    return Cell(f"{m['kid']:.4g} ± {m['kid_std']:.2g}") if "kid" in m else Cell()


def _novelty(r: dict) -> Cell:
    nov = r.get("novelty") or {}
    if not nov:
        return Cell()
    if "near_copy_fraction" not in nov:          # an eval.json from before near-copies
        return Cell(f"{nov['close_fraction']:.0%} close (expect {nov['q']:.0%})",
                    "memorising" if nov["memorising"] else "")
    return Cell(f"{nov['near_copy_fraction']:.0%} near-copies (held-out "
                f"{nov['held_out_near_copy_fraction']:.0%})",
                "memorising" if nov["memorising"] else "")


@columns("image")
@columns("points")
def feature_space(results: list[dict]) -> list[Column]:
    """FID only when every run was measured in the standard InceptionV3 space; else FD."""
    fid = all(r.get("features", {}).get("is_fid") for r in results)
    distance = "fid" if fid else "fd"
    return [Column(distance.upper(), _number(distance, ".4g")), Column("KID", _kid),
            Column("precision", _number("precision", ".3f")),
            Column("recall", _number("recall", ".3f")), Column("novelty", _novelty)]
