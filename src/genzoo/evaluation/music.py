"""Statistics of music: MuseGAN's piano-roll measures, baselines for held-out loss per token,
and the music modality's evaluator (``genzoo eval``, ``genzoo compare``).

Piano rolls are (N, bars, steps, pitches, tracks) with values in {0, 1}; ``low`` is the MIDI
pitch of pitch index 0. The measures of Dong et al. 2018 (sec. 5), per track:

- empty bars: the fraction of bars in which the track plays no note (the reference code
  returns the fraction of *non*-empty bars under this name; here it is what it says).
- used pitch classes: how many of the 12 pitch classes a bar uses, over non-empty bars.
- qualified notes: the fraction of notes at least ``min_steps`` steps long (the paper's 3).
- tonal distance between two tracks (Harte et al. 2006): each beat's pitch-class profile of a
  track is mapped to the 6-d tonal centroid (fifths, minor and major thirds as circles), and
  the distance of the two tracks' centroids is averaged over the beats where both play (the
  reference code's beats; its chroma groups neighbouring pitch indices, not pitch classes,
  which is fixed here). Real harmony keeps voices close; one track's bars shuffled across
  pieces is the control.

Baselines for the S A T B grid as tokens (data.music=grid), in nats per token on held-out
pieces, fitted on training pieces, every probability smoothed so none is zero: the unigram of
each voice; "previous step": p(token | voice, the same voice's token a step before), add-one
smoothed (a voice mostly holds its note); and an interpolated trigram over (the same voice's
previous step, the token just before), backing off to the unigram.

The evaluator (:func:`measure`) decodes samples, held-out and training items to scores with
their own data's meta (so each is read with its own vocabulary or pitch range) and reports
the pitch-class and duration histogram distances and the copied-run novelty of
evaluation/music_notes.py, each beside its control, and for piano rolls the measures above
beside the held-out ones (and the tonal distance of the held-out items with the last track's
bars shuffled).
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
from torch import Tensor

from genzoo.evaluation import music_notes as MN
from genzoo.evaluation.modalities import Samples, evaluator

# Harte et al.'s tonal centroid: circles of fifths (r=1), minor thirds (1), major thirds (0.5)
_R = (1.0, 1.0, 0.5)
_ANGLE = (7 * math.pi / 6, 3 * math.pi / 2, 2 * math.pi / 3)
PHI = torch.tensor([[r * f(l * a) for l in range(12)]
                    for r, a in zip(_R, _ANGLE) for f in (math.sin, math.cos)])   # (6, 12)


def empty_bars(x: Tensor) -> Tensor:
    """Per track, the fraction of bars with no note: (tracks,)."""
    return (x.sum((2, 3)) == 0).float().mean((0, 1))


def pitch_classes(x: Tensor, low: int, steps: int | None = None) -> Tensor:
    """How much each pitch class sounds per bar (or per window of ``steps`` steps) and track:
    (N, windows, 12, tracks)."""
    x = x.float()
    if steps:
        x = x.flatten(1, 2).unflatten(1, (-1, steps))              # (N, windows, steps, ...)
    per_pitch = x.sum(2)                                           # (N, windows, pitches, tracks)
    pc = (torch.arange(per_pitch.shape[2]) + low) % 12
    out = per_pitch.new_zeros(*per_pitch.shape[:2], 12, per_pitch.shape[3])
    return out.index_add_(2, pc, per_pitch)


def used_pitch_classes(x: Tensor, low: int) -> Tensor:
    """Per track, the mean number of pitch classes a non-empty bar uses: (tracks,)."""
    used = (pitch_classes(x, low) > 0).sum(2).float()              # (N, bars, tracks)
    playing = used > 0
    return (used * playing).sum((0, 1)) / playing.sum((0, 1)).clamp_min(1)


def qualified_notes(x: Tensor, min_steps: int = 3) -> Tensor:
    """Per track, the fraction of notes (runs of sounding steps of one pitch across the
    item's bars) lasting at least ``min_steps`` steps: (tracks,)."""
    on = x.flatten(1, 2).bool()                                    # (N, time, pitches, tracks)
    starts = on & ~torch.cat([torch.zeros_like(on[:, :1]), on[:, :-1]], 1)
    t = torch.arange(on.shape[1]).view(1, -1, 1, 1)
    # a note's length: the next off-step after its start, minus the start
    off_at = torch.where(on, torch.full_like(t, on.shape[1]), t).expand_as(on)
    next_off = off_at.flip(1).cummin(1).values.flip(1)             # first off at or after t
    length = next_off - t
    notes = starts.sum((0, 1, 2)).float()
    good = (starts & (length >= min_steps)).sum((0, 1, 2)).float()
    return good / notes.clamp_min(1)


def tonal_distance(x: Tensor, low: int, a: int, b: int, beat: int = 4) -> float:
    """Mean over beats (``beat`` steps) where tracks ``a`` and ``b`` both play of the distance
    of their tonal centroids (each profile, L1-normalised, through Harte et al.'s map)."""
    pc = pitch_classes(x, low, beat)                                # (N, beats, 12, tracks)
    pa, pb = pc[..., a], pc[..., b]
    both = (pa.sum(-1) > 0) & (pb.sum(-1) > 0)
    ca = pa / pa.sum(-1, keepdim=True).clamp_min(1e-9) @ PHI.T
    cb = pb / pb.sum(-1, keepdim=True).clamp_min(1e-9) @ PHI.T
    d = (ca - cb).norm(dim=-1)
    return float(d[both].mean()) if both.any() else float("nan")


def shuffle_track(x: Tensor, track: int, generator: torch.Generator | None = None) -> Tensor:
    """The control: track ``track``'s bars permuted across all items and bars."""
    y = x.clone()
    flat = y[..., track].flatten(0, 1)                              # (N * bars, steps, pitches)
    perm = torch.randperm(len(flat), generator=generator)
    y[..., track] = flat[perm].view_as(y[..., track])
    return y


def roll_statistics(x: Tensor, low: int, names: list[str] | None = None) -> dict[str, float]:
    """The measures above for every track, and the tonal distance of the first and last."""
    K = x.shape[-1]
    names = names or [f"track{k}" for k in range(K)]
    out = {}
    for k, (eb, upc, qn) in enumerate(zip(empty_bars(x), used_pitch_classes(x, low),
                                          qualified_notes(x))):
        out |= {f"empty_bars/{names[k]}": float(eb), f"pitch_classes/{names[k]}": float(upc),
                f"qualified_notes/{names[k]}": float(qn)}
    if K > 1:
        out[f"tonal_distance/{names[0]}-{names[-1]}"] = tonal_distance(x, low, 0, K - 1)
    return out


# ---------------------------------------------------------------- baselines for the grid

def _streams(grids: list[np.ndarray]) -> list[list[tuple[int, int]]]:
    """(voice, token) per position of each piece, the grid read step by step (rest = -1)."""
    out = []
    for a in grids:
        V = a.shape[1]
        toks = np.where(np.isnan(a), -1, a).astype(int).reshape(-1).tolist()
        out.append([(i % V, t) for i, t in enumerate(toks)])
    return out


def grid_baselines(train: list[np.ndarray], held: list[np.ndarray]) -> dict[str, float]:
    """Nats per token on ``held`` of three baselines fitted on ``train`` (see the docstring)."""
    tr, te = _streams(train), _streams(held)
    vocab = {t for s in tr + te for _, t in s}
    V = len(vocab)
    uni = Counter((v, t) for s in tr for v, t in s)
    per_voice = Counter(v for s in tr for v, _ in s)
    p_uni = lambda v, t: (uni[v, t] + 1) / (per_voice[v] + V)      # noqa: E731  add-one
    voices = max(v for s in tr for v, _ in s) + 1
    big, big_ctx, tri, ctx = Counter(), Counter(), Counter(), Counter()
    for s in tr:
        for i in range(voices, len(s)):
            (v, t), prev = s[i], s[i - voices][1]
            big[v, prev, t] += 1
            big_ctx[v, prev] += 1
            key = (v, prev, s[i - 1][1])
            tri[key + (t,)] += 1
            ctx[key] += 1
    totals = {"unigram": 0.0, "previous_step": 0.0, "trigram": 0.0}
    n = 0
    for s in te:
        for i, (v, t) in enumerate(s):
            u = p_uni(v, t)
            if i < voices:
                p_prev = p_tri = u
            else:
                prev = s[i - voices][1]
                p_prev = (big[v, prev, t] + 1) / (big_ctx[v, prev] + V)
                key = (v, prev, s[i - 1][1])
                c = ctx[key]
                lam = c / (c + 1.0)                                 # trust a context seen often
                p_tri = lam * tri[key + (t,)] / max(c, 1) + (1 - lam) * u
            totals["unigram"] -= math.log(u)
            totals["previous_step"] -= math.log(p_prev)
            totals["trigram"] -= math.log(p_tri)
            n += 1
    return {k: v / max(n, 1) for k, v in totals.items()}


# ---------------------------------------------------------------- the evaluator

NOVELTY_TRAIN_MAX = 5000        # training items searched for copied runs (the last ones)


def _scores(x, meta: dict) -> list:
    """Scores of samples (ids, rolls, or a dict of note and duration ids) or dataset rows."""
    from genzoo.data.music import decode
    if isinstance(x, dict):
        return decode(x["x"], meta, x.get("duration"))
    return decode(x, meta)


def _rows(ds, last: int | None = None):
    """The items of dataset ``ds`` (the ``last`` ones) as a batch dict."""
    n = len(ds)
    return ds.batch(torch.arange(max(0, n - last) if last else 0, n))


@evaluator("music")
def measure(s: Samples) -> dict:
    """Histogram distances, copied runs and (piano rolls) MuseGAN's measures; see above."""
    fake = _scores(s.x, s.info.meta)
    ref_batch = _rows(s.reference)
    ref = _scores(ref_batch, s.reference.meta)
    metrics = MN.histogram_distances(fake, ref)
    notes = ["histogram distances: total variation (0 = same, 1 = disjoint) of the pooled "
             "pitch-class and duration histograms against the held-out pieces"]
    if s.train is not None:
        train = _scores(_rows(s.train, NOVELTY_TRAIN_MAX), s.train.meta)
        metrics |= {f"train_{k}": v for k, v in MN.histogram_distances(train, ref).items()}
        metrics |= MN.novelty(fake, train, ref)
        notes.append(f"copied run: longest run of a sample's notes found in the training "
                     f"pieces, {metrics['copied_run']:.1f} notes on average "
                     f"(held-out pieces: {metrics['held_out_copied_run']:.1f})")
    if s.info.meta.get("representation") == "pianoroll" and isinstance(s.x, Tensor):
        names = s.info.meta.get("tracks")
        real = ref_batch["x"].float()
        metrics |= roll_statistics(s.x.float().cpu(), s.info.meta["pitch_low"], names)
        low = s.reference.meta["pitch_low"]
        metrics |= {f"held_out_{k}": v for k, v in roll_statistics(real, low, names).items()}
        if real.shape[-1] > 1:
            shuffled = shuffle_track(real, real.shape[-1] - 1, torch.Generator().manual_seed(s.seed))
            metrics["shuffled_tonal_distance"] = tonal_distance(shuffled, low, 0, real.shape[-1] - 1)
    return {"features": {"name": "notes", "is_fid": False, "cached_reference": False},
            "metrics": metrics, "notes": notes}
