"""Image data: formats, labels from folders, size/channel adaptation, and clear errors."""
import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data import DataOptions, load
from genzoo.data import images
from genzoo.data.images import adapt_images, read_idx, read_images
from genzoo.errors import GenzooError


def png_bytes(a, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def rand_img(rng, h=8, w=8, c=3):
    return rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def make_tree(root, files):
    """files: {relative path: array}; writes PNGs."""
    for rel, a in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(p)
    return root


def write_idx(path, a, code=0x08):
    dt = {0x08: ">u1", 0x0C: ">i4"}[code]
    raw = bytes([0, 0, code, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.astype(dt).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


# ------------------------------------------------------------------ adapt_images

def test_auto_pads_28_to_32_with_zeros_and_keeps_centre_exact():
    x = torch.randint(1, 256, (5, 1, 28, 28), dtype=torch.uint8)
    y, note = adapt_images(x, 32)
    assert y.shape == (5, 1, 32, 32) and y.dtype == torch.uint8
    assert torch.equal(y[:, :, 2:30, 2:30], x)
    border = y.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.sum() == 0
    assert "padded 28x28 -> 32x32" in note and "data.resize" in note


def test_auto_resizes_8_to_32_and_keeps_flat_images_flat():
    x = torch.full((3, 1, 8, 8), 77, dtype=torch.uint8)
    x[1] = 200
    y, note = adapt_images(x, 32)
    assert y.shape == (3, 1, 32, 32)
    assert (y[0] == 77).all() and (y[1] == 200).all()
    assert note.startswith("resized 8x8 -> 32x32")


def test_downsampling_averages_area():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 255
    y, _ = adapt_images(checker.to(torch.uint8)[None, None], 16, "resize")
    assert (y.float() - 127.5).abs().max() <= 2      # no aliasing into stripes


def test_non_square_is_centre_cropped_then_resized():
    x = torch.zeros(1, 1, 30, 40, dtype=torch.uint8)
    x[..., 5:35] = 255                               # the central 30x30 square is white
    y, note = adapt_images(x, 15)
    assert y.shape == (1, 1, 15, 15) and (y == 255).all()
    assert "centre-cropped to a square and resized 40x30 -> 15x15" in note


def test_explicit_pad_crop_resize_modes():
    x = torch.randint(0, 256, (2, 3, 10, 10), dtype=torch.uint8)
    assert torch.equal(adapt_images(x, 6, "crop")[0], x[:, :, 2:8, 2:8])
    assert torch.equal(adapt_images(x, 14, "pad")[0][:, :, 2:12, 2:12], x)
    assert adapt_images(x, 20, "resize")[0].shape == (2, 3, 20, 20)   # not padded
    assert adapt_images(x, 10)[1] is None
    with pytest.raises(GenzooError, match="cannot pad 10x10 images to 6x6"):
        adapt_images(x, 6, "pad")
    with pytest.raises(GenzooError, match="cannot crop 10x10 images to 14x14"):
        adapt_images(x, 14, "crop")
    with pytest.raises(GenzooError, match="data.resize='stretch'"):
        adapt_images(x, 14, "stretch")


def test_channel_conversion_matches_pillow_and_drops_alpha():
    rng = np.random.default_rng(0)
    a = rand_img(rng, 6, 6)
    grey, note = adapt_images(torch.from_numpy(a).permute(2, 0, 1)[None], channels=1)
    pil = np.asarray(Image.fromarray(a).convert("L"))
    assert grey.shape == (1, 1, 6, 6) and np.abs(grey[0, 0].numpy().astype(int) - pil).max() <= 1
    assert note == "RGB -> grey"
    rgb, note = adapt_images(grey, channels=3)
    assert rgb.shape == (1, 3, 6, 6) and (rgb == grey).all() and note == "grey -> RGB"
    rgba = torch.randint(0, 256, (2, 4, 5, 5), dtype=torch.uint8)
    out, note = adapt_images(rgba)
    assert torch.equal(out, rgba[:, :3]) and "alpha" in note


# ------------------------------------------------------------------ folders

def test_folder_with_class_subfolders_gives_sorted_labels(tmp_path):
    rng = np.random.default_rng(1)
    files = {f"{c}/{i}.png": rand_img(rng) for c in ("zebra", "ant", "cat") for i in range(4)}
    ds = load(str(make_tree(tmp_path / "d", files)))
    assert ds.modality == "image" and ds.x.shape == (12, 3, 8, 8) and ds.x.dtype == torch.uint8
    assert ds.class_names == ["ant", "cat", "zebra"]
    assert ds.y.dtype == torch.int64 and torch.bincount(ds.y).tolist() == [4, 4, 4]
    for x, y in zip(ds.x, ds.y):        # every image carries the label of its own folder
        matches = [k for k, a in files.items() if np.array_equal(a, x.permute(1, 2, 0).numpy())]
        assert matches[0].split("/")[0] == ds.class_names[y]
    assert set(ds.y[-4:].tolist()) != {ds.y[-1].item()}     # a held-out suffix mixes classes


def test_flat_grey_folder_has_no_labels_and_one_channel(tmp_path):
    rng = np.random.default_rng(2)
    make_tree(tmp_path, {f"{i}.png": rand_img(rng, 28, 28, 1) for i in range(3)})
    ds = load(str(tmp_path), DataOptions(image_size=32))
    assert ds.y is None and ds.x.shape == (3, 1, 32, 32)
    assert any("padded 28x28 -> 32x32" in n for n in ds.meta["notes"])
    assert load(str(tmp_path), DataOptions(channels=3)).x.shape == (3, 3, 28, 28)


def test_palette_rgba_and_jpeg_images(tmp_path):
    rng = np.random.default_rng(3)
    Image.fromarray(rand_img(rng)).convert("P").save(tmp_path / "p.gif")
    Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(rand_img(rng)).save(tmp_path / "j.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = load(str(tmp_path))
    assert ds.x.shape == (3, 3, 8, 8)


def test_mixed_sizes_need_image_size(tmp_path):
    rng = np.random.default_rng(4)
    make_tree(tmp_path, {"a.png": rand_img(rng, 8, 8), "b.png": rand_img(rng, 12, 10)})
    with pytest.raises(GenzooError) as e:
        load(str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "8x8" in msg and "10x12" in msg and "--image-size" in msg
    ds = load(str(tmp_path), DataOptions(image_size=6))
    assert ds.x.shape == (2, 3, 6, 6) and "2 sizes" in ds.meta["notes"][-1]


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenzooError, match="empty: no images in it"):
        load(str(tmp_path / "empty"))
    bad = tmp_path / "bad" / "cls"
    bad.mkdir(parents=True)
    (bad / "ok.png").write_bytes(png_bytes(np.zeros((8, 8), np.uint8)))
    (bad / "cut.png").write_bytes(png_bytes(rand_img(np.random.default_rng(5), 64, 64))[:300])
    with pytest.raises(GenzooError, match=r"bad/cls/cut\.png: cannot read image"):
        load(str(tmp_path / "bad"))
    (bad / "cut.png").write_bytes(b"this is no png")
    with pytest.raises(GenzooError, match=r"cut\.png: cannot read image \(not an image format") as e:
        load(str(tmp_path / "bad"))
    assert "BytesIO" not in str(e.value)        # the file is named, not Pillow's buffer


def test_folder_of_other_modality_is_left_to_its_reader(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"MThd")
    assert images._kind(tmp_path) is None


# ------------------------------------------------------------------ archives

def cifar_like_members(rng):
    return {f"{split}/{c}/{i:04d}.png": rand_img(rng)
            for split, n in (("train", 3), ("test", 2)) for c in ("cat", "dog") for i in range(n)}


def write_tar(path, members, mode="w"):
    with tarfile.open(path, mode) as tf:
        for name, a in members.items():
            data = png_bytes(a) if isinstance(a, np.ndarray) else a
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, a in members.items():
            zf.writestr(name, png_bytes(a) if isinstance(a, np.ndarray) else a)
    return path


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz", ".zip"])
def test_archive_with_wrapping_folder(tmp_path, suffix):
    rng = np.random.default_rng(6)
    members = {f"flowers64/{c}/{i}.png": rand_img(rng) for c in ("rose", "daisy") for i in range(3)}
    members["flowers64/README.md"] = b"hello"
    members["__MACOSX/flowers64/rose/._0.png"] = b"resource fork"
    path = tmp_path / f"f{suffix}"
    write_zip(path, members) if suffix == ".zip" else \
        write_tar(path, members, "w" if suffix == ".tar" else "w:gz")
    ds = load(str(path))
    assert ds.x.shape == (6, 3, 8, 8) and ds.class_names == ["daisy", "rose"]
    assert ds.source == str(path)
    rose = members["flowers64/rose/0.png"].transpose(2, 0, 1)
    assert any(np.array_equal(x.numpy(), rose) and ds.class_names[y] == "rose"
               for x, y in zip(ds.x, ds.y))


def test_archive_split_suffix(tmp_path):
    path = write_tar(tmp_path / "cifar.tar", cifar_like_members(np.random.default_rng(7)))
    train = read_images(f"{path}:train")
    test = read_images(f"{path}:test")
    assert len(train) == 6 and len(test) == 4
    assert train.class_names == ["cat", "dog"] and train.source == f"{path}:train"
    both = load(str(path))
    assert len(both) == 10 and both.class_names == ["cat", "dog"]     # class = folder above
    assert any("merged test, train" in n for n in both.meta["notes"])
    with pytest.raises(GenzooError, match=r"cifar\.tar:val: no folder 'val' in it \(folders there: test, train\)"):
        read_images(f"{path}:val")


def test_folder_split_suffix(tmp_path):
    make_tree(tmp_path, cifar_like_members(np.random.default_rng(8)))
    assert len(read_images(f"{tmp_path}:test")) == 4


def test_archive_errors(tmp_path):
    empty = write_tar(tmp_path / "empty.tar", {"readme.md": b"nothing here"})
    with pytest.raises(GenzooError, match=r"empty\.tar: no images in it"):
        load(str(empty))
    bad = write_zip(tmp_path / "bad.zip", {"c/ok.png": np.zeros((4, 4), np.uint8), "c/x.png": b"junk"})
    with pytest.raises(GenzooError, match=r"bad\.zip: c/x\.png: cannot read image"):
        load(str(bad))
    (tmp_path / "garbage.tar").write_bytes(b"\x01" * 5000)
    with pytest.raises(GenzooError, match=r"garbage\.tar: corrupt or unreadable archive"):
        load(str(tmp_path / "garbage.tar"))
    good = write_tar(tmp_path / "t.tar.gz", cifar_like_members(np.random.default_rng(9)), "w:gz")
    (tmp_path / "cut.tar.gz").write_bytes(good.read_bytes()[:-200])
    with pytest.raises(GenzooError, match=r"cut\.tar\.gz: corrupt or unreadable archive"):
        load(str(tmp_path / "cut.tar.gz"))
    (tmp_path / "garbage.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(GenzooError, match=r"garbage\.zip: corrupt or unreadable archive"):
        load(str(tmp_path / "garbage.zip"))


# ------------------------------------------------------------------ arrays

def test_npz_layouts_and_float_ranges(tmp_path):
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, (6, 10, 12), dtype=np.uint8)
    y = np.arange(6) % 3
    np.savez(tmp_path / "a.npz", x=x, y=y)
    ds = load(str(tmp_path / "a.npz"))
    assert torch.equal(ds.x[:, 0], torch.from_numpy(x)) and ds.y.tolist() == y.tolist()
    nhwc = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "b.npz", images=nhwc.astype(np.float32) / 255, labels=np.ones(4))
    ds = load(str(tmp_path / "b.npz"))
    assert torch.equal(ds.x, torch.from_numpy(nhwc).permute(0, 3, 1, 2)) and ds.y.dtype == torch.int64
    np.savez(tmp_path / "c.npz", x_train=nhwc.transpose(0, 3, 1, 2).astype(np.float64),
             y_train=np.zeros((4, 1), np.uint8), x_test=nhwc[:1], y_test=np.ones(1, np.int8))
    assert torch.equal(load(str(tmp_path / "c.npz")).x, torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    test = read_images(f"{tmp_path / 'c.npz'}:test")
    assert len(test) == 1 and test.y.tolist() == [1]
    np.savez(tmp_path / "e.npz", x=x, y=y, class_names=["a", "b", "c"])
    assert load(str(tmp_path / "e.npz")).class_names == ["a", "b", "c"]
    np.save(tmp_path / "d.npy", x)
    assert load(str(tmp_path / "d.npy")).y is None


def test_array_errors(tmp_path):
    np.savez(tmp_path / "nox.npz", a=np.zeros((2, 4, 4)), b=np.zeros(2))
    with pytest.raises(GenzooError, match=r"nox\.npz: no image array: expected key 'x'.*found a, b"):
        load(str(tmp_path / "nox.npz"))
    np.save(tmp_path / "signed.npy", np.full((2, 4, 4), -0.5, np.float32))
    with pytest.raises(GenzooError, match=r"signed\.npy: values range over \[-0\.5, -0\.5\]"):
        load(str(tmp_path / "signed.npy"))
    np.savez(tmp_path / "short.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(2, int))
    with pytest.raises(GenzooError, match=r"short\.npz \[y\]: 2 labels for 3 images"):
        load(str(tmp_path / "short.npz"))
    np.save(tmp_path / "flat.npy", np.zeros((3, 4), np.uint8))
    with pytest.raises(GenzooError, match=r"flat\.npy: array of shape \(3, 4\) is not images"):
        load(str(tmp_path / "flat.npy"))
    np.savez(tmp_path / "two.npz", images=np.zeros((2, 4, 4), np.uint8), x_train=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(GenzooError, match=r"two\.npz: both 'images' and 'x_train' are there"):
        load(str(tmp_path / "two.npz"))
    np.savez(tmp_path / "names.npz", x=np.zeros((2, 4, 4), np.uint8), y=[0, 2], class_names=["a", "b"])
    with pytest.raises(GenzooError, match=r"names\.npz: label 2 but only 2 class_names"):
        load(str(tmp_path / "names.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(GenzooError, match=r"junk\.npz: cannot read the arrays"):
        load(str(tmp_path / "junk.npz"))


def test_npz_of_object_arrays_is_left_to_others(tmp_path):
    np.savez(tmp_path / "music.npz", train=np.array([np.zeros(3), np.zeros(5)], dtype=object))
    assert images._kind(tmp_path / "music.npz") is None


# ------------------------------------------------------------------ idx

def test_idx_with_labels_found_next_to_it(tmp_path):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    ds = load(str(tmp_path / "train-images-idx3-ubyte.gz"), DataOptions(image_size=32))
    assert ds.x.shape == (20, 1, 32, 32) and torch.equal(ds.x[:, 0, 2:30, 2:30], torch.from_numpy(x))
    assert ds.y.tolist() == (np.arange(20) % 10).tolist()
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x[:3])      # no labels file: unlabelled
    assert load(str(tmp_path / "t10k-images-idx3-ubyte")).y is None
    write_idx(tmp_path / "big-images-idx3-ubyte", np.full((2, 3, 3), 70000), code=0x0C)
    with pytest.raises(GenzooError, match="values range over"):
        load(str(tmp_path / "big-images-idx3-ubyte"))
    assert read_idx(tmp_path / "train-labels-idx1-ubyte.gz").dtype == np.uint8


def test_idx_errors(tmp_path):
    x = np.zeros((5, 4, 4), np.uint8)
    write_idx(tmp_path / "a-images-idx3-ubyte", x)
    write_idx(tmp_path / "a-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(GenzooError, match=r"a-labels-idx1-ubyte: 4 labels for the 5 images in a-images"):
        load(str(tmp_path / "a-images-idx3-ubyte"))
    with pytest.raises(GenzooError, match=r"a-labels-idx1-ubyte: a 1-d idx file"):
        load(str(tmp_path / "a-labels-idx1-ubyte"))
    (tmp_path / "m-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(40))
    with pytest.raises(GenzooError, match=r"m-images-idx3-ubyte: not an idx file \(bad magic number 12340803\)"):
        load(str(tmp_path / "m-images-idx3-ubyte"))
    raw = (tmp_path / "a-images-idx3-ubyte").read_bytes()
    (tmp_path / "t-images-idx3-ubyte").write_bytes(raw[:-7])
    with pytest.raises(GenzooError, match=r"t-images-idx3-ubyte: truncated idx file: the header says \(5, 4, 4\)"):
        load(str(tmp_path / "t-images-idx3-ubyte"))
    (tmp_path / "g-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(GenzooError, match=r"g-images-idx3-ubyte\.gz: cannot read it: corrupt gzip"):
        load(str(tmp_path / "g-images-idx3-ubyte.gz"))
    with pytest.raises(GenzooError, match="selects a folder"):
        read_images(f"{tmp_path / 'a-images-idx3-ubyte'}:train")


# ------------------------------------------------------------------ builtin

def test_digits_builtin():
    ds = load("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.uint8
    assert ds.x.max() == 255 and ds.x.min() == 0
    assert ds.class_names == [str(i) for i in range(10)] and ds.y[:10].tolist() == list(range(10))
    big = load("digits", DataOptions(image_size=16, channels=3))
    assert big.x.shape == (1797, 3, 16, 16) and "resized 8x8 -> 16x16" in big.meta["notes"][0]
