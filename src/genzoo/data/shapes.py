"""The builtin captioned set ``shapes``: scenes of coloured shapes that genzoo draws itself.

A scene holds one or two groups; a group is 1 to 3 objects of one colour (6), shape (circle,
square, triangle) and size (small, large). One group fills a half of the picture ("two small
red circles on the left"); two groups stand in a relation ("a large blue square left of three
small yellow triangles"), the first in one half and the second in the other. A scene has 2 or
3 captions: the full sentence, the relation read the other way round (or, for one group, the
sentence without sizes), and without sizes; so a model learns that they say the same.

Splits (deterministic: numpy seeds, drawn with Pillow, offline):

- ``shapes``: 10,000 training scenes, in which no colour-shape pair of :data:`HELD_OUT` occurs;
- ``shapes:test``: 2,000 other scenes of the same kind (another seed);
- ``shapes:novel``: 2,000 scenes each holding at least one held-out pair (red triangles,
  green squares, blue circles): to measure whether a model composes what it has learnt.

All share the tokenizer fitted to the training captions, so a token means the same in each.
Pictures are drawn at ``data.image_size`` (32 unless told, at least 32; smaller sizes are
drawn at 32 and resized).

:func:`parse` reads a caption back into a :class:`Scene`; :func:`read_objects` finds the
objects in a picture (each pixel's nearest palette colour, connected pieces, the shape from how
much of its box a piece fills); :func:`check` says, attribute by attribute, whether a picture
shows what a caption asks for. The tests use them to show that the captions match the pictures,
the benchmark to score generated pictures.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from genzoo.data import DataOptions, builtin
from genzoo.data import tokenizers as tk
from genzoo.data.captions import attach
from genzoo.data.dataset import TensorDataset
from genzoo.data.images import image_dataset

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (40, 80, 240),
           "yellow": (240, 220, 40), "purple": (170, 60, 220), "cyan": (50, 220, 230)}
BACKGROUND = (16, 16, 16)
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
COUNTS = {"a": 1, "one": 1, "two": 2, "three": 3}
POSITIONS = {"left": "on the left", "right": "on the right", "top": "at the top",
             "bottom": "at the bottom"}
RELATIONS = {"left of": ("left", "right"), "right of": ("right", "left"),
             "above": ("top", "bottom"), "below": ("bottom", "top")}
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
HELD_OUT = frozenset({("red", "triangle"), ("green", "square"), ("blue", "circle")})
ATTRIBUTES = ("colour", "shape", "size", "count", "position")
SPLITS = {"shapes": (10000, 0, False), "shapes:test": (2000, 1, False),
          "shapes:novel": (2000, 2, True)}          # name: (items, seed, held-out pairs)
MIN_SIDE = 32


@dataclass(frozen=True)
class Group:
    count: int
    size: str | None          # None: a caption that does not say
    colour: str
    shape: str

    def words(self, article: bool = False, size: bool = True) -> str:
        count = "a" if self.count == 1 and article else {1: "one", 2: "two", 3: "three"}[self.count]
        sized = [self.size] if size and self.size else []
        return " ".join([count, *sized, self.colour, self.shape + ("s" if self.count > 1 else "")])


@dataclass(frozen=True)
class Scene:
    groups: tuple[Group, ...]
    where: str                # one group: a position (left, ...); two: a relation (left of, ...)

    def halves(self) -> list[tuple[Group, str]]:
        """Each group with the half of the picture it fills."""
        if len(self.groups) == 1:
            return [(self.groups[0], self.where)]
        return list(zip(self.groups, RELATIONS[self.where]))

    def captions(self) -> list[str]:
        g = self.groups
        if len(g) == 1:
            place = POSITIONS[self.where]
            return [f"{g[0].words(True)} {place}", f"{g[0].words(size=False)} {place}"]
        a, b = g
        return [f"{a.words(True)} {self.where} {b.words(True)}",
                f"{b.words(True)} {INVERSE[self.where]} {a.words(True)}",
                f"{a.words(size=False)} {self.where} {b.words(size=False)}"]


# -------------------------------------------------------------------------- captions
def _group(words: list[str], caption: str) -> tuple[Group, list[str]]:
    try:
        count = COUNTS[words[0]]
        i = 1
        size = words[i] if words[i] in SIZES else None
        i += size is not None
        colour, shape = words[i], words[i + 1]
    except (IndexError, KeyError):
        raise ValueError(f"not a shapes caption: {caption!r}") from None
    singular = shape[:-1] if count > 1 and shape.endswith("s") else shape
    if colour not in COLOURS or singular not in SHAPES or (count > 1) != (singular != shape):
        raise ValueError(f"not a shapes caption: {caption!r}")
    return Group(count, size, colour, singular), words[i + 2:]


def parse(caption: str) -> Scene:
    """A caption read back into the scene it describes (ValueError if it is not one)."""
    words = caption.lower().replace(",", " ").split()
    a, rest = _group(words, caption)
    text = " ".join(rest)
    for where, phrase in POSITIONS.items():
        if text == phrase:
            return Scene((a,), where)
    for relation in RELATIONS:
        if text.startswith(relation + " "):
            b, tail = _group(rest[len(relation.split()):], caption)
            if not tail:
                return Scene((a, b), relation)
    raise ValueError(f"not a shapes caption: {caption!r}")


def sample_scenes(n: int, seed: int, novel: bool = False) -> list[Scene]:
    """``n`` scenes; with ``novel`` each holds a held-out colour-shape pair, else none does."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        k = 1 + int(rng.integers(2))
        colours = [list(COLOURS)[i] for i in rng.permutation(len(COLOURS))[:k]]
        groups = tuple(Group(1 + int(rng.integers(3)), SIZES[rng.integers(2)], c,
                             SHAPES[rng.integers(3)]) for c in colours)
        places = list(POSITIONS) if k == 1 else list(RELATIONS)
        scene = Scene(groups, places[rng.integers(len(places))])
        if any((g.colour, g.shape) in HELD_OUT for g in groups) == novel:
            out.append(scene)
    return out


# -------------------------------------------------------------------------- pictures
def sides(S: int) -> dict[str, int]:
    """The side in pixels of a small and a large object on an S x S picture."""
    return {"small": max(3, round(0.16 * S)), "large": round(0.25 * S)}


def _half(half: str, S: int) -> tuple[int, int, int, int]:
    h = S // 2
    return {"left": (0, 0, h, S), "right": (h, 0, S, S), "top": (0, 0, S, h),
            "bottom": (0, h, S, S)}[half]


def render(scene: Scene, S: int, rng: np.random.Generator) -> np.ndarray:
    """The scene drawn on an S x S picture, uint8 (S, S, 3). A group's objects sit in distinct
    thirds of its half (along the half's long side), at least one pixel inside each third, so
    no two objects touch."""
    img = Image.new("RGB", (S, S), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for g, half in scene.halves():
        x0, y0, x1, y1 = _half(half, S)
        d = sides(S)[g.size]
        vertical = half in ("left", "right")          # thirds run down a left/right half
        lo, hi = (y0, y1) if vertical else (x0, x1)
        cuts = [lo + round(k * (hi - lo) / 3) for k in range(4)]
        for third in sorted(rng.choice(3, g.count, replace=False)):
            a = cuts[third] + 1 + int(rng.integers(cuts[third + 1] - cuts[third] - d - 1))
            across = (x0, x1) if vertical else (y0, y1)
            b = across[0] + 1 + int(rng.integers(across[1] - across[0] - d - 1))
            left, top = (b, a) if vertical else (a, b)
            box = [left, top, left + d - 1, top + d - 1]
            colour = COLOURS[g.colour]
            if g.shape == "circle":
                draw.ellipse(box, fill=colour)
            elif g.shape == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) / 2, box[1])],
                             fill=colour)
    return np.asarray(img)


@dataclass(frozen=True)
class Found:
    colour: str
    shape: str
    size: str
    cx: float                 # centre of mass, pixels
    cy: float
    area: int


_PALETTE = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float32)


def read_objects(image, min_area: int = 4) -> list[Found]:
    """The objects in a picture (uint8 or float in [0, 1]; (3, S, S) or (S, S, 3)): each pixel
    takes its nearest palette colour; pieces of one colour connected through their 8
    neighbours are objects (smaller than ``min_area`` pixels: noise); an object's shape is read
    from the corners of its box (:func:`_shape`)."""
    a = np.asarray(image, dtype=np.float32)
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.max() <= 1.0:
        a = a * 255.0
    S = a.shape[0]
    label = ((a[:, :, None, :] - _PALETTE) ** 2).sum(-1).argmin(-1)     # 0: background
    seen = np.zeros(label.shape, bool)
    names, small, large = list(COLOURS), sides(S)["small"], sides(S)["large"]
    found = []
    for y in range(S):
        for x in range(S):
            if label[y, x] == 0 or seen[y, x]:
                continue
            c, stack, pixels = label[y, x], [(y, x)], []
            seen[y, x] = True
            while stack:
                i, j = stack.pop()
                pixels.append((i, j))
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        u, v = i + di, j + dj
                        if 0 <= u < S and 0 <= v < S and not seen[u, v] and label[u, v] == c:
                            seen[u, v] = True
                            stack.append((u, v))
            if len(pixels) < min_area:
                continue
            p = np.array(pixels)
            h, w = np.ptp(p, 0) + 1
            box = np.zeros((h, w), bool)
            box[p[:, 0] - p[:, 0].min(), p[:, 1] - p[:, 1].min()] = True
            shape = _shape(box)
            size = "large" if max(h, w) >= (small + large) / 2 else "small"
            found.append(Found(names[c - 1], shape, size, float(p[:, 1].mean() + 0.5),
                               float(p[:, 0].mean() + 0.5), len(p)))
    return found


def _shape(box: np.ndarray) -> str:
    """The shape of a piece from the corners of its bounding box (``box``: its pixels): a
    square fills all four, an upward triangle only the two of its base, a circle none. Unlike
    the share of the box filled, this survives the rounded corners and soft edges of a decoded
    or generated picture; where the corners say nothing clear, that share decides (>= 88%
    square, >= 64% circle, less a triangle)."""
    h, w = box.shape
    k = max(1, round(0.2 * min(h, w)))
    tl, tr, bl, br = (box[:k, :k].mean() >= 0.5, box[:k, -k:].mean() >= 0.5,
                      box[-k:, :k].mean() >= 0.5, box[-k:, -k:].mean() >= 0.5)
    if tl and tr and bl and br:
        return "square"
    if bl and br and not (tl or tr):
        return "triangle"
    if not (tl or tr or bl or br):
        return "circle"
    fill = box.mean()
    return "square" if fill >= 0.88 else "circle" if fill >= 0.64 else "triangle"


def _in_half(o: Found, half: str, S: int) -> bool:
    return {"left": o.cx < S / 2, "right": o.cx > S / 2, "top": o.cy < S / 2,
            "bottom": o.cy > S / 2}[half]


def check(scene: Scene, objects: list[Found], S: int) -> dict[str, bool]:
    """Whether the objects show each attribute the scene asks for, every group at once:
    its colour, its shape, its size (where said), its count, its half of the picture."""
    out = dict.fromkeys(ATTRIBUTES, True)
    for g, half in scene.halves():
        mine = [o for o in objects if o.colour == g.colour]
        out["colour"] &= bool(mine)
        out["shape"] &= bool(mine) and all(o.shape == g.shape for o in mine)
        out["size"] &= bool(mine) and (g.size is None or all(o.size == g.size for o in mine))
        out["count"] &= len(mine) == g.count
        out["position"] &= bool(mine) and all(_in_half(o, half, S) for o in mine)
    return out


# -------------------------------------------------------------------------- the data sets
@functools.lru_cache(maxsize=4)
def _tokenizer(kind: str, vocab_size: int) -> tk.Tokenizer:
    """The tokenizer fitted to the training split's captions (every split uses it)."""
    n, seed, novel = SPLITS["shapes"]
    texts = [c for s in sample_scenes(n, seed, novel) for c in s.captions()]
    return tk.train(kind, texts, vocab_size)


def load_split(name: str, options: DataOptions) -> TensorDataset:
    n, seed, novel = SPLITS[name]
    scenes = sample_scenes(min(n, options.max_items or n), seed, novel)   # a prefix is the same
    S = max(MIN_SIDE, options.image_size or MIN_SIDE)
    layout = np.random.default_rng([seed, 1])
    x = np.stack([render(s, S, layout) for s in scenes]).transpose(0, 3, 1, 2)
    pairs = sorted(" ".join(p) for p in HELD_OUT)
    meta = {"shapes": {"split": name, "side": S, "held_out_pairs": pairs}}
    ds = image_dataset(x, name, options, meta=meta)
    tokenizer = _tokenizer(options.tokenizer or "bpe", options.vocab_size)
    return attach(ds, [s.captions() for s in scenes], options, tokenizer)


for _name in SPLITS:
    builtin(_name)(lambda options, _name=_name: load_split(_name, options))
