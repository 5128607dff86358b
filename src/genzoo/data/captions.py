"""Captioned images: pictures with one or more sentences each, for CLIP and text-to-image.

Spec forms:

- ``photos/`` (or ``photos.tar`` / ``.zip``) holding images and a ``captions.csv`` (columns
  ``file`` and ``caption``) or ``captions.jsonl`` (``{"file": ..., "caption": ...}``, the caption
  a string or a list of strings). ``file`` is the image's path from the folder holding the
  captions file; a file may have several rows. Images with no caption are left out (with a note).
- ``photos/`` with sidecar text files: ``cat.png`` and ``cat.txt`` (one caption per non-empty
  line) side by side.
- any labelled image set with ``data.captions="a photo of a {class}"`` (several templates
  separated by ``|`` give several captions per image; ``_`` in class names reads as a space).

An item is the image ``x`` (uint8, N C H W) and ``items["caption"]``, int64 (N, K, L): K
captions per image (the most any image has; an image with fewer has rows of ``PAD``), each
``END w_1 .. w_n END`` padded with ``PAD`` to the longest caption, at most ``data.context``
tokens. The tokenizer (``data.tokenizer``, byte pairs unless told otherwise) is fitted to all
captions and kept in the data info like a text set's, so a run reads new prompts as it read
its captions.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import torch

from genzoo.data import DataOptions, reader
from genzoo.data import tokenizers as tk
from genzoo.data.dataset import TensorDataset
from genzoo.data.images import ARCHIVE_EXTS, IMAGE_EXTS, _iter_files, read_files, split_spec
from genzoo.errors import GenzooError

CAPTION_FILES = ("captions.csv", "captions.jsonl")
FIELD = "caption"
EXAMPLES = 16          # captions kept in the data info, for sampling without a prompt


# -------------------------------------------------------------------------- tokens
def encode(texts: list[list[str]], tok: tk.Tokenizer, context: int) -> torch.Tensor:
    """Captions (K_i per item) -> int64 (N, K, L), see the module docstring."""
    if context < 3:
        raise GenzooError(f"data.context={context}: a caption needs at least 3 tokens")
    seqs = [[[tk.END] + tok.encode(c)[:context - 2] + [tk.END] for c in cs] for cs in texts]
    K = max(map(len, seqs))
    L = max(len(s) for cs in seqs for s in cs)
    out = torch.full((len(seqs), K, L), tk.PAD, dtype=torch.long)
    for i, cs in enumerate(seqs):
        for k, s in enumerate(cs):
            out[i, k, :len(s)] = torch.tensor(s)
    return out


def decode(tokens: torch.Tensor, tok: tk.Tokenizer) -> list[list[str]]:
    """(N, K, L) caption tokens -> each item's captions as text (empty rows left out)."""
    return [[tok.decode(row.tolist()) for row in item if int(row[0]) != tk.PAD]
            for item in tokens.cpu()]


def attach(ds: TensorDataset, texts: list[list[str]], options: DataOptions,
           tokenizer: tk.Tokenizer | None = None) -> TensorDataset:
    """``ds`` with the captions ``texts`` (one list per item) as its caption field."""
    if len(texts) != len(ds):
        raise ValueError(f"{len(texts)} caption lists for {len(ds)} images")
    flat = [c for cs in texts for c in cs]
    tok = tokenizer or tk.train(options.tokenizer or "bpe", flat, options.vocab_size)
    tokens = encode(texts, tok, options.context)
    meta = dict(ds.meta)
    meta.setdefault("notes", [])
    meta["notes"] = meta["notes"] + [
        f"{len(flat)} captions ({tokens.shape[1]} at most per image, {tokens.shape[2]} tokens "
        f"at most), {tok.kind} tokenizer of {tok.vocab_size} tokens"]
    meta.update(tokenizer=tok.to_dict(), vocab_size=tok.vocab_size,
                field_modality={**meta.get("field_modality", {}), FIELD: "text"},
                caption_examples=[cs[0] for cs in texts[:EXAMPLES]])
    return TensorDataset(x=ds.x, modality=ds.modality, source=ds.source, y=ds.y,
                         class_names=ds.class_names, meta=meta, items={**ds.items, FIELD: tokens})


def tokenizer_of(meta: dict) -> tk.Tokenizer:
    """The captions' tokenizer from a data info's meta (also through derived data)."""
    if "tokenizer" not in meta and "source_info" in meta:
        meta = meta["source_info"].get("meta", {})
    if "tokenizer" not in meta:
        raise GenzooError("the data has no captions (no tokenizer in its data info)")
    return tk.from_dict(meta["tokenizer"])


# -------------------------------------------------------------------------- templates
def templated(ds: TensorDataset, options: DataOptions) -> TensorDataset:
    """A labelled image set captioned by ``options.captions`` ("a photo of a {class}")."""
    templates = [t.strip() for t in options.captions.split("|") if t.strip()]
    where = f"data.captions={options.captions!r}"
    if FIELD in ds.items:
        raise GenzooError(f"{where}: {ds.source} has captions of its own")
    if ds.modality != "image" or ds.y is None:
        raise GenzooError(f"{where}: {ds.source} has no class labels to caption")
    if not templates or any("{class}" not in t for t in templates):
        raise GenzooError(f"{where}: each template must name {{class}}, e.g. 'a photo of a {{class}}'")
    names = ds.class_names or [str(i) for i in range(ds.num_classes)]
    texts = [[t.replace("{class}", names[int(y)].replace("_", " ")) for t in templates]
             for y in ds.y.tolist()]
    out = attach(ds, texts, options)
    out.meta["caption_templates"] = templates
    return out


# -------------------------------------------------------------------------- folders
def _sidecar(name: str) -> str | None:
    """The image a sidecar caption file belongs with ('a/cat.txt' -> 'a/cat'), else None."""
    return name[:-4] if name.lower().endswith(".txt") else None


def _is_captioned(path: Path, scan: int = 2000) -> bool:
    path, _ = split_spec(path)
    if not (path.is_dir() or path.name.lower().endswith(ARCHIVE_EXTS)):
        return False
    if path.is_dir():
        if any(p.name in CAPTION_FILES for p in path.rglob("captions.*")):
            return True
        files = (p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_file())
    else:
        try:
            files = (n for n, _ in _iter_files(path, want=lambda n: False))
        except Exception:
            return False
    stems, texts = set(), set()
    try:
        for i, name in enumerate(files):
            if PurePosixPath(name).name in CAPTION_FILES:
                return True
            if name.lower().endswith(IMAGE_EXTS):
                stems.add(name.rsplit(".", 1)[0])
            elif _sidecar(name) is not None:
                texts.add(_sidecar(name))
            if stems & texts:
                return True
            if i >= scan:
                break
    except Exception:             # a damaged archive: the image reader says what is wrong
        return False
    return False


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GenzooError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                          f"{e.start})") from None


def _from_file(name: str, data: bytes, spec: str) -> dict[str, list[str]]:
    """{image path: captions} from a captions.csv / .jsonl inside the data at ``name``."""
    # imported here: importing the text module registers its readers, which must come after
    # the points reader's (data/__init__.py keeps that order)
    from genzoo.data.text import parse_csv, parse_jsonl
    where = f"{spec}: {name}"
    text = _text(data, where)
    rows = parse_csv(text, where) if name.endswith(".csv") else parse_jsonl(text, where)
    base = PurePosixPath(name).parent
    out: dict[str, list[str]] = {}
    for n, r in enumerate(rows, 1):
        if "file" not in r or "caption" not in r:
            raise GenzooError(f"{where}: record {n} needs 'file' and 'caption' "
                              f"(has {', '.join(r) or 'nothing'})")
        caps = r["caption"] if isinstance(r["caption"], list) else [r["caption"]]
        caps = [str(c).strip() for c in caps if c is not None and str(c).strip()]
        key = (base / str(r["file"]).strip()).as_posix()
        out.setdefault(key, []).extend(caps)
    return out


@reader(_is_captioned, first=True)
def read_captioned(path, options: DataOptions) -> TensorDataset:
    spec = str(path)
    real, subset = split_spec(path)

    def keep(name):
        return PurePosixPath(name).name in CAPTION_FILES or _sidecar(name) is not None

    ds, names, files = read_files(real, subset, spec, options, keep)
    captions: dict[str, list[str]] = {}
    for name, data in sorted(files.items()):
        if PurePosixPath(name).name in CAPTION_FILES:
            for k, v in _from_file(name, data, spec).items():
                captions.setdefault(k, []).extend(v)
    stems = {n.rsplit(".", 1)[0]: n for n in names}
    for name, data in sorted(files.items()):
        image = stems.get(_sidecar(name) or "")
        if image is not None and PurePosixPath(name).name not in CAPTION_FILES:
            lines = [s.strip() for s in _text(data, f"{spec}: {name}").splitlines() if s.strip()]
            captions.setdefault(image, []).extend(lines)
    unknown = sorted(set(captions) - set(names))
    if unknown:
        raise GenzooError(f"{spec}: a caption names {unknown[0]!r}, which is not an image there"
                          + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    have = [i for i, n in enumerate(names) if captions.get(n)]
    if not have:
        raise GenzooError(f"{spec}: no image has a caption")
    if len(have) < len(names):
        ds = ds.subset(torch.tensor(have))
        ds.meta["notes"] = ds.meta.get("notes", []) + [
            f"left out {len(names) - len(have)} images that have no caption"]
    return attach(ds, [captions[names[i]] for i in have], options)
