"""unCLIP: pictures from CLIP's image embeddings, and a prior that finds the embedding a caption
asks for (Ramesh et al. 2022, "Hierarchical text-conditional image generation with CLIP
latents": DALL-E 2), small and from scratch, on a trained CLIP run (``clip``, frozen).

Two networks, trained side by side (two objectives, each with its own optimiser):

- the prior p(z_i | y): diffusion over the CLIP image embedding z_i (unit length times sqrt(D),
  so its entries have about unit variance), conditioned on the caption's CLIP text embedding
  z_t. Like the paper's diffusion prior it predicts the clean z_i itself (MSE), here with an
  MLP of residual blocks over [z_noisy, z_t] and the embedded noise level, where the paper has
  a transformer. z_t is replaced by zeros 10% of the time, for guidance.
- the decoder p(x | z_i): ddpm's U-Net on the pictures, z_i projected into ``tokens`` context
  tokens that the blocks at the sides in ``cross_attention`` attend to (the paper's "four extra
  tokens of context"; it also adds a projection to the timestep embedding). z_i is replaced by
  zeros 10% of the time, for classifier-free guidance.

Sampling: the caption's z_t, the prior's z_i (DDIM on the vector, guided by ``prior_guidance``),
then the decoder's picture (any sampler, guided by ``guidance``). Image variations
(``genzoo sample RUN --image cat.png``): z_i is CLIP's embedding of that picture, and the
decoder draws new pictures that keep what CLIP sees in it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.config import RunRef
from genzoo.data import captions as C
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Objective, SampleOption
from genzoo.models.diffusion import guidance as G
from genzoo.models.diffusion.samplers import ddim
from genzoo.models.diffusion.schedules import Schedule
from genzoo.models.multimodal import text as txt
from genzoo.models.multimodal.conditioned import TINY, ConditionedConfig, ConditionedDiffusion
from genzoo.nn.embeddings import SinusoidalMLP
from genzoo.registry import register


@dataclass
class UnCLIPConfig(ConditionedConfig):
    clip: RunRef | None = None                 # the trained clip run whose embeddings it uses
    tokens: int = 4                            # context tokens the decoder makes of z_i
    token_width: int = 64
    cross_attention: tuple[int, ...] = (16, 8)  # picture sides (32 -> 16 -> 8)
    prior_width: int = 256                     # the prior's MLP
    prior_blocks: int = 3
    prior_steps: int = 50                      # DDIM steps of the prior when sampling
    prior_guidance: float = 1.0
    prior_lr: float = 3e-4
    schedule: str = "cosine"

    def validate(self):
        super().validate()
        if min(self.tokens, self.token_width, self.prior_width, self.prior_blocks) < 1:
            raise ValueError("tokens, token_width, prior_width and prior_blocks must be >= 1")


PRESETS = {"tiny": dict(TINY, prior_steps=4, tokens=2, token_width=8, prior_width=16,
                        prior_blocks=1)}


class PriorMLP(nn.Module):
    """(z_noisy (B, D), t (B,), z_t (B, D)) -> the clean z_i (B, D): residual MLP blocks."""

    def __init__(self, dim: int, width: int, blocks: int):
        super().__init__()
        self.time = SinusoidalMLP(32, width, scale=1000.0)
        self.inp = nn.Linear(2 * dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width),
                                                  nn.GELU(), nn.Linear(2 * width, width))
                                    for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, z: Tensor, t: Tensor, text: Tensor) -> Tensor:
        h = self.inp(torch.cat([z, text], -1)) + self.time(t)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


@register("unclip", config=UnCLIPConfig, taxonomy="explicit-approximate",
          modality="captioned-image", summary="unCLIP (DALL-E 2): a diffusion prior from a "
          "CLIP text embedding to an image embedding, a decoder from it to pictures; image "
          "variations", showcase="genzoo.viz.multimodal:unclip_showcase")
class UnCLIP(ConditionedDiffusion):
    presets = PRESETS
    sample_options = ConditionedDiffusion.sample_options + (
        SampleOption("image", str, None, "a picture file: draw variations of it", kind="path"),
        SampleOption("prior_guidance", float, None, "guidance of unCLIP's prior"))

    def __init__(self, config: UnCLIPConfig, data: DataInfo, components=None):
        clip = (components or {}).get("clip")
        if clip is None or not hasattr(clip, "encode_image"):
            raise GenzooError("unclip: set clip=RUN_DIR (a trained clip run)")
        if C.FIELD not in data.fields:
            raise GenzooError("unclip: needs captioned images (a folder with captions, the "
                              "builtin shapes, or data.captions='a photo of a {class}')")
        if tuple(clip.data.shape) != tuple(data.shape):
            raise GenzooError(f"unclip: the pictures are {tuple(data.shape)}, the clip run's "
                              f"{tuple(clip.data.shape)} (set data.image_size={clip.data.shape[1]})")
        self.dim, self.context_dim = clip.config.embed_dim, config.token_width
        super().__init__(config, data, components)
        self.tokenizer = C.tokenizer_of(data.meta)
        self.translate = not txt.same_tokenizer(clip.tokenizer.to_dict(), self.tokenizer.to_dict())
        self.to_tokens = nn.Linear(self.dim, config.tokens * config.token_width)
        self.prior = PriorMLP(self.dim, config.prior_width, config.prior_blocks)
        self.prior_schedule = Schedule("cosine", True, 1000)

    # -- CLIP's embeddings, scaled to entries of unit variance -------------------------------
    @torch.no_grad()
    def image_embedding(self, x: Tensor) -> Tensor:
        return self.components["clip"].encode_image(x) * math.sqrt(self.dim)

    @torch.no_grad()
    def text_embedding(self, tokens: Tensor) -> Tensor:
        clip = self.components["clip"]
        if self.translate:
            tokens = txt.translate(tokens, self.tokenizer, clip.tokenizer, clip.config.context)
        return clip.encode_text(tokens) * math.sqrt(self.dim)

    # -- the decoder: ddpm conditioned on z_i --------------------------------------------------
    def condition(self, batch) -> Tensor:
        return self.image_embedding(batch["x"])

    def null_condition(self, y: Tensor) -> Tensor:
        return torch.zeros_like(y)

    def eps_net(self, x_t, t, y=None) -> Tensor:
        if y is None:
            y = torch.zeros(len(x_t), self.dim, device=x_t.device)
        context = self.to_tokens(y.to(x_t.dtype)).unflatten(1, (self.config.tokens, -1))
        return self.net(x_t, t, context=context).float()

    # -- the prior -----------------------------------------------------------------------------
    def prior_loss(self, batch) -> dict[str, Tensor]:
        z_i = self.image_embedding(batch["x"])
        z_t = self.text_embedding(txt.pick(batch[C.FIELD]))
        z_t = G.drop_labels(z_t, self.config.p_uncond if self.training else 0.0, 0.0)
        t = self.prior_schedule.sample_t(len(z_i), z_i.device)
        alpha, sigma = (v[:, None] for v in self.prior_schedule.alpha_sigma(t))
        z_noisy = alpha * z_i + sigma * torch.randn_like(z_i)
        return {"loss": F.mse_loss(self.prior(z_noisy, t, z_t).float(), z_i)}

    def objectives(self):
        c = self.config
        decoder = [p for n, p in self.named_parameters() if not n.startswith(("prior.", "components."))]
        opt = "adamw" if c.weight_decay > 0 else "adam"
        return [Objective("decoder", self.loss, decoder, lr=c.lr, weight_decay=c.weight_decay,
                          optimizer=opt),
                Objective("prior", self.prior_loss, list(self.prior.parameters()), lr=c.prior_lr)]

    def evaluate(self, batch):
        return {**self.loss(batch), "prior_loss": self.prior_loss(batch)["loss"]}

    @torch.no_grad()
    def sample_prior(self, z_t: Tensor, generator=None, w: float | None = None) -> Tensor:
        """Image embeddings for text embeddings ``z_t``, by deterministic DDIM."""
        w = self.config.prior_guidance if w is None else w
        null = torch.zeros_like(z_t)

        def denoise(z, t):
            tt = t.to(z.device).float().expand(len(z))
            both = self.prior(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([null, z_t])).float()
            x0 = G.guided(*both.chunk(2), w)
            alpha, sigma = (v[:, None] for v in self.prior_schedule.alpha_sigma(tt))
            return x0, (z - alpha * x0) / sigma
        z = torch.randn(z_t.shape, generator=generator, device=z_t.device)
        return ddim(denoise, z, self.prior_schedule, self.config.prior_steps, generator=generator)

    # -- sampling --------------------------------------------------------------------------
    def picture(self, path: str) -> Tensor:
        """A picture file as the data's (1, C, H, W) in [0, 1] (centre-cropped and resized)."""
        from PIL import Image
        from genzoo.data.images import adapt_images
        try:
            with Image.open(path) as im:
                a = np.array(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise GenzooError(f"{path}: cannot read the picture ({e})") from None
        c, s = self.data.shape[0], self.data.shape[1]
        x, _ = adapt_images(a.transpose(2, 0, 1)[None], s, "resize", c)
        return x.float().div(255).to(self.device)

    @torch.no_grad()
    def sample(self, n, generator=None, sampler=None, steps=None, eta=None, guidance=None,
               prompt=None, image=None, prior_guidance=None, noise=None, record=None):
        """n pictures for ``prompt`` (through the prior), or variations of the picture file
        ``image`` (through CLIP's embedding of it)."""
        if noise is None:
            noise = torch.randn(n, *self.data.shape, generator=generator, device=self.device)
        if image is not None:
            z_i = self.image_embedding(self.picture(image)).expand(n, -1)
        else:
            texts = [prompt] if isinstance(prompt, str) else list(prompt or []) or \
                self.data.meta.get("caption_examples") or [""]
            texts = [texts[i % len(texts)] for i in range(n)]
            z_t = self.components["clip"].encode_text(self.components["clip"].tokenize(texts))
            z_i = self.sample_prior(z_t * math.sqrt(self.dim), generator, prior_guidance)
        return self.generate(n, z_i, generator, sampler, steps, eta, guidance, noise,
                             record).clamp(0, 1)
