"""Text-to-image latent diffusion (Rombach et al. 2022, "High-resolution image synthesis with
latent diffusion models"; Ho & Salimans 2021 for the guidance).

Diffusion runs in the latent space of a trained first stage (a ``kl_autoencoder`` run, named
by ``first_stage``): the training images are encoded once to z, scaled to unit variance by the
first stage's scale factor (cached), and the denoiser learns eps_theta(z_t, t, tau(y)) there,
where tau(y) are the token states of the caption y. The U-Net is ddpm's with cross-attention
at the latent sides listed in ``cross_attention``: each block's feature map attends to the
caption's tokens (queries from the map, keys and values from the text, padding masked). The
text encoder tau is a trained CLIP run's, frozen (``text_encoder``: Stable Diffusion's way),
or a small transformer trained together with the U-Net (the paper's LDM-KL text model).

Classifier-free guidance: the caption is replaced by the empty one ("END END") 10% of the
time, so one network is both conditional and unconditional, and sampling mixes them,
eps = eps(z_t, "") + w (eps(z_t, y) - eps(z_t, "")). Any sampler of models/diffusion samples z
(DDIM, DPM-Solver++), and the first stage's decoder turns it into pictures:
``genzoo sample RUN --prompt "two small red circles left of a blue square" --guidance 5``.
Without a prompt, samples follow the example captions kept in the data info.

Not carried over: the paper's scaled-linear betas (linear in sqrt(beta)); here linear betas
over the same range, 0.00085 to 0.012.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genzoo.config import RunRef
from genzoo.data import captions as C
from genzoo.data import tokenizers as tk
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.models.multimodal import text as txt
from genzoo.models.multimodal.conditioned import TINY, ConditionedConfig, ConditionedDiffusion
from genzoo.registry import register


@dataclass
class LatentDiffusionConfig(ConditionedConfig):
    first_stage: RunRef | None = None          # the trained kl_autoencoder run it diffuses in
    text_encoder: RunRef | None = None         # a clip run (frozen); None: one trained jointly
    text_width: int = 128                      # the jointly trained text encoder
    text_layers: int = 2
    text_heads: int = 4
    # the diffusion recipe on latents: data of unit variance (no normalising, no clipping);
    # image_size is the pictures' side (the first stage's), cross_attention latent sides
    beta_start: float = 0.00085
    beta_end: float = 0.012
    normalise: str = "none"
    clip_denoised: bool = False

    def validate(self):
        super().validate()
        if min(self.text_width, self.text_layers, self.text_heads, self.context) < 1:
            raise ValueError("text_width, text_layers, text_heads and context must be >= 1")


PRESETS = {"tiny": dict(TINY, text_width=16, text_layers=1, text_heads=2)}


@register("latent_diffusion", config=LatentDiffusionConfig, taxonomy="explicit-approximate",
          modality="captioned-image", summary="text-to-image latent diffusion: a U-Net with "
          "cross-attention to caption tokens in a first stage's latent space, classifier-free "
          "guidance", showcase="genzoo.viz.multimodal:ldm_showcase")
class LatentDiffusion(ConditionedDiffusion):
    presets = PRESETS
    derives_data_from = "first_stage"
    data_modality, data_name = "latent", "a first stage's latents"

    def __init__(self, config: LatentDiffusionConfig, data: DataInfo, components=None):
        components = components or {}
        if "first_stage" not in components:
            raise GenzooError("latent_diffusion: set first_stage=RUN_DIR (a kl_autoencoder run)")
        if not hasattr(components["first_stage"], "decode_latents"):
            raise GenzooError("latent_diffusion: first_stage must be a kl_autoencoder run")
        if C.FIELD not in data.fields:
            raise GenzooError("latent_diffusion: needs captioned images (a folder with captions, "
                              "the builtin shapes, or data.captions='a photo of a {class}')")
        self.tokenizer = C.tokenizer_of(data.meta)
        clip = components.get("text_encoder")
        if clip is not None and not hasattr(clip, "text_states"):
            raise GenzooError("latent_diffusion: text_encoder must be a clip run")
        self.context_dim = clip.config.text_width if clip is not None else config.text_width
        super().__init__(config, data, components)
        self.translate = clip is not None and not txt.same_tokenizer(
            clip.tokenizer.to_dict(), self.tokenizer.to_dict())
        self.text = None if clip is not None else txt.TextTransformer(
            self.tokenizer.vocab_size, config.context, config.text_width, config.text_layers,
            config.text_heads)

    @property
    def output_info(self) -> DataInfo:
        return self.components["first_stage"].data

    # -- the caption as the U-Net sees it --------------------------------------------------
    def condition(self, batch) -> Tensor:
        return txt.pick(batch[C.FIELD])

    def null_condition(self, y: Tensor) -> Tensor:
        """The empty caption, END END, padded like ``y`` (B, L)."""
        null = torch.full_like(y, tk.PAD)
        null[:, :2] = tk.END
        return null

    def encode_text(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Caption tokens -> (token states, mask of real tokens)."""
        clip = self.components["text_encoder"] if self.text is None else None
        if clip is None:
            states, mask, _ = self.text(tokens)
            return states, mask
        if self.translate:
            tokens = txt.translate(tokens, self.tokenizer, clip.tokenizer, clip.config.context)
        with torch.no_grad():
            return clip.text_states(tokens)

    def eps_net(self, x_t, t, y=None) -> Tensor:
        if y is None:
            y = self.null_condition(torch.zeros(len(x_t), 2, dtype=torch.long, device=x_t.device))
        states, mask = self.encode_text(y)
        return self.net(x_t, t, context=states, mask=mask).float()

    # -- sampling --------------------------------------------------------------------------
    def prompt_tokens(self, n: int, prompt) -> Tensor:
        """(n, L) caption tokens: ``prompt`` (a text, or a list of n texts) for every sample,
        else the data's example captions in turn."""
        if prompt is None:
            meta = self.data.meta.get("source_info", {}).get("meta", self.data.meta)
            examples = meta.get("caption_examples") or [""]
            texts = [examples[i % len(examples)] for i in range(n)]
        elif isinstance(prompt, str):
            texts = [prompt] * n
        else:
            texts = list(prompt)
            if len(texts) != n:
                raise GenzooError(f"latent_diffusion: {len(texts)} prompts for {n} samples")
        return txt.prompts(texts, self.tokenizer, self.config.context).to(self.device)

    @torch.no_grad()
    def sample(self, n, generator=None, sampler=None, steps=None, eta=None, guidance=None,
               prompt=None, noise=None, record=None):
        """n pictures in [0, 1] for ``prompt``; ``noise`` gives z_1, ``record`` gets each
        step's {t, x, x0} in the latent space."""
        if noise is None:
            noise = torch.randn(n, *self.data.shape, generator=generator, device=self.device)
        y = self.prompt_tokens(n, prompt)
        z = self.generate(n, y, generator, sampler, steps, eta, guidance, noise, record)
        return self.components["first_stage"].decode_latents(z).clamp(0, 1)
