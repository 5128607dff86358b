"""Points in R^D: the two-moons builtin and .csv files of numbers -> float32 (N, D).

A points .csv has numeric columns, an optional header row, and optionally a label column
named ``label`` (or ``y``, unless there is also an ``x`` column: then ``x,y`` are the two
coordinates). Labels may be integers or names (class names, sorted). This reader takes a
.csv when, in its first rows, every column but the label holds mostly numbers (a stray word
is then reported with its line), so a text reader can take the others (records such as
``country,description``). A first row without any number is the header.

Coordinates are kept as they are (not standardised): a family that wants zero-mean,
unit-variance inputs does that itself and keeps the map, so samples come back in data units.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from genzoo.data import DataOptions, builtin, reader
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError

_PEEK = 20   # rows looked at to decide whether a .csv is points


@builtin("moons")
def moons(options: DataOptions) -> TensorDataset:
    """scikit-learn's two interleaving half circles: 10,000 points, noise 0.05, seed 0.

    Raw coordinates: x1 within about [-1.2, 2.2], x2 within about [-0.7, 1.2]; label 0 is
    the upper moon.
    """
    from sklearn.datasets import make_moons
    x, y = make_moons(n_samples=10_000, noise=0.05, random_state=0)
    return TensorDataset(x=torch.from_numpy(x.astype(np.float32)), modality="points",
                         source="moons", y=torch.from_numpy(y.astype(np.int64)),
                         class_names=["upper moon", "lower moon"])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _label_column(header: list[str] | None) -> int | None:
    if header is None:
        return None
    names = [h.strip().lower() for h in header]
    if "label" in names:
        return names.index("label")
    if "y" in names and "x" not in names:
        return names.index("y")
    return None


def _rows(path: Path, limit: int | None = None):
    """The header (or None) and (line number, cells) of each non-blank row, up to ``limit``."""
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        lines = csv.reader(fh)
        for cells in lines:
            if any(c.strip() for c in cells):
                rows.append((lines.line_num, cells))
                if limit is not None and len(rows) > limit:
                    break
    header = None
    if rows and not any(_is_number(c) for c in rows[0][1]):     # names only: a header
        header = rows.pop(0)[1]
    return header, rows


def _accepts(path: Path) -> bool:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    try:
        header, rows = _rows(path, _PEEK)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    label = _label_column(header)
    numbers: dict[int, list[bool]] = {}
    for _, cells in rows:
        for i, c in enumerate(cells):
            if i != label:
                numbers.setdefault(i, []).append(_is_number(c))
    # every column mostly numbers: points, and a stray word is reported with its line
    return all(2 * sum(v) > len(v) for v in numbers.values())


@reader(_accepts)
def read_points_csv(path: Path, options: DataOptions | None = None) -> TensorDataset:
    """Points (and labels) from a .csv; errors name the file and the line at fault."""
    spec = str(path)
    try:
        header, rows = _rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise GenzooError(f"{spec}: cannot read it as UTF-8 csv ({e})") from None
    if header is None and not rows:
        raise GenzooError(f"{spec}: the csv is empty")
    if not rows:
        raise GenzooError(f"{spec}: the csv has a header but no rows of numbers")
    width = len(header) if header is not None else len(rows[0][1])
    label = _label_column(header)
    names = [h.strip() for h in header] if header else [str(i + 1) for i in range(width)]
    if width - (label is not None) == 0:
        raise GenzooError(f"{spec}: no columns of coordinates, only a label")
    points, labels = [], []
    for line, cells in rows:
        if len(cells) != width:
            raise GenzooError(f"{spec}: line {line} has {len(cells)} columns, expected {width}")
        point = []
        for i, c in enumerate(cells):
            if i == label:
                labels.append(c.strip())
                continue
            try:
                v = float(c)
            except ValueError:
                raise GenzooError(f"{spec}: line {line}, column {names[i]}: {c.strip()!r} "
                                  "is not a number") from None
            if not math.isfinite(v):
                raise GenzooError(f"{spec}: line {line}, column {names[i]}: {c.strip()} "
                                  "is not a finite number")
            point.append(v)
        points.append(point)
    y, class_names = _labels(labels) if label is not None else (None, None)
    return TensorDataset(x=torch.tensor(points, dtype=torch.float32), modality="points",
                         source=spec, y=y, class_names=class_names)


def _labels(values: list[str]):
    """Integer labels as they are; names -> indices into the sorted names."""
    try:
        ints = [float(v) for v in values]
        if all(v.is_integer() and v >= 0 for v in ints):
            return torch.tensor([int(v) for v in ints], dtype=torch.int64), None
    except ValueError:
        pass
    class_names = sorted(set(values))
    index = {c: i for i, c in enumerate(class_names)}
    return torch.tensor([index[v] for v in values], dtype=torch.int64), class_names
