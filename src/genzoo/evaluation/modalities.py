"""How the samples of each modality are measured, registered by modality as families are by name.

An evaluator gets :class:`Samples` (what a family drew, the held-out reference items, the
training items) and returns the sample metrics with the space they were measured in:

- images: in a feature space the user names (``--features``; evaluation/features.py), brought
  to the reference's shape first, since recipes adapt sizes (:func:`to_shape`);
- points: in their own coordinates;

both with the Fréchet distance, KID, precision/recall and novelty against the training items
(:func:`feature_metrics`); text is measured by word n-grams (evaluation/text.py). A new
modality registers its evaluator with ``@evaluator(name)`` in ``genzoo/evaluation/<name>.py``,
which :func:`get` imports on first use: evaluation code never lists the modalities.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import torch

from genzoo.data.dataset import TensorDataset
from genzoo.evaluation import frechet, novelty as N
from genzoo.evaluation.cache import reference_features
from genzoo.evaluation.features import Extractor, fit_shape, get_extractor
from genzoo.models.base import DataInfo

NOVELTY_TRAIN_MAX = 10000   # training images searched for each sample's nearest neighbour


@dataclass
class Samples:
    x: Any                          # what Family.sample returned
    info: DataInfo                  # what they are (the family's output_info)
    reference: TensorDataset        # held-out items to compare them with
    train: TensorDataset | None     # the training items (None: gone; no novelty then)
    features: str | None = None     # the feature space asked for, where the modality has a choice
    device: torch.device | str = "cpu"
    seed: int = 0


@dataclass(frozen=True)
class Evaluator:
    modality: str
    # Samples -> {"features": {"name", "is_fid", "cached_reference"}, "metrics": {...},
    #             "novelty": {...} (optional), "notes": [...] (optional)}
    measure: Callable[[Samples], dict]
    # one reference, read once with the common data options, serves every run of a comparison
    # (samples are brought to its shape); else each run is measured on its own held-out split
    shared_reference: bool = False


_EVALUATORS: dict[str, Evaluator] = {}


def evaluator(modality: str, shared_reference: bool = False):
    """Decorator: ``measure(samples: Samples) -> dict`` evaluates samples of ``modality``."""
    def deco(fn):
        _EVALUATORS[modality] = Evaluator(modality, fn, shared_reference)
        return fn
    return deco


def get(modality: str) -> Evaluator | None:
    """The evaluator of ``modality`` (None: no sample metrics for it yet)."""
    if modality not in _EVALUATORS:
        try:
            importlib.import_module(f"genzoo.evaluation.{modality}")
        except ModuleNotFoundError as e:
            if e.name != f"genzoo.evaluation.{modality}":
                raise
    return _EVALUATORS.get(modality)


def feature_metrics(ex: Extractor, samples: torch.Tensor, reference, train=None,
                    seed: int = 0) -> dict:
    """FD (FID in the standard space), KID, precision/recall and novelty in the space of ``ex``.
    ``reference`` and ``train`` are datasets (in memory or streamed: their features are taken
    a batch at a time, and cached by content); ``train`` None: no novelty."""
    f_ref, cached = reference_features(reference, ex.fingerprint, lambda: ex.over(reference))
    f_gen = ex(samples)
    m = min(1000, len(f_ref), len(f_gen))
    kid_mean, kid_std = frechet.kid(f_ref, f_gen, subsets=100, subset_size=m, seed=seed)
    precision, recall = frechet.precision_recall(f_ref, f_gen, k=3)
    metrics = {ex.distance_name.lower(): frechet.frechet_distance_features(f_ref, f_gen),
               "kid": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall}
    nov, notes = {}, [ex.note] if ex.note else []
    if train is not None:
        f_train, _ = reference_features(train, ex.fingerprint, lambda: ex.over(train))
        nov = {**N.novelty(f_gen, f_train, f_ref).to_dict(), "space": ex.name}
        notes.append(N.verdict(nov, ex.name))
    return {"features": {"name": ex.name, "is_fid": ex.is_fid, "cached_reference": cached},
            "metrics": metrics, "novelty": nov, "notes": notes}


def to_shape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] to ``shape``: centre-crop what padding added, else resize."""
    x = x.float().clamp(0, 1)
    c, h, w = shape
    H, W = x.shape[2:]
    if H >= h and W >= w and (H - h) <= H / 4 and (W - w) <= W / 4 and (H, W) != (h, w):
        top, left = (H - h) // 2, (W - w) // 2
        x = x[:, :, top:top + h, left:left + w]
    return fit_shape(x, shape)


@evaluator("image", shared_reference=True)
def images(s: Samples) -> dict:
    shape = tuple(s.reference.shape)
    x, notes = s.x, []
    if tuple(x.shape[1:]) != shape:
        notes.append(f"samples {tuple(x.shape[1:])} brought to the reference's {shape}")
        x = to_shape(x, shape)
    train = s.train.head(min(len(s.train), NOVELTY_TRAIN_MAX)) if s.train is not None else None
    out = feature_metrics(get_extractor(s.features, shape, s.device), x.float().cpu(),
                          s.reference, train, s.seed)
    out["notes"] = notes + out["notes"]
    return out


@evaluator("points")
def points(s: Samples) -> dict:
    ex = Extractor(f"raw points ({s.x[0].numel()}-d)", lambda x: x.flatten(1), "raw:points")
    return feature_metrics(ex, s.x.float().cpu(), s.reference, s.train, s.seed)
