"""What the multimodal families show once trained.

- kl_autoencoder: ``reconstructions.png`` (held-out pictures, each above its reconstruction),
  ``latents.png`` (unit-Gaussian latents decoded) and ``autoencoder.json`` (mean absolute
  error per pixel, the latent scale factor).
- clip: ``similarity.png`` (held-out pictures against their first captions: the cosine
  similarities, the diagonal should stand out), ``retrieval.png`` (for a few captions, the five
  nearest held-out pictures) and ``clip.json`` (recall@1/5 both ways, zero-shot accuracy
  where there are labels).
- unclip: ``prompts.png`` as latent diffusion's (through the prior), and ``variations.png``:
  held-out pictures (first column) and pictures the decoder draws from CLIP's embedding of each.
- latent_diffusion: ``prompts.png`` (a row of samples per example caption, listed in
  ``prompts.txt``), ``guidance.png`` (the same noise under guidance w = 0, 1, 2, 3, 5, 8),
  and for the builtin shapes ``novel.png``: captions with colour-shape pairs never seen in
  training.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from genzoo.evaluation import contrastive
from genzoo.viz.grid import save_grid, to_uint8
from genzoo.viz.plots import plt, save_figure

GUIDANCE = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)


def _held(data, n: int) -> torch.Tensor:
    return data.batch(torch.arange(min(n, len(data)), device=data.x.device))["x"]


@torch.no_grad()
def kl_showcase(model, data, out: Path, generator=None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    x = _held(data, 16).to(model.device)
    r = model.reconstruct(x)
    rows = torch.cat([torch.stack([x[i:i + 8], r[i:i + 8]]).flatten(0, 1) for i in range(0, len(x), 8)])
    files = [save_grid(rows, out / "reconstructions.png", nrow=min(8, len(x)))]
    files.append(save_grid(model.sample(16, generator), out / "latents.png", nrow=8))
    facts = {"mae_per_pixel": float((r - x).abs().mean()), "latent_scale": float(model.scale),
             "latent_shape": list(model.latent_shape), "items": len(x)}
    (out / "autoencoder.json").write_text(json.dumps(facts, indent=1))
    return files + [out / "autoencoder.json"]


@torch.no_grad()
def clip_showcase(model, data, out: Path, generator=None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    facts = {"held_out_items": len(data), **contrastive.retrieval(model, data)}
    if data.y is not None:
        facts["zero_shot_accuracy"] = contrastive.zero_shot(model, data)
    (out / "clip.json").write_text(json.dumps(facts, indent=1))
    texts = [cs[0] for cs in contrastive.caption_texts(data)]
    x = _held(data, len(data)).cpu()
    k = min(10, len(x))
    sim = contrastive.embed_images(model, x[:k]) @ contrastive.embed_texts(model, texts[:k]).t()
    fig = plt.figure(figsize=(2 + 0.8 * k, 1.5 + 0.45 * k), dpi=100)
    grid = fig.add_gridspec(2, k, height_ratios=[1, 0.5 * k])
    for i in range(k):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(to_uint8(x[i:i + 1])[0].squeeze(), cmap="gray")
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(sim.t().numpy(), cmap="viridis")
    ax.set_yticks(range(k), [t[:48] for t in texts[:k]], fontsize=7)
    ax.set_xticks([])
    ax.set_title("cosine similarity: captions (rows) against pictures (columns)", fontsize=8)
    files = [save_figure(fig, out / "similarity.png")]
    queries = list(dict.fromkeys(texts))[:6]
    I = contrastive.embed_images(model, x)
    top = (contrastive.embed_texts(model, queries) @ I.t()).topk(min(5, len(x)), dim=1).indices
    files.append(save_grid(x[top.flatten()], out / "retrieval.png", nrow=top.shape[1]))
    (out / "retrieval.txt").write_text("\n".join(queries) + "\n")
    return files + [out / "clip.json", out / "retrieval.txt"]


def _novel_prompts(model) -> list[str]:
    """Captions of held-out colour-shape pairs, where the data is the builtin shapes."""
    meta = model.data.meta.get("source_info", {}).get("meta", {})
    pairs = (meta.get("shapes") or {}).get("held_out_pairs") or []
    return [f"{n} {size} {pair}{'s' if n != 'a' else ''} {place}" for pair in pairs
            for n, size, place in (("a", "large", "on the left"), ("two", "small", "at the top"))]


def _prompts(model, out: Path, generator, meta: dict) -> list[Path]:
    """A row of samples per example caption (listed in prompts.txt)."""
    prompts = (meta.get("caption_examples") or [""])[:8]
    per = 8
    x = model.sample(len(prompts) * per, generator, prompt=[p for p in prompts for _ in range(per)])
    (out / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return [save_grid(x, out / "prompts.png", nrow=per), out / "prompts.txt"]


@torch.no_grad()
def unclip_showcase(model, data, out: Path, generator=None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    files = _prompts(model, out, generator, model.data.meta)
    x = _held(data, 4).to(model.device)
    per = 7
    z = model.image_embedding(x).repeat_interleave(per, 0)
    v = model.generate(len(z), z, generator).clamp(0, 1).view(len(x), per, *x.shape[1:])
    rows = torch.cat([x[:, None], v], 1).flatten(0, 1)
    files.append(save_grid(rows, out / "variations.png", nrow=per + 1))
    return files


@torch.no_grad()
def ldm_showcase(model, data, out: Path, generator=None) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    meta = model.data.meta.get("source_info", {}).get("meta", {})
    files = _prompts(model, out, generator, meta)
    prompts = (meta.get("caption_examples") or [""])[:8]
    few = prompts[:4]
    z = torch.randn(len(few), *model.data.shape, generator=generator, device=model.device)
    cols = [model.sample(len(few), prompt=few, guidance=w, noise=z) for w in GUIDANCE]
    files.append(save_grid(torch.stack(cols, 1).flatten(0, 1), out / "guidance.png",
                           nrow=len(GUIDANCE)))
    novel = _novel_prompts(model)
    if novel:
        x = model.sample(len(novel) * 4, generator, prompt=[p for p in novel for _ in range(4)])
        files.append(save_grid(x, out / "novel.png", nrow=4))
        (out / "novel.txt").write_text("\n".join(novel) + "\n")
    return files
