"""Tokenizers: text <-> token ids, at the level of characters, words or byte pairs.

Every tokenizer reserves the same three special ids: ``PAD`` (0, fills a window after its
document ends and never counts in a loss), ``END`` (1, closes a document and opens the next,
so it is also where a sample starts) and ``UNK`` (2, a word or character outside the
vocabulary). Each one is saved as a JSON-able dict (``to_dict``) kept in the run's data info,
so a trained run is rebuilt and sampled without its corpus (``from_dict``).

- ``char``: one token per character seen in the corpus (Karpathy's char-rnn).
- ``word``: lower-cased words, each punctuation mark its own token, newline kept; the
  ``vocab_size`` most frequent tokens, the rest ``UNK`` (Foster's recipe: 10,000 words).
- ``bpe``: byte-pair encoding (Sennrich et al. 2016) over UTF-8 bytes, as GPT-2 (Radford et
  al. 2019): start from the 256 bytes, repeatedly merge the most frequent adjacent pair
  within pre-split chunks (a word with its leading space, a run of digits, punctuation or
  spaces) until ``vocab_size`` tokens. Any text round-trips exactly.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict

from genzoo.errors import GenzooError

PAD, END, UNK = 0, 1, 2
SPECIALS = ["<pad>", "<end>", "<unk>"]
KINDS = ("char", "word", "bpe")


class Tokenizer:
    kind = ""

    def __init__(self, tokens: list[str]):
        self.tokens = list(tokens)                       # id -> display string
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def token_str(self, i: int) -> str:
        """How token ``i`` reads on its own (for tables and attention pictures)."""
        return self.tokens[int(i)]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}


class CharTokenizer(Tokenizer):
    kind = "char"

    @classmethod
    def train(cls, texts: list[str], vocab_size: int | None = None) -> "CharTokenizer":
        chars = sorted(set().union(*map(set, texts)))
        return cls(SPECIALS + chars)

    def encode(self, text):
        get = self.index.get
        return [get(c, UNK) for c in text]

    def decode(self, ids):
        return "".join(self.tokens[i] if i > UNK else ("?" if i == UNK else "") for i in map(int, ids))


# a word (with inner apostrophes: don't, o'er), one punctuation mark, or a newline
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]|\n")
_NO_SPACE_BEFORE = set(".,;:!?)]}%\n")
_NO_SPACE_AFTER = set("([{$\n")


class WordTokenizer(Tokenizer):
    kind = "word"

    @staticmethod
    def split(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    @classmethod
    def train(cls, texts: list[str], vocab_size: int = 10000) -> "WordTokenizer":
        if vocab_size <= len(SPECIALS):
            raise GenzooError(f"data.vocab_size={vocab_size}: must exceed {len(SPECIALS)}")
        counts = Counter()
        for t in texts:
            counts.update(cls.split(t))
        # most frequent first; ties in alphabetical order, so the vocabulary is reproducible
        words = sorted(counts, key=lambda w: (-counts[w], w))[:vocab_size - len(SPECIALS)]
        return cls(SPECIALS + words)

    def encode(self, text):
        get = self.index.get
        return [get(w, UNK) for w in self.split(text)]

    def decode(self, ids):
        out = []
        prev = "\n"
        for i in map(int, ids):
            if i <= END:
                continue
            w = self.tokens[i]
            if out and w[0] not in _NO_SPACE_BEFORE and prev[-1] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(w)
            prev = w
        return "".join(out)


# GPT-2's pre-split, in Python's re: contractions, letters, digits, other symbols, spaces
_CHUNK = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+")
_BYTES = len(SPECIALS)          # id of byte b is _BYTES + b


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, merges: list[tuple[int, int]]):
        self.merges = [tuple(m) for m in merges]
        self.pieces = [b""] * _BYTES + [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.pieces.append(self.pieces[a] + self.pieces[b])
        self.rank = {m: _BYTES + 256 + r for r, m in enumerate(self.merges)}   # pair -> new id
        super().__init__(SPECIALS + [p.decode("utf-8", "replace") for p in self.pieces[_BYTES:]])
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, texts: list[str], vocab_size: int = 10000) -> "BPETokenizer":
        """Learn merges from chunk frequencies, updating pair counts only where a merge
        changes a chunk (the classic incremental algorithm)."""
        if vocab_size < _BYTES + 256:
            raise GenzooError(f"data.vocab_size={vocab_size}: byte-pair encoding needs at "
                              f"least {_BYTES + 256} (3 special tokens and 256 bytes)")
        freq = Counter()
        for t in texts:
            freq.update(_CHUNK.findall(t))
        words = [[_BYTES + b for b in w.encode("utf-8")] for w in freq]
        counts = list(freq.values())
        pairs: Counter = Counter()
        where: dict[tuple, set] = defaultdict(set)
        for wi, w in enumerate(words):
            for p in zip(w, w[1:]):
                pairs[p] += counts[wi]
                where[p].add(wi)
        # a lazy max-heap of (-count, pair): stale entries are skipped when popped
        heap = [(-c, p) for p, c in pairs.items()]
        heapq.heapify(heap)
        merges = []
        while _BYTES + 256 + len(merges) < vocab_size and heap:
            neg, best = heapq.heappop(heap)
            if pairs.get(best, 0) != -neg:
                continue
            if -neg < 2:
                break
            new = _BYTES + 256 + len(merges)
            merges.append(best)
            touched = set()
            for wi in where.pop(best, ()):
                w, c = words[wi], counts[wi]
                for p in zip(w, w[1:]):          # forget this chunk's old pairs
                    pairs[p] -= c
                    touched.add(p)
                w = _merge(w, best, new)
                words[wi] = w
                for p in zip(w, w[1:]):          # and count its new ones
                    pairs[p] += c
                    where[p].add(wi)
                    touched.add(p)
            pairs.pop(best, None)
            touched.discard(best)
            for p in touched:
                if pairs[p] > 0:
                    heapq.heappush(heap, (-pairs[p], p))
                else:
                    del pairs[p]
        return cls(merges)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = self._cache.get(chunk)
        if ids is None:
            ids = [_BYTES + b for b in chunk.encode("utf-8")]
            while len(ids) > 1:       # apply the earliest-learned merge present, as in training
                pair = min(zip(ids, ids[1:]), key=lambda p: self.rank.get(p, 1 << 60))
                if pair not in self.rank:
                    break
                ids = _merge(ids, pair, self.rank[pair])
            self._cache[chunk] = ids
        return ids

    def encode(self, text):
        return [i for chunk in _CHUNK.findall(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids):
        return b"".join(self.pieces[i] for i in map(int, ids) if i >= _BYTES).decode("utf-8", "replace")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "merges": [list(m) for m in self.merges]}


def _merge(ids: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train(kind: str, texts: list[str], vocab_size: int = 10000) -> Tokenizer:
    """A tokenizer of ``kind`` fitted to ``texts``."""
    if kind not in KINDS:
        raise GenzooError(f"data.tokenizer={kind!r}: must be one of {', '.join(KINDS)}")
    cls = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}[kind]
    return cls.train(texts, vocab_size)


def from_dict(d: dict) -> Tokenizer:
    """The tokenizer saved by ``to_dict``."""
    kind = d.get("kind")
    if kind == "bpe":
        return BPETokenizer(d["merges"])
    if kind in ("char", "word"):
        return (CharTokenizer if kind == "char" else WordTokenizer)(d["tokens"])
    raise GenzooError(f"unknown tokenizer kind {kind!r} in the run's data info")
