"""Statistics of generated token sequences against real ones (text, and music as tokens).

- n-gram novelty: the share of a sample's n-grams that never occur in the training data. A
  model that copies its training text scores ~0; real held-out text scores what honest
  novelty looks like for this data, which is the number to compare against.
- repetition: the share of a sample's n-grams that repeat an earlier n-gram of the same
  sample (1 - distinct-n, Li et al. 2016); degenerate loops ("the the the") push it up
  (Holtzman et al. 2020). Again, held-out text shows the natural level.

Sequences are lists of token ids (or characters): the statistics need no tokenizer. The text
modality's evaluator (:func:`measure`) decodes samples and reference rows and counts words.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from genzoo.data.passes import batches
from genzoo.evaluation.modalities import Samples, evaluator

ROWS = 1024             # dataset rows decoded at a time


def ngrams(seq: Sequence, n: int) -> list[tuple]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def ngram_set(sequences: Iterable[Sequence], n: int) -> set[tuple]:
    out: set[tuple] = set()
    for s in sequences:
        out.update(ngrams(list(s), n))
    return out


def novelty(samples: Iterable[Sequence], reference: set[tuple], n: int) -> float:
    """Share of the samples' n-grams (with multiplicity) absent from ``reference``."""
    total = new = 0
    for s in samples:
        for g in ngrams(list(s), n):
            total += 1
            new += g not in reference
    return new / total if total else float("nan")


def repetition(samples: Iterable[Sequence], n: int) -> float:
    """Share of n-grams that repeat an earlier one in the same sample (1 - distinct-n)."""
    total = repeated = 0
    for s in samples:
        grams = ngrams(list(s), n)
        total += len(grams)
        repeated += len(grams) - len(set(grams))
    return repeated / total if total else float("nan")


def text_statistics(samples: Sequence[Sequence], train: Sequence[Sequence],
                    held_out: Sequence[Sequence], orders: Sequence[int] = (2, 3, 4)) -> dict:
    """Novelty and repetition of ``samples`` and, for scale, of ``held_out``, per n-gram order."""
    out = {}
    for n in orders:
        ref = ngram_set(train, n)
        out[f"novelty_{n}"] = novelty(samples, ref, n)
        out[f"held_out_novelty_{n}"] = novelty(held_out, ref, n)
        out[f"repetition_{n}"] = repetition(samples, n)
        out[f"held_out_repetition_{n}"] = repetition(held_out, n)
    out["mean_length"] = sum(len(s) for s in samples) / max(1, len(samples))
    return out


def _texts(x, info) -> list[str]:
    """Samples or dataset rows as strings: token-id rows are decoded (pad ids dropped)."""
    if not isinstance(x, torch.Tensor):
        return [str(s) for s in x]
    from genzoo.data.tokenizers import PAD, from_dict
    tok = from_dict(info.meta["tokenizer"])
    return [tok.decode([i for i in row if i != PAD]) for row in x.long().cpu().tolist()]


@evaluator("text")
def measure(s: Samples) -> dict:
    """Word n-gram novelty and repetition of the samples, beside the held-out text's."""
    def words(x):
        return [t.split() for t in _texts(x, s.info)]

    def rows(ds):       # a dataset's rows, a batch at a time (it may be streamed)
        return [w for b in batches(ds, ROWS) for w in words(b["x"])]
    ref = rows(s.reference)
    train = rows(s.train) if s.train is not None else ref
    return {"features": {"name": "word n-grams", "is_fid": False, "cached_reference": False},
            "metrics": text_statistics(words(s.x), train, ref)}
