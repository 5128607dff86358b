"""Text data: tokenizers round-trip and serialise; readers, templates, windows and masks; errors."""
from __future__ import annotations

import json

import pytest
import torch

from genzoo import config as C
from genzoo import data as D
from genzoo.data import tokenizers as tk
from genzoo.data.text import build
from genzoo.errors import GenzooError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
ODD = "naïve café — 日本語 🙂\ttabs,  double  spaces\r\n"


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_char_and_bpe_round_trip_exactly(kind):
    tok = tk.train(kind, [TEXT * 3, ODD], 300)
    for text in (TEXT, ODD, TEXT + ODD):
        assert tok.decode(tok.encode(text)) == text
    again = tk.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(TEXT + ODD) == tok.encode(TEXT + ODD)
    assert again.vocab_size == tok.vocab_size


def test_bpe_unseen_text_round_trips_through_bytes():
    tok = tk.train("bpe", [TEXT], 300)
    assert tok.decode(tok.encode("Ωmega ünseen")) == "Ωmega ünseen"


def test_bpe_learns_the_most_frequent_pair_first_and_compresses():
    tok = tk.train("bpe", ["aaab " * 50 + "cd"], 262)
    a = tk._BYTES + ord("a")
    assert tok.merges[0] == (a, a)                 # "aa" is the most frequent adjacent pair
    assert tok.vocab_size == 262
    text = "aaab aaab aaab"
    assert len(tok.encode(text)) < len(text.encode())
    assert tok.decode(tok.encode(text)) == text


def test_word_tokenizer_splits_punctuation_lowercases_and_round_trips_canonical_text():
    tok = tk.train("word", [TEXT], 10000)
    assert tk.WordTokenizer.split("Hello, world! Don't.") == ["hello", ",", "world", "!", "don't", "."]
    canonical = TEXT.lower()
    assert tok.decode(tok.encode(canonical)) == canonical
    assert tk.UNK not in tok.encode(canonical)


def test_word_vocabulary_limit_maps_rare_words_to_unknown():
    tok = tk.train("word", ["a a a b b c"], 5)           # 3 specials + the 2 most frequent
    assert tok.tokens[3:] == ["a", "b"]
    assert tok.encode("a b c zebra") == [3, 4, tk.UNK, tk.UNK]
    assert tok.decode([3, tk.UNK]) == "a <unk>"


def test_tokenizer_dict_survives_the_run_config_yaml(tmp_path):
    tok = tk.train("char", [ODD + TEXT], 0)
    C.write_yaml(tmp_path / "c.yaml", {"meta": {"tokenizer": tok.to_dict()}})
    back = tk.from_dict(C.read_yaml(tmp_path / "c.yaml")["meta"]["tokenizer"])
    assert back.decode(back.encode(ODD)) == ODD


# ------------------------------------------------------------------------------- readers
def test_packed_corpus_windows_overlap_by_one_and_keep_text_order(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT * 4)
    ds = D.load(str(tmp_path / "c.txt"), D.DataOptions(context=16))
    assert ds.modality == "text" and ds.x.dtype == torch.long and ds.shape == (17,)
    x, m = ds.x, ds.items["mask"]
    assert torch.equal(x[:-1, -1], x[1:, 0])             # window i ends where i+1 starts
    stream = torch.cat([x[0]] + [x[i, 1:][m[i, 1:]] for i in range(1, len(x))]).tolist()
    tok = tk.from_dict(ds.meta["tokenizer"])
    assert stream[0] == tk.END and stream[-1] == tk.END
    assert tok.decode(stream) == TEXT * 4                # every token once, in order
    train, held = ds.split(0.25)
    tail = tok.decode(torch.cat([r[k][1:] for r, k in zip(held.x, held.items["mask"])]).tolist())
    assert len(tail) > 10 and (TEXT * 4).endswith(tail)  # held out: the end of the text


def test_lines_with_a_template_are_padded_documents_whose_padding_is_masked(tmp_path):
    (tmp_path / "names.txt").write_text("emma\nolivia\n\nava\n")
    ds = D.load(str(tmp_path / "names.txt"), D.DataOptions(template="name: {text}", context=80))
    assert len(ds) == 3 and ds.shape == (len("name: olivia") + 2,)   # padded to the longest
    tok = tk.from_dict(ds.meta["tokenizer"])
    docs = [r[m].tolist() for r, m in zip(ds.x, ds.items["mask"])]
    assert all(d[0] == tk.END and d[-1] == tk.END for d in docs)
    assert sorted(tok.decode(d) for d in docs) == ["name: ava", "name: emma", "name: olivia"]
    assert (ds.x[~ds.items["mask"]] == tk.PAD).all()
    assert ds.items["mask"].all(1).sum() == 1            # only the longest has no padding


def test_documents_are_shuffled_in_a_fixed_order_so_held_out_is_a_fair_sample(tmp_path):
    names = [f"{c}{c}" for c in "abcdefghijklmnopqrst"]   # a sorted file
    (tmp_path / "n.txt").write_text("\n".join(names))
    opts = D.DataOptions(template="{text}")
    ds = D.load(str(tmp_path / "n.txt"), opts)
    tok = tk.from_dict(ds.meta["tokenizer"])
    got = [tok.decode(r.tolist()) for r in ds.x]
    assert sorted(got) == names and got != names
    assert [tok.decode(r.tolist()) for r in D.load(str(tmp_path / "n.txt"), opts).x] == got


def test_csv_template_renders_each_record(tmp_path):
    p = tmp_path / "wine.csv"
    p.write_text('country,province,variety,description,points\n'
                 'Italy,Sicily,White Blend,"Aromas include tropical fruit, broom.",87\n'
                 'Portugal,Douro,Red,"Ripe, fruity,\nsmooth.",87\n'
                 ',Oregon,Pinot Gris,Tart.,87\n')
    t = "wine review : {country} : {province} : {variety} : {description}"
    ds = D.load(str(p), D.DataOptions(template=t, tokenizer="word"))
    tok = tk.from_dict(ds.meta["tokenizer"])
    docs = sorted(tok.decode(r[m].tolist()) for r, m in zip(ds.x, ds.items["mask"]))
    # word level: lower case, punctuation its own token (so spacing before ':' normalised)
    assert docs == ["wine review: italy: sicily: white blend: aromas include tropical fruit, broom.",
                    "wine review: portugal: douro: red: ripe, fruity,\nsmooth."]
    assert any("skipped 1 records" in n for n in ds.meta["notes"])   # the one without a country


def test_jsonl_template_joins_lists_and_names_a_missing_field(tmp_path):
    p = tmp_path / "recipes.jsonl"
    p.write_text(json.dumps({"title": "Toast", "directions": ["Slice bread.", "Toast it."]}) + "\n"
                 + json.dumps({"title": "Tea", "directions": ["Boil water."]}) + "\n")
    ds = D.load(str(p), D.DataOptions(template="Recipe for {title} | {directions}"))
    tok = tk.from_dict(ds.meta["tokenizer"])
    assert "Recipe for Toast | Slice bread. Toast it." in [tok.decode(r.tolist()) for r in ds.x]
    with pytest.raises(GenzooError, match=r"recipes.jsonl.*\{ingredients\}.*directions, title"):
        D.load(str(p), D.DataOptions(template="{title}: {ingredients}"))


def test_folder_of_txt_files_is_one_document_per_file(tmp_path):
    folder = tmp_path / "stories"
    folder.mkdir()
    (folder / "a.txt").write_text("once upon a time")
    (folder / "b.txt").write_text("the end")
    ds = D.load(str(folder), D.DataOptions(context=4))
    tok = tk.from_dict(ds.meta["tokenizer"])
    assert ds.meta["packed"] is True
    stream = [ds.x[0, 0].item()] + [t for r, m in zip(ds.x, ds.items["mask"]) for t in r[1:][m[1:]].tolist()]
    assert stream.count(tk.END) == 3 and tok.decode(stream) == "once upon a timethe end"


@pytest.mark.parametrize("content, options, message", [
    (b"", {}, r"bad\.txt: is empty"),
    (b"  \n\n", {}, r"bad\.txt: is empty"),
    (b"caf\xe9 au lait", {}, r"bad\.txt: not UTF-8 text \(byte 0xe9 at offset 3\)"),
    (b"short text", {"context": 80}, r"bad\.txt: the text has 10 tokens, fewer than the context \+ 1 \(81\)"),
    (b"some text here", {"tokenizer": "sentencepiece", "context": 4}, r"data\.tokenizer='sentencepiece'"),
    (b"a\nb\n", {"template": "{nope"}, r"bad\.txt: bad template"),
    (b"a\nb\n", {"template": "{name}"}, r"bad\.txt: the template names \{name\}, which no record has"),
])
def test_bad_text_gets_one_clear_line(tmp_path, content, options, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(GenzooError, match=message) as e:
        D.load(str(p), D.DataOptions(**options))
    assert "\n" not in str(e.value)


def test_csv_with_several_columns_needs_a_template(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("title,body\nx,y\n")
    with pytest.raises(GenzooError, match=r"t\.csv: name the fields.*fields: title, body"):
        D.load(str(p))
    p.write_text("text\nhello\n")
    assert len(D.load(str(p))) == 1


def test_build_fits_the_given_tokenizer_unchanged():
    tok = tk.train("char", ["abc"], 0)
    ds = build(["abcabc"], D.DataOptions(context=3), "mem", packed=True, tokenizer=tok)
    assert ds.meta["tokenizer"] == tok.to_dict() and ds.x[0].tolist() == [1, 3, 4, 5]
