"""Evaluate a trained run the same way for every family.

Draw ``n`` samples from the run's sampling (EMA) weights with a fixed seed, timing them, and
measure them against real reference items as their modality's evaluator does (images: the
Fréchet distance, KID, precision/recall and novelty in a feature space; see
evaluation/modalities.py); ask the family for its held-out scalars where it has them, and for
its likelihood as a typed value (number, unit, levels, exact or bound), so that reports put
only comparable likelihoods side by side. The result is a plain dict, written as
RUN/eval.json; genzoo.viz.results shows it.

The reference is the run's own held-out split unless another dataset is given (`genzoo
compare` gives every run the same one where the modality allows it).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genzoo import config as C
from genzoo import data as D
from genzoo import registry
from genzoo.data import passes
from genzoo.errors import GenzooError
from genzoo.evaluation import modalities
from genzoo.models.base import Family
from genzoo.training.description import RunSpec
from genzoo.training.launch import load_data
from genzoo.training.run import RunDir, load_model
from genzoo.training.trainer import resolve_device

SAMPLE_BATCH = 500          # samples drawn per call of Family.sample
HELD_OUT_BATCH = 250        # held-out items per call of Family.evaluate


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
    try:       # read as the run read it: adapted by its recipe, derived through its components
        spec = RunSpec.from_dict(description)
        _, own = load_data(spec, dict(model.components), progress=False, log=lambda *_: None)
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


def fast_options(model: Family) -> dict:
    """The sample options the family declares for quick sampling (a diffusion model's few-step
    solver), to use where time is short (genzoo compare, eval --fast)."""
    return {o.name: o.fast for o in type(model).sample_options if o.fast is not None}


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Batches of samples as one; sequences that stopped at different lengths are padded
    with 0 (the PAD id) to the longest."""
    parts = [p.detach() for p in parts]
    if parts[0].dim() >= 2 and len({p.shape[1] for p in parts}) > 1:
        T = max(p.shape[1] for p in parts)
        parts = [torch.nn.functional.pad(p, (0, 0) * (p.dim() - 2) + (0, T - p.shape[1]))
                 for p in parts]
    return torch.cat(parts)


@torch.no_grad()
def draw(model: Family, n: int, seed: int = 0, options: dict | None = None
         ) -> tuple[object, float]:
    """(``n`` samples, seconds per sample), drawn in batches from one seeded generator, with the
    family's sample ``options``."""
    g = torch.Generator(model.device).manual_seed(seed)
    parts, t = [], time.perf_counter()
    for start in range(0, n, SAMPLE_BATCH):
        parts.append(model.sample(min(SAMPLE_BATCH, n - start), generator=g, **(options or {})))
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - t
    if isinstance(parts[0], torch.Tensor):
        out = _cat(parts)
    elif isinstance(parts[0], dict):          # several streams (notes and durations)
        out = {k: _cat([p[k] for p in parts]) for k in parts[0]}
    else:
        out = [s for p in parts for s in p]
    return out, seconds / n


@torch.no_grad()
def held_out_scalars(model: Family, held, n: int, batch_size: int | None = None,
                     seed: int = 0) -> dict:
    """Mean of the family's ``evaluate`` scalars over up to ``n`` held-out items (fixed seed)."""
    if held is None or type(model).evaluate is Family.evaluate:
        return {}       # only the default (training loss): nothing held-out-specific to report
    sums: dict[str, float] = {}
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in passes.batches(held, batch_size or HELD_OUT_BATCH, limit=n):  # may stream
            batch = {k: v.to(model.device) for k, v in batch.items()}
            out, size = model.evaluate(batch), len(batch["x"])
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * size
            count += size
    return {k: v / count for k, v in sums.items()}


def _save_some(samples, model: Family, folder: Path, k: int = 64) -> str | None:
    """The first ``k`` samples as the modality's writer draws them; the picture's path in the
    run folder (a text file where the modality has no picture)."""
    from genzoo.viz.samples import save_samples
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):       # some writers also print (text)
        head = ({name: v[:k] for name, v in samples.items()} if isinstance(samples, dict)
                else samples[:k])
        files = save_samples(head, model.output_info, folder / "eval" / "samples")
    best = [f for f in files if Path(f).suffix == ".png"] or \
        [f for f in files if Path(f).suffix == ".txt"]
    return str(Path(best[0]).relative_to(folder)) if best else None


def evaluate_run(run_dir, *, data: str | None = None, features: str | None = None,
                 n: int = 5000, seed: int = 0, device: str = "auto", reference=None,
                 write: bool = True, fast: bool = False) -> dict:
    """Evaluate the run in ``run_dir`` (see the module docstring); returns the result dict.

    ``reference``: an explicit (train, reference) pair of datasets, as `genzoo compare` gives
    every family the same one. ``fast``: sample with the family's declared fast options.
    """
    if n < 4:
        raise GenzooError(f"-n {n}: need at least 4 samples")
    run = RunDir.open(run_dir)
    description = run.spec.to_dict()        # read and checked whole, or one line
    dev = resolve_device(device)
    model, ckpt = load_model(run.path, dev)
    entry = registry.get(model.family_name)
    if entry.taxonomy == "discriminative":
        raise GenzooError(f"{run.path}: a {model.family_name} is not generative; its accuracy is "
                          "in `genzoo info`; use it as --features classifier:RUN_DIR")
    train, held = reference if reference is not None else load_reference(description, data)
    t0 = time.perf_counter()
    info = model.output_info
    result = {"run": str(run.path), "family": model.family_name, "taxonomy": entry.taxonomy,
              "modality": info.modality, "parameters": model.num_parameters(),
              "steps": ckpt.get("step"), "data": data or description["data"]["spec"],
              "reference": {"source": held.source_spec, "items": len(held)}, "n_samples": n,
              "training_seconds": training_seconds(run), "notes": []}
    options = fast_options(model) if fast else {}
    result["sample_options"] = options
    samples, per_sample = draw(model, n, seed, options)
    result["seconds_per_sample"] = per_sample
    if options:
        result["notes"].append("sampled with the family's fast options: " + ", ".join(
            f"{k}={v}" for k, v in options.items()))
    result["sample_grid"] = _save_some(samples, model, run.path) if write else None
    result["held_out"] = held_out_scalars(model, _own_held_out(model, description, held), n)

    lk = model.likelihood(result["held_out"]) if result["held_out"] else None
    result["likelihood"] = lk.to_dict() if lk is not None else None

    ev = modalities.get(info.modality)
    if ev is None:
        result["notes"].append(f"no sample metrics for {info.modality} data yet")
        result["metrics"] = {}
    else:
        measured = ev.measure(modalities.Samples(samples, info, held, train, features, dev, seed))
        result["notes"] += measured.pop("notes", [])
        result.update(measured)
    if train is None:
        result["notes"].append("training data unavailable: novelty not measured")
    result["eval_seconds"] = time.perf_counter() - t0
    if write:
        tmp = run.path / ".eval.json.tmp"
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(run.path / "eval.json")
    return result

