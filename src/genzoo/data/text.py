"""Text: corpora and records -> windows of token ids (N, T + 1) for next-token prediction.

Spec forms:

- ``corpus.txt``: one corpus. With a record template (``--set data.template="{text}"``,
  the field ``text`` being the line), one document per non-empty line instead.
- ``reviews.csv`` / ``recipes.jsonl``: one document per record, rendered by the template,
  e.g. ``"wine review : {country} : {province} : {variety} : {description}"`` or
  ``"Recipe for {title} | {directions}"`` (a list is joined with spaces). Records missing a
  field are skipped; a field no record has is an error. Without a template a .csv with one
  column, or a ``text`` column, is read as that column.
- ``stories/``: a folder whose files are .txt, one document per file (sorted by name).

Each document is tokenized (``data.tokenizer``: char | word | bpe, see tokenizers.py) and
closed by ``END``, which also opens the first. One corpus or a folder of files is *packed*:
the stream ``END d1 END d2 END ...`` is cut in order into windows of ``context + 1`` tokens
that overlap by one, so every token is a target once and the last windows (the held-out
split) are the end of the text. Records are *padded*: one window per document, as long as
the longest document (at most ``context + 1``; longer ones continue in further windows),
filled with ``PAD``; the documents are put in a fixed shuffled order (seed 0), so that the
held-out suffix is a fair sample even of a sorted file (names.txt lists popular names first). ``items["mask"]`` is False on padding, which never counts in a loss.
"""
from __future__ import annotations

import csv
import io
import json
import string
import sys
from pathlib import Path

import torch

from genzoo.data import DataOptions, reader
from genzoo.data import tokenizers as tk
from genzoo.data.dataset import TensorDataset
from genzoo.errors import GenzooError


def read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise GenzooError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                          f"offset {e.start}); convert it with e.g. iconv -t utf-8") from None
    if not text.strip():
        raise GenzooError(f"{path}: is empty")
    return text


def template_fields(template: str, where: str) -> list[str]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise GenzooError(f"{where}: bad template {template!r} ({e})") from None
    if not fields or any(not f or not f.isidentifier() for f in fields):
        raise GenzooError(f"{where}: the template {template!r} must name fields like {{title}}")
    return fields


def render(template: str, records: list[dict], where: str) -> tuple[list[str], int]:
    """Documents from ``records`` by ``template``, and how many records lacked a field."""
    fields = template_fields(template, where)
    known = set().union(*(r.keys() for r in records)) if records else set()
    for f in fields:
        if f not in known:
            raise GenzooError(f"{where}: the template names {{{f}}}, which no record has "
                              f"(fields: {', '.join(sorted(known)) or 'none'})")
    docs, skipped = [], 0
    for r in records:
        values = {}
        for f in fields:
            v = r.get(f)
            if isinstance(v, list):
                v = " ".join(map(str, v))
            if v is None or v == "":
                break
            values[f] = str(v)
        else:
            docs.append(template.format_map(values))
            continue
        skipped += 1
    return docs, skipped


def parse_csv(text: str, where) -> list[dict]:
    """The records of a .csv file's text (a header line, then one record per row)."""
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows:
        raise GenzooError(f"{where}: has a header but no records")
    return rows


def parse_jsonl(text: str, where) -> list[dict]:
    """The records of a .jsonl file's text (one JSON object per non-empty line)."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise GenzooError(f"{where} line {n}: not JSON ({e.msg})") from None
            if not isinstance(r, dict):
                raise GenzooError(f"{where} line {n}: a record must be a JSON object")
            rows.append(r)
    return rows


def _read_csv(path: Path) -> list[dict]:
    return parse_csv(read_text(path), path)


def _read_jsonl(path: Path) -> list[dict]:
    return parse_jsonl(read_text(path), path)


def _default_template(path: Path, records: list[dict]) -> str:
    columns = list(records[0])
    if len(columns) == 1 or "text" in columns:
        return "{%s}" % (columns[0] if len(columns) == 1 else "text")
    raise GenzooError(f"{path}: name the fields to read with a template, e.g. "
                      f"--set data.template=\"{{{columns[0]}}}\" (fields: {', '.join(columns)})")


def _is_text_folder(p: Path) -> bool:
    return p.is_dir() and any(p.glob("*.txt")) and not any(
        f.is_file() and f.suffix.lower() != ".txt" and not f.name.startswith(".")
        for f in p.iterdir())


# ------------------------------------------------------------------------------ readers
@reader(lambda p: p.is_file() and p.suffix.lower() == ".txt")
def read_txt(path: Path, options: DataOptions) -> TensorDataset:
    text = read_text(path)
    if options.template is None:
        return build([text], options, str(path), packed=True)
    lines = [{"text": line, "line": line} for line in text.splitlines() if line.strip()]
    docs, _ = render(options.template, lines, str(path))
    return build(docs, options, str(path), packed=False)


@reader(lambda p: p.is_file() and p.suffix.lower() in (".csv", ".jsonl"))
def read_records(path: Path, options: DataOptions) -> TensorDataset:
    records = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    if not records:
        raise GenzooError(f"{path}: has no records")
    template = options.template or _default_template(path, records)
    docs, skipped = render(template, records, str(path))
    if not docs:
        raise GenzooError(f"{path}: every record lacks a field of the template {template!r}")
    ds = build(docs, options, str(path), packed=False)
    if skipped:
        ds.meta["notes"].append(f"skipped {skipped} records lacking a field of the template")
    return ds


@reader(_is_text_folder)
def read_folder(path: Path, options: DataOptions) -> TensorDataset:
    files = sorted(path.glob("*.txt"))
    docs = []
    for f in files:
        try:
            docs.append(read_text(f))
        except GenzooError:
            if f.read_bytes().strip():    # not UTF-8: say so; an empty file is just skipped
                raise
    if not docs:
        raise GenzooError(f"{path}: every .txt file in it is empty")
    return build(docs, options, str(path), packed=True)


# ------------------------------------------------------------------------------ windows
def build(docs: list[str], options: DataOptions, source: str, packed: bool,
          tokenizer: tk.Tokenizer | None = None) -> TensorDataset:
    """The windows of ``docs`` (see the module docstring), tokenizer fitted to them."""
    T = options.context
    if T < 1:
        raise GenzooError(f"data.context={T}: must be at least 1")
    tok = tokenizer or tk.train(options.tokenizer or "char", docs, options.vocab_size)
    encoded = [tok.encode(d) for d in docs]
    if packed:
        stream = [tk.END]
        for ids in encoded:
            stream += ids + [tk.END]
        if len(stream) < T + 1:
            raise GenzooError(f"{source}: the text has {len(stream) - 1 - len(encoded)} tokens, fewer than "
                              f"the context + 1 ({T + 1}); use a smaller data.context")
        windows = [stream[s:s + T + 1] for s in range(0, len(stream) - 1, T)]
        length = T + 1
    else:
        pieces = []
        order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(0))
        for ids in (encoded[i] for i in order.tolist()):
            seq = [tk.END] + ids + [tk.END]
            pieces += [seq[s:s + T + 1] for s in range(0, len(seq) - 1, T)]
        windows, length = pieces, min(T + 1, max(map(len, pieces)))
    x = torch.full((len(windows), length), tk.PAD, dtype=torch.long)
    for i, w in enumerate(windows):
        x[i, :len(w)] = torch.tensor(w, dtype=torch.long)
    mask = torch.zeros_like(x, dtype=torch.bool)
    for i, w in enumerate(windows):
        mask[i, :len(w)] = True
    unk = sum(ids.count(tk.UNK) for ids in encoded)
    n_tokens = sum(map(len, encoded))
    notes = [f"{tok.kind} tokenizer, {tok.vocab_size} tokens; {len(docs)} document(s), "
             f"{n_tokens:,} tokens -> {len(windows)} {'packed' if packed else 'padded'} "
             f"windows of {length}"
             + (f"; {unk / max(1, n_tokens):.1%} of tokens unknown" if unk else "")]
    meta = {"tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size, "packed": packed,
            "notes": notes}
    return TensorDataset(x=x, modality="text", source=source, meta=meta, items={"mask": mask})
