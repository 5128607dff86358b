"""Captioned images: the builtin shapes (deterministic, captions that match their pictures,
held-out combinations), folders with captions files or sidecar texts, templated captions."""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PLACES, blobs, captioned_images
from genzoo import data as D
from genzoo.cli import main
from genzoo.data import captions as C
from genzoo.data import shapes as S
from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError


def texts(ds):
    return C.decode(ds.items[C.FIELD], C.tokenizer_of(ds.meta))


# ------------------------------------------------------------------ the builtin shapes
def test_shapes_is_deterministic_and_listed(capsys):
    a = D.load("shapes", D.DataOptions(max_items=50))
    b = D.load("shapes", D.DataOptions(max_items=50))
    assert a.x.shape == (50, 3, 32, 32) and a.x.dtype == torch.uint8
    assert torch.equal(a.x, b.x) and torch.equal(a.items["caption"], b.items["caption"])
    # a prefix of the whole split: asking for fewer items draws the same first scenes
    c = D.load("shapes", D.DataOptions(max_items=20))
    assert torch.equal(c.x, a.x[:20])
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in ("shapes", "shapes:test", "shapes:novel"))


@pytest.mark.parametrize("split,side", [("shapes", 32), ("shapes:novel", 32), ("shapes:test", 48)])
def test_every_caption_parses_back_to_what_its_picture_shows(split, side):
    ds = D.load(split, D.DataOptions(max_items=150, image_size=side))
    assert ds.x.shape[-1] == side
    for image, captions in zip(ds.x, texts(ds)):
        objects = S.read_objects(image.numpy())
        scenes = [S.parse(c) for c in captions]
        full = scenes[0]
        assert all(g.size is not None for g in full.groups)
        assert len(objects) == sum(g.count for g in full.groups)
        assert {o.colour for o in objects} == {g.colour for g in full.groups}
        for scene in scenes:             # every phrasing says what the picture shows
            assert all(S.check(scene, objects, side).values()), (captions, objects)
        assert len(captions) == (2 if len(full.groups) == 1 else 3)


def test_check_notices_a_caption_that_does_not_match():
    ds = D.load("shapes", D.DataOptions(max_items=30))
    wrong = 0
    for image, captions in zip(ds.x, texts(ds)):
        scene = S.parse(captions[0])
        g = scene.groups[0]
        other = S.Group(g.count, g.size, g.colour, next(s for s in S.SHAPES if s != g.shape))
        bad = S.Scene((other,) + scene.groups[1:], scene.where)
        wrong += not S.check(bad, S.read_objects(image.numpy()), 32)["shape"]
    assert wrong == 30


def test_the_reader_names_rounded_and_soft_shapes_by_their_corners():
    """A decoded square has rounded corners and fills ~85% of its box, which the share of the
    box filled would call a circle; the corners still say square (and circle, triangle)."""
    yy, xx = np.mgrid[:12, :12] + 0.5
    square = np.zeros((12, 12), bool)
    square[2:10, 2:10] = True                                     # 8 x 8, two pixels off
    square[[2, 2, 2, 2, 9, 9, 9, 9], [2, 3, 8, 9, 2, 3, 8, 9]] = False   # each corner
    circle = (yy - 6) ** 2 + (xx - 6) ** 2 <= 36
    triangle = np.abs(xx - 6) <= yy / 2                           # apex up, base at the bottom
    assert 0.64 <= square[2:10, 2:10].mean() < 0.88               # the old rule: a circle
    for mask, name in ((square, "square"), (circle, "circle"), (triangle, "triangle")):
        picture = np.zeros((16, 16, 3), np.uint8)
        picture[2:14, 2:14][mask] = S.COLOURS["green"]
        (found,) = S.read_objects(picture)
        assert found.shape == name


def test_held_out_pairs_never_occur_in_training_and_always_in_novel():
    train, novel = D.load("shapes", D.DataOptions(max_items=300)), D.load("shapes:novel", D.DataOptions(max_items=300))
    pairs = lambda ds: [{(g.colour, g.shape) for g in S.parse(cs[0]).groups} for cs in texts(ds)]
    assert not any(p & S.HELD_OUT for p in pairs(train))
    assert all(p & S.HELD_OUT for p in pairs(novel))
    # one tokenizer for all splits: the same token ids mean the same words
    assert train.meta["tokenizer"] == novel.meta["tokenizer"]
    assert novel.meta["shapes"]["held_out_pairs"] == sorted(" ".join(p) for p in S.HELD_OUT)


def test_parse_reads_relations_both_ways_and_refuses_other_text():
    a = S.parse("two small red circles left of a large blue square")
    b = S.parse("a large blue square right of two small red circles")
    assert set(a.halves()) == set(b.halves())
    assert S.parse("one green triangle at the top").groups[0] == S.Group(1, None, "green", "triangle")
    for bad in ("two small red circle on the left", "a dog on the left", "a small red circle",
                "a small red circle near a blue square"):
        with pytest.raises(ValueError):
            S.parse(bad)


# ------------------------------------------------------------------ folders with captions
def test_captions_jsonl_gives_several_captions_per_image(tmp_path):
    root = captioned_images(tmp_path, n=12)
    ds = D.load(str(root))
    assert ds.x.shape == (12, 3, 8, 8) and ds.items["caption"].shape[:2] == (12, 2)
    assert ds.meta["field_modality"] == {"caption": "text"}
    assert ds.meta["tokenizer"]["kind"] == "bpe"             # byte pairs unless told
    x, y = blobs(n=12, side=8, channels=3)
    for image, captions in zip(ds.x, texts(ds)):            # each image with its own captions
        i = next(i for i in range(12) if np.array_equal(x[i], image.permute(1, 2, 0).numpy()))
        assert captions == [f"a square at the {PLACES[y[i]]}", f"the {PLACES[y[i]]} is bright"]
    tokens = ds.items["caption"][0, 0]
    assert tokens[0] == tk.END and tokens[(tokens != tk.PAD).sum() - 1] == tk.END


def test_csv_rows_and_sidecar_texts_and_uncaptioned_images(tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(root / f"{name}.png")
    (root / "captions.csv").write_text('file,caption\na.png,"a cat, sitting"\na.png,a cat\n'
                                       "b.png,a dog\n")
    (root / "c.txt").write_text("a bird\n\nanother bird\nthird bird\n")
    ds = D.load(str(root), D.DataOptions(tokenizer="char"))
    assert len(ds) == 3 and ds.items["caption"].shape[1] == 3          # d has no caption
    assert any("left out 1 images" in n for n in ds.meta["notes"])
    got = sorted(map(tuple, texts(ds)))
    assert got == [("a bird", "another bird", "third bird"), ("a cat, sitting", "a cat"), ("a dog",)]
    # an image with fewer captions than the most has all-PAD rows
    k = [len(t) for t in texts(ds)].index(1)
    assert (ds.items["caption"][k, 1:] == tk.PAD).all()


def test_captions_inside_a_zip_and_context_truncation(tmp_path):
    root = captioned_images(tmp_path, n=6)
    archive = tmp_path / "pics.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(root.iterdir()):
            z.write(p, f"pics/{p.name}")
    ds = D.load(str(archive), D.DataOptions(tokenizer="char", context=6))
    assert ds.items["caption"].shape == (6, 2, 6)
    assert all(len(c) == 4 for cs in texts(ds) for c in cs)          # END + 4 chars + END


def test_templated_captions_for_a_labelled_set(image_npz):
    ds = D.load(str(image_npz), D.DataOptions(captions="a photo of a {class}|a {class} picture"))
    assert ds.items["caption"].shape[:2] == (96, 2)
    assert ds.meta["caption_templates"] == ["a photo of a {class}", "a {class} picture"]
    y = ds.y.tolist()
    assert texts(ds)[0] == [f"a photo of a {y[0]}", f"a {y[0]} picture"]


@pytest.mark.parametrize("make,options,message", [
    (lambda p: (p / "x.npz", np.savez(p / "x.npz", x=blobs(4)[0])), {"captions": "a {class}"},
     "no class labels to caption"),
    (lambda p: (p / "x.npz", np.savez(p / "x.npz", x=blobs(4)[0], y=blobs(4)[1])),
     {"captions": "a photo"}, "must name {class}"),
    (lambda p: (p / "c", (p / "c").mkdir(), Image.fromarray(np.zeros((4, 4), np.uint8)).save(p / "c/a.png"),
                (p / "c/captions.jsonl").write_text(json.dumps({"file": "zz.png", "caption": "x"}))),
     {}, "names 'zz.png', which is not an image there"),
    (lambda p: (p / "c", (p / "c").mkdir(), Image.fromarray(np.zeros((4, 4), np.uint8)).save(p / "c/a.png"),
                (p / "c/captions.csv").write_text("name,text\na.png,x\n")),
     {}, "needs 'file' and 'caption'"),
    (lambda p: ("shapes",), {"captions": "a {class}"}, "has captions of its own"),
])
def test_bad_captions_get_one_clear_line(tmp_path, make, options, message):
    spec = make(tmp_path)[0]
    with pytest.raises(GenzooError, match=message):
        D.load(str(spec), D.DataOptions(max_items=4, **options))
