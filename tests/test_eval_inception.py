"""The FID InceptionV3: pytorch-fid's parameter names and shapes, safe loading, clear errors."""
import pytest
import torch
from safetensors.torch import save_file

from genzoo.errors import GenzooError
from genzoo.evaluation import features as Fe
from genzoo.evaluation.inception import FIDInceptionV3, load_inception


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_parameter_names_and_shapes_are_pytorch_fid_ones(net):
    sd = net.state_dict()
    expected = {   # names of torchvision's InceptionV3, as the pt_inception-2015-12-05 file has them
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7b.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
    }
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert n_conv == 94      # torchvision's InceptionV3 without the auxiliary head


def test_features_are_2048_and_any_small_image_works(net):
    with torch.no_grad():
        grey = net(torch.rand(2, 1, 28, 28))
        rgb = net(torch.rand(1, 3, 32, 32))
    assert grey.shape == (2, 2048) and rgb.shape == (1, 2048)
    assert torch.isfinite(grey).all() and (grey >= 0).all()     # a mean of ReLU outputs


class _Seen(Exception):
    pass


def _first_layer_input(net, x):
    """What the first convolution receives for images ``x`` (the forward stops there)."""
    def stop(module, args):
        raise _Seen(args[0])
    hook = net.Conv2d_1a_3x3.register_forward_pre_hook(stop)
    try:
        net(x)
    except _Seen as seen:
        return seen.args[0]
    finally:
        hook.remove()
    raise AssertionError("the first convolution was never called")


def test_input_is_resized_to_299_grey_repeated_and_scaled_to_minus_one_one(net):
    """The TF graph expects pixels in [-1, 1]: black is -1, white +1, mid-grey 0."""
    for value, expected in ((0.0, -1.0), (1.0, 1.0), (0.5, 0.0)):
        seen = _first_layer_input(net, torch.full((2, 1, 20, 20), value))
        assert seen.shape == (2, 3, 299, 299)
        torch.testing.assert_close(seen, torch.full_like(seen, expected), atol=1e-6, rtol=0)
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32)
    seen = _first_layer_input(net, ramp)
    assert seen.min().item() == pytest.approx(-1, abs=0.02) and seen.max().item() == pytest.approx(1, abs=0.02)


def test_weights_load_from_pth_and_safetensors(net, tmp_path):
    sd = net.state_dict()
    pth = tmp_path / "w.pth"
    torch.save({**sd, "AuxLogits.fc.weight": torch.zeros(3)}, pth)   # aux head is ignored
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        ref = net(x)
        for path in (pth, st):
            assert torch.allclose(load_inception(path)(x), ref, atol=1e-5)
    ex = Fe.get_extractor(f"inception:{st}", (1, 16, 16))
    assert ex.is_fid and ex.distance_name == "FID" and ex(x).shape == (1, 2048)


def test_bad_weight_files_are_refused(net, tmp_path):
    with pytest.raises(GenzooError, match="no such InceptionV3 weights file"):
        load_inception(tmp_path / "absent.pth")
    sd = net.state_dict()
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in sd.items() if not k.startswith("Mixed_7c")}, partial)
    with pytest.raises(GenzooError, match="not the pytorch-fid InceptionV3 weights"):
        load_inception(partial)
    code = tmp_path / "code.pth"
    torch.save({"x": torch.nn.Linear(2, 2)}, code)      # a pickled module: never unpickled
    with pytest.raises(GenzooError, match="not a readable weights file"):
        load_inception(code)


def test_download_is_verified_and_offline_is_explained(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    from genzoo.evaluation.cache import cache_dir
    from genzoo.evaluation.inception import WEIGHTS_NAME

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / "srv" / "mseitzer/pytorch-fid/releases/download/fid_weights"
    served.mkdir(parents=True)
    (served / WEIGHTS_NAME).write_bytes(b"not the weights")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(Quiet, directory=str(tmp_path / "srv")))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("GENZOO_DATA_MIRROR", f"http://127.0.0.1:{srv.server_port}")
    monkeypatch.delenv("GENZOO_INCEPTION_WEIGHTS", raising=False)
    try:
        with pytest.raises(GenzooError, match="checksum"):
            Fe.get_extractor("inception", (1, 16, 16))
        assert list((cache_dir() / "weights").iterdir()) == []      # nothing unverified is kept
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(GenzooError, match="could not download"):  # nobody listens: offline
        Fe.get_extractor("inception", (1, 16, 16))
    assert Fe.get_extractor("auto", (1, 16, 16)).name.startswith("pixels")   # auto never downloads
