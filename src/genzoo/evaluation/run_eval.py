"""Evaluate a trained run the same way for every family.

Draw ``n`` samples from the run's sampling (EMA) weights with a fixed seed, timing them; put
them and real reference items in one feature space; compute the Fréchet distance, KID and
precision/recall there; ask the family for its held-out scalars (bits per dimension, ELBO,
loss per token) where it has them; measure novelty against the training items. The result is
a plain dict, written as RUN/eval.json; :func:`table` prints it.

The reference is the run's own held-out split unless another dataset is given. To compare
families whose recipes adapt the data differently (MNIST padded to 32x32 for one, kept at
28x28 for another), :func:`to_shape` brings samples back to the reference's shape: padding
is cropped away, anything else is resized.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.errors import GenzooError
from genzoo.evaluation import frechet, novelty as N, text as T
from genzoo.evaluation.cache import reference_features
from genzoo.evaluation.features import Extractor, fit_shape, get_extractor
from genzoo.models.base import Family
from genzoo.training.run import RunDir, load_model
from genzoo.training.trainer import resolve_device

SAMPLE_BATCH = 500          # samples drawn per call of Family.sample
NOVELTY_TRAIN_MAX = 10000   # training items searched for each sample's nearest neighbour


def load_reference(description: dict, data: str | None = None):
    """(train, reference) datasets: the run's own split, or ``data`` read with the run's options
    (then all of it is the reference, and the run's training items serve novelty)."""
    opts = dict(description["data"])
    spec = opts.pop("spec")
    options = C.from_dict(D.DataOptions, opts, where="data options")
    try:
        train, held = D.load(spec, options).split(options.holdout)
    except GenzooError:
        if data is None:
            raise
        train, held = None, None            # training data gone: no novelty, say so later
    if data is not None:
        held = D.load(data, options)
    if held is None:
        raise GenzooError(f"{spec}: the run holds nothing out (data.holdout=0); pass --data SPEC")
    return train, held


def _own_held_out(model: Family, description: dict, held):
    """Held-out items as the family was trained on them (its recipe may have resized them):
    the reference itself when it has the model's shape, else the run's own held-out split."""
    if tuple(held.shape) == tuple(model.data.shape):
        return held
    try:
        _, own = load_reference(description)
    except GenzooError:
        return None
    return own if own is not None and tuple(own.shape) == tuple(model.data.shape) else None


def training_seconds(run: RunDir) -> float | None:
    """Wall-clock training time: the last logged step over the loop's rate then (the Trainer's
    steps_per_s counts everything since fit() began: steps, evaluations, grids, checkpoints)."""
    recs = [r for r in run.metrics() if r.get("steps_per_s") and r.get("step")]
    if not recs:
        return None
    return recs[-1]["step"] / recs[-1]["steps_per_s"]


@torch.no_grad()
def draw(model: Family, n: int, seed: int = 0) -> tuple[object, float]:
    """(``n`` samples, seconds per sample), drawn in batches from one seeded generator."""
    g = torch.Generator(model.device).manual_seed(seed)
    parts, t = [], time.perf_counter()
    for start in range(0, n, SAMPLE_BATCH):
        parts.append(model.sample(min(SAMPLE_BATCH, n - start), generator=g))
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - t
    if isinstance(parts[0], torch.Tensor):
        out = torch.cat([p.detach() for p in parts])
    else:
        out = [s for p in parts for s in p]
    return out, seconds / n


def to_shape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] to ``shape``: centre-crop what padding added, else resize."""
    x = x.float().clamp(0, 1)
    c, h, w = shape
    H, W = x.shape[2:]
    if H >= h and W >= w and (H - h) <= H / 4 and (W - w) <= W / 4 and (H, W) != (h, w):
        top, left = (H - h) // 2, (W - w) // 2
        x = x[:, :, top:top + h, left:left + w]
    return fit_shape(x, shape)


@torch.no_grad()
def held_out_scalars(model: Family, held, n: int, batch_size: int = 250, seed: int = 0) -> dict:
    """Mean of the family's ``evaluate`` scalars over up to ``n`` held-out items (fixed seed)."""
    if held is None or type(model).evaluate is Family.evaluate:
        return {}       # only the default (training loss): nothing held-out-specific to report
    sums: dict[str, float] = {}
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, min(n, len(held)), batch_size):
            idx = torch.arange(start, min(n, len(held), start + batch_size))
            batch = {k: v.to(model.device) for k, v in held.batch(idx).items()}
            out = model.evaluate(batch)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
            count += len(idx)
    return {k: v / count for k, v in sums.items()}


def feature_metrics(ex: Extractor, samples: torch.Tensor, reference: torch.Tensor,
                    train: torch.Tensor | None, seed: int = 0) -> tuple[dict, dict, bool]:
    """(metrics, novelty, reference features came from the cache) in the space of ``ex``."""
    f_ref, cached = reference_features(reference, ex.fingerprint, lambda: ex(reference))
    f_gen = ex(samples)
    m = min(1000, len(f_ref), len(f_gen))
    kid_mean, kid_std = frechet.kid(f_ref, f_gen, subsets=100, subset_size=m, seed=seed)
    precision, recall = frechet.precision_recall(f_ref, f_gen, k=3)
    metrics = {ex.distance_name.lower(): frechet.frechet_distance_features(f_ref, f_gen),
               "kid": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall}
    nov = {}
    if train is not None:
        f_train, _ = reference_features(train, ex.fingerprint, lambda: ex(train))
        nov = N.novelty(f_gen, f_train, f_ref).to_dict()
    return metrics, nov, cached


def _texts(x, info) -> list[str]:
    """Samples or dataset rows as strings: token-id rows are decoded (pad ids dropped)."""
    if not isinstance(x, torch.Tensor):
        return [str(s) for s in x]
    from genzoo.data.tokenizers import PAD, from_dict
    tok = from_dict(info.meta["tokenizer"])
    return [tok.decode([i for i in row if i != PAD]) for row in x.long().cpu().tolist()]


def _save_some(samples, model: Family, folder: Path, k: int = 64) -> str | None:
    """The first ``k`` samples as the modality's writer draws them; the picture's path in the
    run folder (a text file where the modality has no picture)."""
    from genzoo.viz.samples import save_samples
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):       # some writers also print (text)
        files = save_samples(samples[:k], model.data, folder / "eval" / "samples")
    best = [f for f in files if Path(f).suffix == ".png"] or \
        [f for f in files if Path(f).suffix == ".txt"]
    return str(Path(best[0]).relative_to(folder)) if best else None


def evaluate_run(run_dir, *, data: str | None = None, features: str | None = None,
                 n: int = 5000, seed: int = 0, device: str = "auto", reference=None,
                 write: bool = True) -> dict:
    """Evaluate the run in ``run_dir`` (see the module docstring); returns the result dict.

    ``reference``: an explicit (train, reference) pair of datasets, as `genzoo compare` gives
    every family the same one.
    """
    if n < 4:
        raise GenzooError(f"-n {n}: need at least 4 samples")
    run = RunDir.open(run_dir)
    description = run.description
    dev = resolve_device(device)
    model, ckpt = load_model(run.path, dev)
    entry = registry.get(model.family_name)
    if entry.taxonomy == "discriminative":
        raise GenzooError(f"{run.path}: a {model.family_name} is not generative; its accuracy is "
                          "in `genzoo info`; use it as --features classifier:RUN_DIR")
    train, held = reference if reference is not None else load_reference(description, data)
    t0 = time.perf_counter()
    result = {"run": str(run.path), "family": model.family_name, "taxonomy": entry.taxonomy,
              "modality": model.data.modality, "parameters": model.num_parameters(),
              "steps": ckpt.get("step"), "data": data or description["data"]["spec"],
              "reference": {"source": held.source, "items": len(held)}, "n_samples": n,
              "training_seconds": training_seconds(run), "notes": []}
    samples, per_sample = draw(model, n, seed)
    result["seconds_per_sample"] = per_sample
    result["sample_grid"] = _save_some(samples, model, run.path) if write else None
    result["held_out"] = held_out_scalars(model, _own_held_out(model, description, held), n)

    if model.data.modality == "image":
        ref_x = held.batch(torch.arange(len(held)))["x"]
        shape = tuple(ref_x.shape[1:])
        if tuple(samples.shape[1:]) != shape:
            result["notes"].append(f"samples {tuple(samples.shape[1:])} brought to the "
                                   f"reference's {shape}")
            samples = to_shape(samples, shape)
        train_x = None
        if train is not None:
            train_x = train.batch(torch.arange(min(len(train), NOVELTY_TRAIN_MAX)))["x"]
        ex = get_extractor(features, shape, dev)
        if ex.note:
            result["notes"].append(ex.note)
        metrics, nov, cached = feature_metrics(ex, samples.float().cpu(), ref_x, train_x, seed)
        result["features"] = {"name": ex.name, "is_fid": ex.is_fid, "cached_reference": cached}
        result["metrics"], result["novelty"] = metrics, nov
    elif model.data.modality == "text":
        words = lambda texts: [t.split() for t in texts]     # noqa: E731  (word n-grams)
        ref = words(_texts(held.x, model.data))
        tr = words(_texts(train.x, model.data)) if train is not None else ref
        result["features"] = {"name": "word n-grams", "is_fid": False, "cached_reference": False}
        result["metrics"] = T.text_statistics(words(_texts(samples, model.data)), tr, ref)
    elif isinstance(samples, torch.Tensor) and samples.dtype.is_floating_point:
        ref_x, train_x = held.x.float(), (train.x.float() if train is not None else None)
        ex = Extractor(f"raw {model.data.modality} ({samples[0].numel()}-d)",
                       lambda x: x.flatten(1), f"raw:{model.data.modality}")
        metrics, nov, cached = feature_metrics(ex, samples.float().cpu(), ref_x, train_x, seed)
        result["features"] = {"name": ex.name, "is_fid": False, "cached_reference": cached}
        result["metrics"], result["novelty"] = metrics, nov
    else:
        result["notes"].append(f"no sample metrics for {model.data.modality} data yet")
        result["metrics"] = {}
    if train is None:
        result["notes"].append("training data unavailable: novelty not measured")
    result["eval_seconds"] = time.perf_counter() - t0
    if write:
        tmp = run.path / ".eval.json.tmp"
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(run.path / "eval.json")
    return result


def table(result: dict) -> str:
    """The result as aligned ``name  value`` lines for the terminal."""
    rows = [("family", f"{result['family']} ({result['taxonomy']})"),
            ("parameters", f"{result['parameters']:,}"), ("steps", result["steps"]),
            ("reference", f"{result['reference']['source']} ({result['reference']['items']} items)"),
            ("samples", result["n_samples"]),
            ("time per sample", f"{result['seconds_per_sample'] * 1e3:.3g} ms")]
    if "features" in result:
        rows.append(("feature space", result["features"]["name"]))
    for k, v in result.get("metrics", {}).items():
        if k == "kid_std":
            continue
        text = f"{v:.4g}"
        if k == "kid":
            text += f" ± {result['metrics']['kid_std']:.2g}"
        rows.append((k.upper() if k in ("fid", "fd", "kid") else k, text))
    for k, v in result.get("held_out", {}).items():
        rows.append((f"held-out {k}", f"{v:.4g}"))
    nov = result.get("novelty") or {}
    if nov:
        rows.append(("novelty", f"{nov['close_fraction']:.1%} of samples nearer a training item "
                     f"than {1 - nov['q']:.0%} of held-out items"
                     + ("  MEMORISING" if nov["memorising"] else "")))
    for note in result.get("notes", []):
        rows.append(("note", note))
    w = max(len(str(k)) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
