"""An autoregressive prior over VQ-VAE code maps: the second stage of van den Oord et al.
2017 (who fit a PixelCNN to the codes) and of VQ-GAN (Esser et al. 2021, a GPT).

The first stage, a trained ``vqvae`` run named by ``first_stage``, encodes every training
image once into a map of h x w codebook indices; this family fits p(k) = prod_t p(k_t | k_<t)
to those maps in raster order by maximum likelihood, either with a GPT over the flattened
sequence (a start token, or the class's token, is prepended, so the first code is predicted
too) or with a PixelCNN whose masked convolutions run over the map of code embeddings. Its
exact likelihood is reported in bits per code (log2 K for a uniform prior). Sampling draws
the codes one at a time (with a temperature and top-k) and decodes the map through the first
stage's decoder, so the samples are images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.config import RunRef
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Likelihood, Objective, SampleOption
from genzoo.nn.attention import KVCache
from genzoo.nn.masked import MaskedConv2d, MaskedResidualBlock
from genzoo.nn.sampling import sample_next
from genzoo.nn.transformer import Transformer, decay_groups
from genzoo.registry import register


@dataclass
class VQPriorConfig:
    first_stage: RunRef | None = None  # the trained vqvae run whose code maps are modelled
    arch: str = "gpt"               # gpt (over the raster sequence) | pixelcnn (over the map)
    class_conditional: bool = False  # gpt: the start token is the class (sample --label)
    # gpt
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    # pixelcnn
    filters: int = 128              # width of the residual stream
    kernel_size: int = 5            # the first (type A) masked convolution
    residual_blocks: int = 6        # 1x1 -> masked 3x3 -> 1x1 blocks
    lr: float = 3e-4                # AdamW (decay on weight matrices only)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01

    def validate(self):
        if self.arch not in ("gpt", "pixelcnn"):
            raise ValueError(f"arch must be gpt or pixelcnn, got {self.arch!r}")
        if self.class_conditional and self.arch != "gpt":
            raise ValueError("class_conditional needs arch=gpt")
        if min(self.n_layer, self.n_head, self.n_embd, self.filters) < 1:
            raise ValueError("n_layer, n_head, n_embd and filters must be >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} must be divisible by n_head {self.n_head}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")


PRESETS = {
    "tiny": dict(n_layer=1, n_head=2, n_embd=16, mlp_ratio=2.0, dropout=0.0, filters=16,
                 kernel_size=3, residual_blocks=1),
    # the paper's choice of prior: a PixelCNN over the code map
    "pixelcnn": dict(arch="pixelcnn"),
}


@register("vq_prior", config=VQPriorConfig, taxonomy="explicit-tractable", modality="codes",
          summary="autoregressive prior (GPT or PixelCNN) over a vqvae run's code maps; "
                  "samples decode to images",
          showcase="genzoo.viz.vq:prior_showcase")
class VQPrior(Family):
    presets = PRESETS
    train_defaults = {"batch_size": 128, "steps": 3000, "lr_schedule": "cosine",
                      "warmup_steps": 100, "grad_clip": 1.0, "eval_every": 250,
                      "sample_every": 1000}
    sample_options = (
        SampleOption("temperature", float, 1.0, "divides the logits of every code (< 1: "
                     "sharper, less varied)"),
        SampleOption("top_k", int, None, "draw each code among the k likeliest only"),
        SampleOption("label", int, None, "the class whose start token begins each map "
                     "(class_conditional priors)", kind="label"),
    )
    derives_data_from = "first_stage"

    def __init__(self, config: VQPriorConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        c = config
        self.K, self.code_shape = self._codes_of(data)
        T = self.T = self.code_shape[0] * self.code_shape[1]
        self.starts = max(1, data.num_classes) if c.class_conditional else 1
        if c.class_conditional and data.num_classes < 1:
            raise GenzooError("vq_prior: class_conditional needs labelled data")
        if c.arch == "gpt":
            self.net = Transformer(self.K + self.starts, T, c.n_layer, c.n_head, c.n_embd,
                                   c.mlp_ratio, c.dropout)
        else:
            layers = [nn.Embedding(self.K, c.filters), _ToMap(self.code_shape),
                      MaskedConv2d(c.filters, c.filters, c.kernel_size, "A"), nn.ReLU()]
            layers += [MaskedResidualBlock(c.filters, 1) for _ in range(c.residual_blocks)]
            layers += [MaskedConv2d(c.filters, c.filters, 1, "B"), nn.ReLU(),
                       MaskedConv2d(c.filters, self.K, 1, "B")]
            self.net = nn.Sequential(*layers)

    def _codes_of(self, data: DataInfo) -> tuple[int, tuple[int, int]]:
        """(K, (h, w)) from the data's meta, checked against the first stage when there is one."""
        if data.modality != "codes":
            raise GenzooError(f"vq_prior: models code maps, not {data.modality} data (name the "
                              f"trained vqvae run: --set first_stage=RUN_DIR)")
        shape = tuple(data.meta.get("code_shape") or data.shape)
        K = data.meta.get("codebook_size")
        first = self.first_stage
        if first is not None:           # any first stage whose derive() gives code maps
            meta = first.derived_meta()
            theirs = (meta["codebook_size"], tuple(meta["code_shape"]))
            if K is not None and (K, shape) != theirs:
                raise GenzooError(f"vq_prior: the codes ({K} codes, map {shape}) are not those of "
                                  f"the first stage ({theirs[0]} codes, map {theirs[1]})")
            K, shape = theirs
        if K is None or len(shape) != 2:
            raise GenzooError("vq_prior: the data does not say its codebook size and map shape "
                              "(meta codebook_size, code_shape) and there is no first stage")
        return int(K), (int(shape[0]), int(shape[1]))

    @property
    def first_stage(self) -> Family | None:
        return self.components["first_stage"] if "first_stage" in self.components else None

    @property
    def output_info(self) -> DataInfo:
        return self.first_stage.output_info if self.first_stage is not None else self.data

    # -- the likelihood ------------------------------------------------------------------
    def start_tokens(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """(n, 1): token K, or K + y for a class-conditional prior."""
        if self.config.class_conditional:
            if y is None:
                raise GenzooError("vq_prior: a class-conditional prior needs labels")
            return (self.K + y.long()).view(n, 1)
        return torch.full((n, 1), self.K, dtype=torch.long, device=self.device)

    def logits(self, k: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (N, T) -> logits (N, T, K) of p(k_t | k_<t) at every position."""
        if self.config.arch == "gpt":
            inputs = torch.cat([self.start_tokens(len(k), y), k[:, :-1]], 1)
            return self.net(inputs)[..., :self.K]
        return self.net(k.view(-1, *self.code_shape)).flatten(2).transpose(1, 2)

    def loss(self, batch):
        k = batch["x"].long().flatten(1)
        nll = F.cross_entropy(self.logits(k, batch.get("y")).flatten(0, 1).float(), k.flatten())
        return {"loss": nll, "bits_per_code": nll / math.log(2)}

    def objectives(self):
        c = self.config
        groups = decay_groups(self.net.parameters(), c.weight_decay)
        return [Objective("nll", self.loss, groups, lr=c.lr, betas=tuple(c.betas),
                          weight_decay=c.weight_decay, optimizer="adamw")]

    def evaluate(self, batch):
        """Held-out negative log-likelihood of the code maps; ``bits_per_code`` is exact."""
        return self.loss(batch)

    def likelihood(self, held_out):
        """Exact bits per code over the K codebook entries (of the codes, not of the pixels)."""
        return Likelihood(held_out["bits_per_code"], "bits/code", self.K, exact=True)

    # -- sampling ------------------------------------------------------------------------
    def _label(self, label, n: int) -> torch.Tensor | None:
        if label is None:
            if self.config.class_conditional:
                raise GenzooError("vq_prior: a class-conditional prior samples with --label NAME")
            return None
        if not self.config.class_conditional:
            raise GenzooError("vq_prior: --label needs a prior trained with class_conditional=true")
        names = self.data.class_names or []
        if str(label) in names:
            y = names.index(str(label))
        elif str(label).isdigit() and int(label) < self.starts:
            y = int(label)
        else:
            raise GenzooError(f"vq_prior: unknown label {label!r} (classes: "
                              f"{', '.join(names) or f'0..{self.starts - 1}'})")
        return torch.full((n,), y, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def sample_codes(self, n: int, generator=None, temperature: float = 1.0,
                     top_k: int | None = None, label=None) -> torch.Tensor:
        """Code maps (n, h, w) drawn position by position."""
        if temperature < 0 or (top_k is not None and top_k < 1):
            raise GenzooError(f"vq_prior: temperature must be >= 0 and top_k >= 1, got "
                              f"{temperature}, {top_k}")
        y = self._label(label, n)
        draw = lambda logits: sample_next(logits, generator, temperature, top_k, pad=None)  # noqa: E731
        k = torch.zeros(n, self.T, dtype=torch.long, device=self.device)
        if self.config.arch == "gpt":           # one new position per step, keys/values cached
            caches = [KVCache(self.T) for _ in self.net.blocks]
            nxt = self.start_tokens(n, y)
            for t in range(self.T):
                k[:, t] = draw(self.net(nxt, t, caches)[:, -1, :self.K])
                nxt = k[:, t:t + 1]
        else:                                   # the whole map again for every position
            for t in range(self.T):
                k[:, t] = draw(self.logits(k)[:, t])
        return k.view(n, *self.code_shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               top_k: int | None = None, label=None) -> torch.Tensor:
        """Images from the first stage's decoder (code maps when there is no first stage)."""
        was_training = self.training
        self.eval()
        codes = self.sample_codes(n, generator, temperature, top_k, label)
        self.train(was_training)
        return codes if self.first_stage is None else self.first_stage.decode_codes(codes)


class _ToMap(nn.Module):
    """Embedded codes (N, T, d) or (N, h, w, d) -> a feature map (N, d, h, w)."""

    def __init__(self, shape: tuple[int, int]):
        super().__init__()
        self.shape = shape

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e.reshape(len(e), *self.shape, e.shape[-1]).permute(0, 3, 1, 2)
