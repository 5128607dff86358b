"""InceptionV3 (Szegedy et al. 2016, "Rethinking the Inception architecture") as the FID uses it.

The Fréchet inception distance of Heusel et al. (2017) is computed on the 2048 activations of
the last average pool of the TensorFlow InceptionV3 of December 2015. pytorch-fid ported those
weights to PyTorch (``pt_inception-2015-12-05-6726825d.pth``) together with the small ways in
which that graph differs from torchvision's network: average pools that do not count padding,
and a max pool in the last block's pool branch. This file builds that very network without
torchvision, with the same parameter names, so the .pth state dict loads as it is and the FID
numbers match published ones. Input: images in [0, 1], resized bilinearly to 299x299 and scaled
to [-1, 1]; grey images are repeated over three channels.

Weights are read from a local file (``torch.load(weights_only=True)``, which never unpickles
code, or a .safetensors file); :func:`fetch_weights` downloads them when genzoo.data.sources
offers a checked download and the machine is online.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
SHA256_PREFIX = "6726825d"       # the file name carries the start of its SHA-256 (torch.hub style)
FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in TensorFlow), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):            # Mixed_5b, 5c, 5d: 35x35
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):            # Mixed_6a: 35x35 -> 17x17
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):            # Mixed_6b..6e: 17x17, factorised 7x7
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):            # Mixed_7a: 17x17 -> 8x8
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b,
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):            # Mixed_7b, 7c: 8x8, expanded filter banks
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool        # the TF graph's Mixed_7c pools by max, Mixed_7b by mean
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        a = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), a, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Images in [0, 1] (N, 1 or 3, H, W) -> the 2048 pool features of the FID."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)     # the 2015 graph's 1008 logits (unused by the FID)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth state dict (no code unpickled) or a .safetensors file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GenzooError(f"{path}: no such InceptionV3 weights file "
                          f"(pytorch-fid's {WEIGHTS_NAME}, from {WEIGHTS_URL})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:      # a damaged file or one with pickled code: say which file
        raise GenzooError(f"{path}: not a readable weights file ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise GenzooError(f"{path}: holds no state dict")
    return state


def load_inception(path: str | Path, device="cpu") -> FIDInceptionV3:
    """The FID InceptionV3 with the weights of ``path``; names and shapes must all match."""
    net = FIDInceptionV3()
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("AuxLogits.")}
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        what = f"missing {missing[0]}" if missing else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}"
        raise GenzooError(f"{path}: not the pytorch-fid InceptionV3 weights ({what})")
    net.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return net.to(device).eval()


def default_weights_path() -> Path | None:
    """$GENZOO_INCEPTION_WEIGHTS, or the weights file in the genzoo cache folder, if present."""
    env = os.environ.get("GENZOO_INCEPTION_WEIGHTS")
    if env:
        return Path(env).expanduser()
    from genzoo.evaluation.cache import cache_dir
    p = cache_dir() / "weights" / WEIGHTS_NAME
    return p if p.is_file() else None


def fetch_weights() -> Path:
    """Download the weights into the cache folder (honouring $GENZOO_DATA_MIRROR), keeping them
    only when their SHA-256 starts as the file name promises; a partial file never remains."""
    import hashlib
    import tempfile
    import urllib.request

    from genzoo.evaluation.cache import cache_dir
    target = cache_dir() / "weights" / WEIGHTS_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from urllib.parse import urlsplit
    url = WEIGHTS_URL
    mirror = os.environ.get("GENZOO_DATA_MIRROR")       # as genzoo.data.sources reads it
    if mirror:
        url = mirror.rstrip("/") + urlsplit(WEIGHTS_URL).path
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        sha = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        if not sha.hexdigest().startswith(SHA256_PREFIX):
            raise GenzooError(f"{url}: checksum {sha.hexdigest()[:8]}... is not "
                              f"{SHA256_PREFIX}...; the download was deleted")
        os.replace(tmp, target)
    except OSError as e:
        raise GenzooError(f"could not download {url} ({e}); offline? put pytorch-fid's "
                          f"{WEIGHTS_NAME} at {target} or pass --features inception:PATH") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
