"""Points: the moons builtin and .csv files of numbers, with line-numbered errors."""
import pytest
import torch

from genzoo.data import load
from genzoo.data import points
from genzoo.errors import GenzooError


def write(tmp_path, text, name="p.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_moons_builtin_is_fixed_and_raw():
    ds = load("moons")
    assert ds.modality == "points" and ds.x.shape == (10_000, 2) and ds.x.dtype == torch.float32
    assert torch.equal(ds.x, load("moons").x)                       # random_state=0
    assert ds.y.dtype == torch.int64 and torch.bincount(ds.y).tolist() == [5000, 5000]
    upper, lower = ds.x[ds.y == 0], ds.x[ds.y == 1]
    assert upper[:, 1].mean() > lower[:, 1].mean()                  # label 0 is the upper moon
    assert -1.3 < ds.x[:, 0].min() < -0.9 and 1.9 < ds.x[:, 0].max() < 2.3   # not standardised


def test_csv_with_header_and_integer_labels(tmp_path):
    ds = load(str(write(tmp_path, "a,b,label\n0.5,1,0\n-2,3e-1,1\n\n4,5,1\n")))
    assert ds.modality == "points" and ds.x.dtype == torch.float32
    assert ds.x.tolist() == [[0.5, 1.0], [-2.0, 0.30000001192092896], [4.0, 5.0]]
    assert ds.y.tolist() == [0, 1, 1] and ds.class_names is None


def test_csv_without_header_and_named_labels(tmp_path):
    ds = load(str(write(tmp_path, "1,2,3\n4,5,6\n")))
    assert ds.x.shape == (2, 3) and ds.y is None
    ds = load(str(write(tmp_path, "x0,x1,y\n1,2,dog\n3,4,cat\n5,6,dog\n", "n.csv")))
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [1, 0, 1] and ds.x.shape == (3, 2)


def test_x_y_columns_are_coordinates(tmp_path):
    ds = load(str(write(tmp_path, "x,y\n1,2\n3,4\n")))
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.y is None


def test_text_csv_is_left_to_the_text_reader(tmp_path):
    text = write(tmp_path, "country,description\nItaly,a fine red\nFrance,crisp\n")
    assert not points._accepts(text)
    assert points._accepts(write(tmp_path, "u,v\n1,2\n", "q.csv"))
    assert not points._accepts(write(tmp_path, "1,2\n", "q.txt"))


def test_csv_errors_name_file_and_line(tmp_path):
    p = write(tmp_path, "")
    with pytest.raises(GenzooError, match=r"p\.csv: the csv is empty"):
        points.read_points_csv(p)
    p = write(tmp_path, "a,b\n")
    with pytest.raises(GenzooError, match=r"p\.csv: the csv has a header but no rows"):
        points.read_points_csv(p)
    p = write(tmp_path, "a,b\n1,2\n3,4,5\n")
    with pytest.raises(GenzooError, match=r"p\.csv: line 3 has 3 columns, expected 2"):
        load(str(p))
    rows = "".join(f"{i},{i}\n" for i in range(30))      # the bad row is past the rows peeked at
    p = write(tmp_path, "a,b\n" + rows + "\n7,seven\n")
    with pytest.raises(GenzooError, match=r"p\.csv: line 33, column b: 'seven' is not a number"):
        load(str(p))
    p = write(tmp_path, "a,b\n1,nan\n")
    with pytest.raises(GenzooError, match=r"p\.csv: line 2, column b: nan is not a finite number"):
        load(str(p))
    p = write(tmp_path, "label\n1\n")
    with pytest.raises(GenzooError, match=r"p\.csv: no columns of coordinates"):
        load(str(p))
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GenzooError, match=r"bin\.csv: cannot read it as UTF-8 csv"):
        points.read_points_csv(p)
