"""Latent operations for families with a decoder: codes of seeds or of images, the line
between two codes, and the plane of a 2-d code (Foster, ch. 3; White 2016, "Sampling
generative networks", on walking a latent space).

Everything is read from the model's capabilities, never from its name. The code of a seed is
the family's own prior draw when it has ``prior(n, generator)``, else the code of the sample
that seed draws, ``encode(sample(1))``. Interpolation decodes z_t = z_0 + t (z_1 - z_0) for t
evenly spaced in [0, 1]; the plane spans the 1st to 99th percentile of many codes, and a point
of it is decoded on demand.
"""
from __future__ import annotations

import base64
import binascii
import io

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from genzoo.errors import GenzooError

MAX_UPLOAD = 10 * 2 ** 20     # bytes of one uploaded image


def codes(model, n: int, seed: int) -> torch.Tensor:
    """``n`` codes drawn with ``seed``: (n, ...) floating point."""
    g = torch.Generator(model.device).manual_seed(seed)
    if callable(getattr(model, "prior", None)):
        z = model.prior(n, g)
    elif callable(getattr(model, "encode", None)):
        z = model.encode(model.sample(n, generator=g))
    else:
        raise GenzooError(f"{model.family_name}: has no prior and no encoder to find codes with")
    if not torch.is_tensor(z) or not z.is_floating_point():
        raise GenzooError(f"{model.family_name}: its codes are discrete; there is no line "
                          f"or plane between them")
    return z


def image_bytes(data_url: str) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL (or of plain base64)."""
    if not isinstance(data_url, str):
        raise GenzooError("images: each must be a data URL (data:image/png;base64,...)")
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    if len(payload) > MAX_UPLOAD * 4 // 3 + 4:
        raise GenzooError(f"images: an upload is larger than {MAX_UPLOAD // 2 ** 20} MiB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise GenzooError("images: not base64 data") from None


def image_tensor(data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
    """An uploaded image as the model's input: (C, H, W) float in [0, 1], grey or colour as
    the data, centre-cropped to its aspect and resized."""
    c, h, w = shape
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise GenzooError("images: an uploaded file is not an image PIL can read") from None
    img = ImageOps.fit(img.convert("L" if c == 1 else "RGB"), (w, h), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = a[None] if c == 1 else a.transpose(2, 0, 1)
    if a.shape[0] != c:
        raise GenzooError(f"images: the run's images have {c} channels; cannot convert to that")
    return torch.from_numpy(np.ascontiguousarray(a))


def uploads(images, shape: tuple[int, ...]) -> torch.Tensor:
    """Two uploaded images (data URLs) as a batch of the model's input, (2, C, H, W)."""
    if not isinstance(images, list) or len(images) != 2:
        raise GenzooError("images: give two images (data URLs)")
    return torch.stack([image_tensor(image_bytes(u), shape) for u in images])


def endpoints(model, seeds=None, x: torch.Tensor | None = None) -> torch.Tensor:
    """The two codes to walk between: of two seeds, or of two images ``x``."""
    if x is not None:
        return model.encode(x.to(model.device))
    return torch.cat([codes(model, 1, s) for s in seeds])


def line(model, z: torch.Tensor, steps: int) -> torch.Tensor:
    """decode(z_0 + t (z_1 - z_0)) for ``steps`` values of t from 0 to 1."""
    t = torch.linspace(0, 1, steps, device=z.device).view(-1, *[1] * (z.dim() - 1))
    return model.decode(z[0:1] + t * (z[1:2] - z[0:1]))


def plane(model, n: int = 512, seed: int = 0) -> dict:
    """Where the codes lie: the latent's size, and for a 2-d latent the box of the 1st to 99th
    percentile of ``n`` codes (widened by a tenth, at least 0.05) and the codes themselves to draw."""
    z = codes(model, n, seed)
    dim = list(z.shape[1:])
    if dim != [2]:
        return {"dim": dim}
    lo, hi = torch.quantile(z.float(), 0.01, 0), torch.quantile(z.float(), 0.99, 0)
    pad = ((hi - lo) * 0.1).clamp(min=0.05)      # codes that have not spread yet still get a box
    return {"dim": dim, "lo": (lo - pad).tolist(), "hi": (hi + pad).tolist(),
            "points": [[round(a, 4), round(b, 4)] for a, b in z.tolist()]}


def point(model, z) -> torch.Tensor:
    """decode(z) of one point given as a list of numbers, checked against the latent's size."""
    size = codes(model, 1, 0).shape[1:]
    try:
        t = torch.tensor(z, dtype=torch.float32, device=model.device)
    except (TypeError, ValueError):
        raise GenzooError("z: must be a list of numbers") from None
    if tuple(t.shape) != tuple(size) or not torch.isfinite(t).all():
        raise GenzooError(f"z: must be {list(size)} finite numbers (the latent's size), "
                          f"got {z!r}")
    return model.decode(t[None])
