"""Measuring with a trained CLIP (Radford et al. 2021; Hessel et al. 2021).

- :func:`retrieval`: recall@k over a whole captioned set, both ways: for each image, is its
  caption among the k captions most similar to it, and for each caption its image among the
  k nearest images. Each image's first caption is used; captions that are the same text count
  as the same (a templated set has one per class).
- :func:`zero_shot`: accuracy of naming each labelled image's class by the most similar class
  prompt (the prompts of a class averaged, as the paper's ensembling).
- :func:`clip_score`: how well pictures match their prompts, 100 * max(cos(E_I, E_T), 0)
  averaged over the pairs (the CLIPScore of Hessel et al. with weight 100, as torchmetrics
  reports it); comparable only between numbers from the same CLIP run, which is named.

Captions are read back to text with the data's tokenizer and encoded with the CLIP run's, so a
set tokenized otherwise (another split, another vocabulary) is measured correctly.
"""
from __future__ import annotations

import torch

from genzoo.data import captions as C
from genzoo.data.dataset import TensorDataset
from genzoo.evaluation.features import fit_shape

BATCH = 250


def caption_texts(ds: TensorDataset) -> list[list[str]]:
    """Every item's captions as text."""
    return C.decode(ds.items[C.FIELD], C.tokenizer_of(ds.meta))


@torch.no_grad()
def embed_images(model, x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (any size: brought to the CLIP's) -> unit embeddings (N, D), on CPU."""
    shape = tuple(model.data.shape)
    return torch.cat([model.encode_image(fit_shape(x[i:i + BATCH].float(), shape).to(model.device))
                      .cpu() for i in range(0, len(x), BATCH)])


@torch.no_grad()
def embed_texts(model, texts: list[str]) -> torch.Tensor:
    return torch.cat([model.encode_text(model.tokenize(texts[i:i + BATCH])).cpu()
                      for i in range(0, len(texts), BATCH)])


def _images(ds: TensorDataset) -> torch.Tensor:
    return ds.batch(torch.arange(len(ds), device=ds.x.device))["x"].cpu()


@torch.no_grad()
def retrieval(model, ds: TensorDataset, ks=(1, 5)) -> dict[str, float]:
    """{"image_to_text_recall@k", "text_to_image_recall@k"} over all of ``ds``."""
    model.eval()
    texts = [cs[0] for cs in caption_texts(ds)]
    I, T = embed_images(model, _images(ds)), embed_texts(model, texts)
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    key = torch.tensor([ids[t] for t in texts])
    same = key[:, None] == key[None, :]
    sim = I @ T.t()
    out = {}
    for k in ks:
        for name, s, m in (("image_to_text", sim, same), ("text_to_image", sim.t(), same.t())):
            top = s.topk(min(k, s.shape[1]), dim=1).indices
            out[f"{name}_recall@{k}"] = float(m.gather(1, top).any(1).float().mean())
    return out


@torch.no_grad()
def zero_shot(model, ds: TensorDataset, templates: list[str] | None = None) -> float:
    """Accuracy of the most similar class prompt on a labelled image set."""
    model.eval()
    if ds.y is None:
        raise ValueError(f"{ds.source}: zero-shot classification needs class labels")
    names = ds.class_names or [str(i) for i in range(ds.num_classes)]
    E = model.class_embeddings(names, templates or model.templates()).cpu()
    pred = (embed_images(model, _images(ds)) @ E.t()).argmax(1)
    return float((pred == ds.y.cpu()).float().mean())


@torch.no_grad()
def clip_score(model, images: torch.Tensor, prompts: list[str]) -> float:
    """100 * mean max(cos(image, prompt), 0) over the pairs (see the module docstring)."""
    model.eval()
    cos = (embed_images(model, images) * embed_texts(model, prompts)).sum(1)
    return float(100 * cos.clamp(min=0).mean())
