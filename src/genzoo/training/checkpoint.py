"""Checkpoints: tensors in safetensors, everything else as plain JSON, written atomically.

One checkpoint is one ``.safetensors`` file, so it appears whole or not at all: it is written
to a temporary name in the same folder, flushed to disk, then renamed over its final name. The
JSON description (family, configs, step, versions, optimiser hyperparameters, RNG states, data
position) travels inside it as safetensors metadata, and a copy is written beside it for people
to read. Loading never unpickles anything.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from genzoo.errors import GenzooError

_TENSOR = "__tensor__"


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor in a nested dict/list into ``tensors``; return the JSON skeleton."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach()       # save() makes it contiguous and CPU
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _key(k):
    return k if isinstance(k, (int, str)) else str(k)


def unflatten(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skel, dict):
        if _TENSOR in skel:
            return tensors[skel[_TENSOR]]
        return {k: unflatten(v, tensors) for k, v in skel["__dict__"]}
    if isinstance(skel, list):
        return [unflatten(v, tensors) for v in skel]
    return skel


def save(path: Path, tensors: dict[str, torch.Tensor], description: dict) -> None:
    """Write ``tensors`` and ``description`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    text = json.dumps(description)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"genzoo": text})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    side = path.with_suffix(".json")
    tmp_side = side.with_name(".tmp-" + side.name)
    tmp_side.write_text(json.dumps(description, indent=1))
    os.replace(tmp_side, side)


def load(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, description) of a checkpoint written by :func:`save`."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise GenzooError(f"{path}: checkpoint not found") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise GenzooError(f"{path}: not a readable checkpoint ({e})") from None
    if "genzoo" not in meta:
        raise GenzooError(f"{path}: not a genzoo checkpoint (no description inside)")
    return tensors, json.loads(meta["genzoo"])


def sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.``, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def listing(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first."""
    return sorted(Path(folder).glob("step_*.safetensors"))


def name_for(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def own_state(model: torch.nn.Module, with_components: bool) -> dict[str, torch.Tensor]:
    """The model's state dict, without its frozen components' weights unless asked."""
    sd = model.state_dict()
    if with_components:
        return sd
    return {k: v for k, v in sd.items() if not k.startswith("components.")}


def load_own_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where) -> None:
    """Load a state saved by :func:`own_state` (components' keys may be absent)."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:           # tensors of other shapes: another model's checkpoint
        first = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line),
                     str(e).splitlines()[0])
        raise GenzooError(f"{where}: checkpoint does not fit the model ({first})") from None
    missing = [k for k in missing if not k.startswith("components.")]
    if missing or unexpected:
        raise GenzooError(f"{where}: checkpoint does not fit the model "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
