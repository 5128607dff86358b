"""CLIP: contrastive language-image pre-training (Radford et al. 2021), small and from scratch.

Two encoders map a picture and a caption into one space: an image encoder (a small ResNet or
ViT, encoders.py) and a transformer over the caption's tokens (text.py), each followed by a
linear projection and normalised to unit length, I_i and T_j. Over a batch of N pairs the
cosine similarities, scaled by a learned inverse temperature exp(s), are the logits of two
classifications: which caption goes with image i (a softmax over row i) and which image with
caption j (over column j); the loss is the mean of the two cross-entropies, whose minimum puts
every image next to its own caption and away from the others'. The temperature starts at
0.07 and exp(s) is clipped to at most 100 (the paper's). (Captions that are the same token for
token, as a templated set has many per batch, need no special care: their columns of logits
are equal, and the loss is the same as if their images shared every one of them.)

Measured by zero-shot classification (each class named by prompts, "a photo of a {class}",
whose mean embedding is the class's; an image goes to the most similar) and by retrieval
recall@k (is the right caption among the k nearest of an image, and the right image of a
caption). A trained CLIP is also a feature space for the metrics (``--features clip:RUN``),
scores how well generated pictures match their prompts, and gives a text-to-image model its
text encoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.data import captions as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.models.multimodal import text as txt
from genzoo.models.multimodal.encoders import ResNetEncoder, ViTEncoder
from genzoo.nn.transformer import decay_groups
from genzoo.registry import register


@dataclass
class CLIPConfig:
    image_encoder: str = "resnet"              # resnet | vit
    widths: tuple[int, ...] = (32, 64, 128)    # resnet: channels per stage (all but the first halve)
    blocks: int = 2                            # resnet: residual blocks per stage
    patch: int = 4                             # vit: patch side
    vit_width: int = 128
    vit_layers: int = 4
    vit_heads: int = 4
    text_width: int = 128                      # the text transformer (CLIP: 512 wide, 12 deep)
    text_layers: int = 3
    text_heads: int = 4
    context: int = 32                          # most tokens per caption (the data's data.context)
    embed_dim: int = 128                       # the joint space
    temperature: float = 0.07                  # initial tau: logits = cos / tau
    max_logit_scale: float = 100.0             # 1 / tau is clipped to at most this
    image_size: int = 32                       # the recipe's side; data is adapted to it
    tokenizer: str = "bpe"                     # the recipe's data.tokenizer
    vocab_size: int = 1000                     # and data.vocab_size
    zero_shot: str = "a photo of a {class}"    # prompts naming classes ('|' between several)
    lr: float = 5e-4                           # AdamW, CLIP's betas and weight decay
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.2

    def validate(self):
        if self.image_encoder not in ("resnet", "vit"):
            raise ValueError(f"image_encoder must be resnet or vit, got {self.image_encoder!r}")
        if not 0 < self.temperature <= 1 or self.max_logit_scale < 1 / self.temperature:
            raise ValueError("need 0 < temperature <= 1 and max_logit_scale >= 1 / temperature")
        if "{class}" not in self.zero_shot:
            raise ValueError("zero_shot prompts must name {class}")


PRESETS = {
    "vit": dict(image_encoder="vit", patch=4, vit_width=128, vit_layers=4, vit_heads=4),
    # minutes on a CPU: one residual block per stage, a one-layer text encoder (templated or
    # short captions need little), bf16 autocast, a higher lr for a short schedule
    "cpu": dict(blocks=1, text_width=64, text_layers=1, text_heads=2, embed_dim=64, lr=1e-3,
                **{"train.batch_size": 256, "train.precision": "bf16", "train.warmup_steps": 50}),
    # A few-millisecond model for the contract test and pipeline smoke runs.
    "tiny": dict(widths=[8, 16], blocks=1, text_width=16, text_layers=1, text_heads=2,
                 embed_dim=16, context=16, image_size=8, patch=4, vit_width=16, vit_layers=1,
                 vit_heads=2),
}


def contrastive_loss(I: Tensor, T: Tensor, scale: Tensor) -> Tensor:
    """The symmetric cross-entropy of the N x N logits scale * I T^T, for unit vectors I, T
    (N, D): image i's caption is i among the columns of row i, and caption j's image is j."""
    logits = scale * I.float() @ T.float().t()
    labels = torch.arange(len(I), device=I.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def recall_at(similarity: Tensor, same: Tensor, k: int) -> Tensor:
    """Fraction of rows with a match among their k most similar columns."""
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return same.gather(1, top).any(1).float().mean()


@register("clip", config=CLIPConfig, taxonomy="discriminative", modality="captioned-image",
          summary="contrastive image-text dual encoder: zero-shot classes, retrieval, a "
                  "feature space and text encoder for text-to-image",
          showcase="genzoo.viz.multimodal:clip_showcase")
class CLIP(Family):
    train_defaults = {"batch_size": 128, "steps": 5000, "lr_schedule": "cosine",
                      "warmup_steps": 200, "min_lr_ratio": 0.0, "grad_clip": 1.0,
                      "sample_every": 0, "eval_every": 250, "eval_batches": 8,
                      "checkpoint_every": 1000}
    presets = PRESETS

    def __init__(self, config: CLIPConfig, data: DataInfo):
        super().__init__(config, data)
        c = config
        if data.modality != "image" or len(data.shape) != 3 or C.FIELD not in data.fields:
            raise GenzooError("clip: needs captioned images (a folder with captions, the builtin "
                              "shapes, or a labelled set with data.captions='a photo of a {class}')")
        self.tokenizer = C.tokenizer_of(data.meta)
        channels, side = data.shape[0], data.shape[1]
        if c.image_encoder == "vit":
            self.visual = ViTEncoder(channels, side, c.patch, c.vit_width, c.vit_layers, c.vit_heads)
        else:
            self.visual = ResNetEncoder(channels, tuple(c.widths), c.blocks)
        self.text = txt.TextTransformer(self.tokenizer.vocab_size, c.context, c.text_width,
                                        c.text_layers, c.text_heads)
        self.image_projection = nn.Linear(self.visual.width, c.embed_dim, bias=False)
        self.text_projection = nn.Linear(c.text_width, c.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / c.temperature)))

    @classmethod
    def data_defaults(cls, config: CLIPConfig) -> dict:
        return {"image_size": config.image_size, "tokenizer": config.tokenizer,
                "vocab_size": config.vocab_size, "context": config.context}

    # -- the two encoders ----------------------------------------------------------------
    def image_features(self, x: Tensor) -> Tensor:
        """Images in [0, 1] -> their (unnormalised) embeddings (N, embed_dim)."""
        return self.image_projection(self.visual(x * 2 - 1))

    def encode_image(self, x: Tensor) -> Tensor:
        return F.normalize(self.image_features(x).float(), dim=-1)

    def text_states(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Caption tokens (B, L) -> every token's state (B, L, text_width) and the mask of real
        tokens: what a text-to-image U-Net cross-attends to."""
        states, mask, _ = self.text(tokens)
        return states, mask

    def encode_text(self, tokens: Tensor) -> Tensor:
        _, _, pooled = self.text(tokens)
        return F.normalize(self.text_projection(pooled).float(), dim=-1)

    def tokenize(self, texts: list[str]) -> Tensor:
        return txt.prompts(texts, self.tokenizer, self.config.context).to(self.device)

    def scale(self) -> Tensor:
        """exp(s), the inverse temperature, within [1, max_logit_scale]."""
        return self.logit_scale.clamp(0, math.log(self.config.max_logit_scale)).exp()

    # -- training -----------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor], tokens: Tensor | None = None) -> dict[str, Tensor]:
        with torch.no_grad():          # the clip of the paper: s never leaves [0, log 100]
            self.logit_scale.clamp_(0, math.log(self.config.max_logit_scale))
        tokens = txt.pick(batch[C.FIELD]) if tokens is None else tokens
        I, T = self.encode_image(batch["x"]), self.encode_text(tokens)
        return {"loss": contrastive_loss(I, T, self.scale()),
                "logit_scale": self.scale().detach()}

    def objectives(self):
        c = self.config
        groups = decay_groups(self.parameters(), c.weight_decay)    # none on s, norms, biases
        return [Objective("contrastive", self.loss, groups, lr=c.lr, betas=tuple(c.betas),
                          weight_decay=c.weight_decay, optimizer="adamw")]

    @torch.no_grad()
    def evaluate(self, batch):
        """Held out: the loss on each image's first caption, in-batch retrieval recall@1 both
        ways (a caption the same as the right one counts as right), and zero-shot accuracy
        where the images have class labels."""
        tokens = txt.first(batch[C.FIELD])
        out = self.loss(batch, tokens)
        I, T = self.encode_image(batch["x"]), self.encode_text(tokens)
        same = (tokens[:, None, :] == tokens[None, :, :]).all(-1)
        sim = I @ T.t()
        out["recall@1_image_to_text"] = recall_at(sim, same, 1)
        out["recall@1_text_to_image"] = recall_at(sim.t(), same.t(), 1)
        if "y" in batch and self.data.num_classes:
            pred = self.classify(batch["x"], self.class_names(), self.templates())
            out["zero_shot_accuracy"] = (pred == batch["y"]).float().mean()
        return out

    # -- zero-shot classification --------------------------------------------------------
    def class_names(self) -> list[str]:
        return self.data.class_names or [str(i) for i in range(self.data.num_classes)]

    def templates(self) -> list[str]:
        """The prompts naming a class: the data's own caption templates where it was captioned
        from its labels, else the config's."""
        meta = self.data.meta
        return meta.get("caption_templates") or self.config.zero_shot.split("|")

    @torch.no_grad()
    def class_embeddings(self, class_names: list[str], templates: list[str]) -> Tensor:
        """Each class's prompts embedded and averaged (the paper's prompt ensembling), (K, D)."""
        out = []
        for name in class_names:
            T = self.encode_text(self.tokenize([t.replace("{class}", name.replace("_", " "))
                                                for t in templates]))
            out.append(F.normalize(T.mean(0), dim=-1))
        return torch.stack(out)

    @torch.no_grad()
    def classify(self, x: Tensor, class_names: list[str], templates: list[str]) -> Tensor:
        return (self.encode_image(x) @ self.class_embeddings(class_names, templates).t()).argmax(1)

    def sample(self, n, generator=None):
        raise GenzooError("clip: a contrastive model does not sample; use it as --features "
                          "clip:RUN_DIR, or as a text-to-image model's text encoder")
