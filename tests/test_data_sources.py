"""Named datasets: download from a local HTTP server, checksums, cache, offline errors."""
import functools
import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading

import numpy as np
import pytest
import torch

import genzoo.data
from genzoo.data import DataOptions, load
from genzoo.data import source_formats, sources
from genzoo.data.sources import RemoteFile, Source, fetch, idx_builder, list_sources, register_source
from genzoo.errors import GenzooError


@pytest.fixture
def www(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/www, set as the data mirror; a fresh cache.
    Yields (folder served, list of paths requested)."""
    root = tmp_path / "www"
    root.mkdir()
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    monkeypatch.setenv("GENZOO_DATA_MIRROR", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    # sources registered by a test are forgotten after it
    monkeypatch.setattr(sources, "_SOURCES", dict(sources._SOURCES))
    monkeypatch.setattr(genzoo.data, "_BUILTINS", dict(genzoo.data._BUILTINS))
    yield root, requested
    server.shutdown()
    server.server_close()


def idx_gz(a):
    raw = bytes([0, 0, 8, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.astype(np.uint8).tobytes()
    return gzip.compress(raw)


def put(root, rel, data):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def tiny_mnist(root, n=20):
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = np.arange(n) % 10
    files = (RemoteFile("https://example.org/mnist/train-images-idx3-ubyte.gz",
                        put(root, "mnist/train-images-idx3-ubyte.gz", idx_gz(x))),
             RemoteFile("https://example.org/mnist/train-labels-idx1-ubyte.gz",
                        put(root, "mnist/train-labels-idx1-ubyte.gz", idx_gz(y))))
    return x, y, files


def cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_download_verify_cache_and_load(www, tmp_path):
    root, requested = www
    x, y, files = tiny_mnist(root)
    register_source(Source("tiny-mnist", files, idx_builder([str(i) for i in range(10)]), "test"))
    assert not next(s for s in list_sources() if s["name"] == "tiny-mnist")["cached"]
    ds = load("tiny-mnist", DataOptions(image_size=32))
    assert ds.x.shape == (20, 1, 32, 32) and torch.equal(ds.x[:, 0, 2:30, 2:30], torch.from_numpy(x))
    assert ds.y.tolist() == y.tolist() and ds.class_names[3] == "3" and ds.source == "tiny-mnist"
    assert requested == ["/mnist/train-images-idx3-ubyte.gz", "/mnist/train-labels-idx1-ubyte.gz"]
    assert cache_files(tmp_path) == ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz.sha256",
                                     "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz.sha256"]
    assert next(s for s in list_sources() if s["name"] == "tiny-mnist")["cached"]
    paths = fetch("tiny-mnist")                       # cached: no second download
    assert len(requested) == 2 and paths[0] == tmp_path / "cache/tiny-mnist/train-images-idx3-ubyte.gz"


def test_checksum_mismatch_deletes_the_download(www, tmp_path):
    root, _ = www
    _, _, files = tiny_mnist(root)
    bad = (RemoteFile(files[0].url, "0" * 64), files[1])
    register_source(Source("tiny-bad", bad, idx_builder(None)))
    with pytest.raises(GenzooError) as e:
        fetch("tiny-bad")
    msg = str(e.value)
    assert msg.startswith("tiny-bad: checksum mismatch for http://127.0.0.1:")
    assert "train-images-idx3-ubyte.gz" in msg and "expected " + "0" * 64 in msg and "deleted" in msg
    assert cache_files(tmp_path) == []                # neither the file nor a .part remains


def test_real_mnist_source_refuses_a_fake_file(www, tmp_path):
    root, requested = www
    tiny_mnist(root)        # fake files at the real paths /mnist/train-*-idx*-ubyte.gz
    with pytest.raises(GenzooError, match=r"^mnist: checksum mismatch for .*/mnist/train-images-idx3-ubyte\.gz "
                                          r"\(sha256 [0-9a-f]{64}, expected 440fcabf"):
        load("mnist")
    assert requested == ["/mnist/train-images-idx3-ubyte.gz"] and cache_files(tmp_path) == []


def test_offline_gives_a_one_line_hint(www, tmp_path, monkeypatch):
    _, _, files = tiny_mnist(www[0])
    with socket.socket() as s:                        # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GENZOO_DATA_MIRROR", f"http://127.0.0.1:{port}")
    register_source(Source("tiny-off", files, idx_builder(None)))
    with pytest.raises(GenzooError) as e:
        fetch("tiny-off")
    msg = str(e.value)
    dest = tmp_path / "cache/tiny-off/train-images-idx3-ubyte.gz"
    assert msg.startswith(f"tiny-off: could not download http://127.0.0.1:{port}/mnist/train-images-idx3-ubyte.gz (")
    assert msg.endswith(f"you are offline? put the file at {dest} or pass a local path")
    assert "\n" not in msg and cache_files(tmp_path) == []


def test_http_error_and_mirror_fallback(www, tmp_path):
    root, requested = www
    data = b"payload"
    put(root, "b/file.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    register_source(Source("tiny-404", (RemoteFile("http://x.org/a/missing.bin", sha),), idx_builder(None)))
    with pytest.raises(GenzooError, match=r"could not download http://127\.0\.0\.1:\d+/a/missing\.bin \(HTTP 404"):
        fetch("tiny-404")
    register_source(Source("tiny-alt", (RemoteFile("http://x.org/a/file.bin", sha,
                                                   mirrors=("http://y.org/b/file.bin",)),),
                           idx_builder(None)))
    assert fetch("tiny-alt")[0].read_bytes() == data
    assert requested[-2:] == ["/a/file.bin", "/b/file.bin"]


def test_file_put_in_the_cache_by_hand(www, tmp_path):
    data = b"placed by the user"
    register_source(Source("by-hand", (RemoteFile("http://x.org/f.bin", hashlib.sha256(data).hexdigest()),),
                           idx_builder(None)))
    dest = tmp_path / "cache/by-hand/f.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"something else")
    with pytest.raises(GenzooError, match=r"by-hand: .*f\.bin does not match the published checksum"):
        fetch("by-hand")
    assert dest.exists()                               # the user's own file is not deleted
    dest.write_bytes(data)
    assert fetch("by-hand") == [dest] and www[1] == []


def test_md5_and_size_when_no_sha256_and_warning_when_nothing(www, tmp_path):
    data = b"md5 only"
    put(www[0], "m.bin", data)
    md5 = hashlib.md5(data).hexdigest()
    register_source(Source("md5", (RemoteFile("http://x.org/m.bin", None, md5, len(data)),), idx_builder(None)))
    assert fetch("md5")[0].read_bytes() == data
    register_source(Source("md5-bad", (RemoteFile("http://x.org/m.bin", None, md5, 3),), idx_builder(None)))
    with pytest.raises(GenzooError, match=r"md5-bad: checksum mismatch .*expected .* and 3 bytes"):
        fetch("md5-bad")
    register_source(Source("unchecked", (RemoteFile("http://x.org/m.bin", None),), idx_builder(None)))
    with pytest.warns(UserWarning, match="no checksum is known"):
        fetch("unchecked")
    assert not (tmp_path / "cache/unchecked/m.bin.sha256").exists()


def test_unknown_source():
    with pytest.raises(GenzooError, match="nope: not a named dataset .*fashion-mnist"):
        fetch("nope")
    names = [s["name"] for s in list_sources()]
    assert {"mnist", "fashion-mnist", "cifar10"} <= set(names)


# ------------------------------------------------------------------ CIFAR-10 pickles

def py2_pickle(d):
    """A dict of str -> (2-d uint8 array | list of int | str) pickled the way Python 2 did
    (protocol 2, byte strings, numpy.core names), as in the official CIFAR-10 files."""
    def s(b):
        b = b.encode("latin1") if isinstance(b, str) else b
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b

    def value(v):
        if isinstance(v, str):
            return s(v)
        if isinstance(v, list):
            return b"](" + b"".join(s(i) if isinstance(i, str) else b"J" + struct.pack("<i", i)
                                    for i in v) + b"e"
        dtype = (b"cnumpy\ndtype\n" + s("u1") + b"K\x00K\x01\x87R(K\x03" + s("|")
                 + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s("b")
                + b"\x87R(K\x01J" + struct.pack("<i", v.shape[0]) + b"J" + struct.pack("<i", v.shape[1])
                + b"\x86" + dtype + b"\x89" + s(v.tobytes()) + b"tb")
    return b"\x80\x02}(" + b"".join(s(k) + value(v) for k, v in d.items()) + b"u."


def fake_cifar_tar(n=2):
    rng = np.random.default_rng(0)
    buf, batches = io.BytesIO(), []
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        def add(name, data):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add("batches.meta", py2_pickle({"label_names": ["a", "b", "c"], "num_vis": [3072]}))
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            d = {"batch_label": name, "labels": [int(v) for v in rng.integers(0, 3, n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
            batches.append(d)
            add(name, py2_pickle(d))
    return buf.getvalue(), batches[:5]


def test_cifar10_format_from_python2_pickles(www):
    data, batches = fake_cifar_tar()
    sha = put(www[0], "~kriz/cifar-10-python.tar.gz", data)
    register_source(Source("tiny-cifar", (RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", sha),),
                           source_formats.build_cifar))
    ds = load("tiny-cifar")
    assert ds.x.shape == (10, 3, 32, 32) and ds.class_names == ["a", "b", "c"]
    assert ds.y.tolist() == sum((b["labels"] for b in batches), [])
    first = batches[0]["data"][0]     # 1024 red, then 1024 green, then 1024 blue, row-major
    assert torch.equal(ds.x[0, 1], torch.from_numpy(first[1024:2048].reshape(32, 32)))
    with pytest.raises(GenzooError, match="checksum mismatch"):
        load("cifar10")               # the real source does not accept the fake archive


def test_cifar_pickles_cannot_run_code(tmp_path):
    evil = b"\x80\x02cos\nsystem\nU\x04true\x85R."   # os.system("true")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(evil)
        tf.addfile(info, io.BytesIO(evil))
    (tmp_path / "c.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(GenzooError, match=r"c\.tar\.gz: not a readable CIFAR-10 archive \(refusing to load global os\.system\)"):
        source_formats.load_cifar_batches(tmp_path / "c.tar.gz", "c")


def test_unwritable_cache_is_a_clear_error(www, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "afile"))
    _, _, files = tiny_mnist(www[0])
    register_source(Source("tiny-ro", files, idx_builder(None)))
    with pytest.raises(GenzooError, match=r"tiny-ro: cannot write to the cache folder .*afile/tiny-ro .*GENZOO_CACHE"):
        fetch("tiny-ro")
