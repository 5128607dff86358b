"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
with DiffAugment (Zhao et al. 2020) or ADA (Karras et al. 2020b) for small data sets.

G = g o f: the mapping network f turns z into an intermediate latent w, and the synthesis
network g draws an image from a learned constant, each layer modulated by a style from w
(the networks: genzoo.nn.stylegan). The game is the non-saturating logistic one,
D: softplus(D(G(z))) + softplus(-D(x)), G: softplus(-D(G(z))), with two lazy regularisers
(computed every k steps, weighted by k, with Adam's lr and betas rescaled by k / (k + 1)):
- R1 on D every 16 steps: gamma / 2 E[|grad_x D(x)|^2] on the reals;
- path-length regularisation on G every 4 steps: E[(|J_w^T y| - a)^2], where a is the running
  mean of the path lengths, so that a fixed step in w moves the image by a fixed amount.
Style mixing regularisation: with probability 0.9 a batch is drawn from two codes z1, z2, and
the layers from a random cut-off on read w2, so that G cannot assume adjacent styles correlate.
Sampling uses the EMA of G (train.ema_decay) and, as an option, the truncation trick
w' = w_avg + psi (w - w_avg). Every image D sees passes through the augmentation T, by default
(augment=auto) DiffAugment on a set of under SMALL_DATA images, where D would memorise the few
images it sees again and again, and none on a larger one: on CIFAR-10's 45,000 images ADA's
overfitting measure never raised its p above 0 in 30 CPU minutes, and DiffAugment there only
slowed G (advanced_gans.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.models.base import DataInfo, Objective, SampleOption
from genzoo.models.gan.adversarial import AdversarialFamily
from genzoo.nn.augment import POLICIES, Augment
from genzoo.nn.gan import halvings, r1_penalty
from genzoo.nn.stylegan import ResidualDiscriminator, StyleGenerator, mix_styles, path_lengths
from genzoo.registry import register


@dataclass
class StyleGAN2Config:
    image_size: int = 64             # side the data is adapted to: 4 * 2^k
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01     # the mapping network learns 100x slower
    channel_base: int = 16384        # channels at side r: min(channel_max, channel_base / r)
    channel_max: int = 512
    mbstd_group: int = 4             # minibatch standard deviation over groups of this size
    style_mixing: float = 0.9        # probability that a batch mixes two codes
    r1_gamma: float = 10.0           # R1 weight gamma (0 = off)
    r1_every: int = 16               # lazy R1: every 16 D steps
    pl_weight: float = 2.0           # path-length weight (0 = off)
    pl_every: int = 4                # lazy path length: every 4 G steps
    pl_decay: float = 0.01           # the running mean a <- a + decay (mean length - a)
    pl_batch_shrink: int = 2         # the path-length batch is the batch / this
    w_avg_beta: float = 0.995        # running mean of w, for truncation
    lr: float = 0.002                # Adam, both players
    beta1: float = 0.0
    beta2: float = 0.99
    augment: str = "auto"            # auto | none | diffaugment (p = 1) | ada (adaptive p)
    augment_policy: str = "color,translation,cutout"
    ada_target: float = 0.6          # ADA: the r_t it steers to
    ada_kimg: float = 500.0          # ADA: p can go from 0 to 1 in this many thousand images
    ada_interval: int = 4            # ADA: D steps between adjustments of p

    def validate(self):
        try:
            halvings(self.image_size)
        except ValueError as e:
            raise ValueError(f"image_size: {e}") from None
        if min(self.z_dim, self.w_dim, self.mapping_layers, self.channel_base,
               self.channel_max, self.mbstd_group) < 1:
            raise ValueError("z_dim, w_dim, mapping_layers, channel_base, channel_max and "
                             "mbstd_group must be >= 1")
        if min(self.r1_every, self.pl_every, self.pl_batch_shrink, self.ada_interval) < 1:
            raise ValueError("r1_every, pl_every, pl_batch_shrink and ada_interval must be >= 1")
        if not 0 <= self.style_mixing <= 1 or not 0 < self.mapping_lr_mul <= 1:
            raise ValueError("style_mixing must be in [0, 1] and mapping_lr_mul in (0, 1]")
        if self.r1_gamma < 0 or self.pl_weight < 0 or not 0 < self.pl_decay <= 1:
            raise ValueError("r1_gamma and pl_weight must be >= 0, pl_decay in (0, 1]")
        if self.augment not in ("auto", "none", "diffaugment", "ada"):
            raise ValueError(f"augment must be auto, none, diffaugment or ada, "
                             f"got {self.augment!r}")
        names = [p.strip() for p in self.augment_policy.split(",") if p.strip()]
        if not names or set(names) - set(POLICIES):
            raise ValueError(f"augment_policy {self.augment_policy!r}: a comma-separated list "
                             f"of {', '.join(POLICIES)}")
        if self.ada_kimg <= 0:
            raise ValueError(f"ada_kimg must be > 0, got {self.ada_kimg}")


# augment=auto: DiffAugment below this many training images. Measured at its two sides only:
# DiffAugment wins on 1,200 flowers, no augmentation on 45,000 CIFAR-10 images.
SMALL_DATA = 10_000


def augmentation(choice: str, size: int) -> str:
    """The augmentation a run uses: ``choice``, with auto resolved by the training set's
    ``size`` (0, not known, counts as small)."""
    if choice != "auto":
        return choice
    return "diffaugment" if size < SMALL_DATA else "none"


PRESETS = {
    # A width-64 network at 32x32 for CPUs (about 1 s a step at batch 32 on 2 cores), with
    # ADA's CIFAR-10 choices of a 2-layer mapping and a light R1.
    "cpu": dict(image_size=32, z_dim=64, w_dim=64, channel_base=2048, channel_max=64,
                mapping_layers=2, r1_gamma=0.01, **{"train.batch_size": 32}),
    # A few-millisecond pair for the contract test and pipeline smoke runs; the lazy
    # regularisers and ADA's controller run within its first steps.
    "tiny": dict(image_size=8, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                 channel_max=8, r1_every=2, pl_every=3, augment="ada", ada_kimg=0.02,
                 ada_interval=1),
}


@register("stylegan2", config=StyleGAN2Config, taxonomy="implicit", modality="image",
          summary="style-based GAN: mapping network, modulated convolutions, lazy R1 and "
                  "path-length regularisation, DiffAugment/ADA", showcase="genzoo.viz.stylegan:showcase")
class StyleGAN2(AdversarialFamily):
    presets = PRESETS
    train_defaults = {"batch_size": 32, "steps": 5000, "ema_decay": 0.998, "sample_every": 250,
                      "log_every": 10, "precision": "auto"}
    ema_networks = ("G",)
    sample_options = (SampleOption("psi", float, 1.0, "truncation around the mean style: w = "
                                   "w_avg + psi (w - w_avg); 0 gives the mean image, 1 none"),)

    def __init__(self, config: StyleGAN2Config, data: DataInfo):
        super().__init__(config, data)
        c, side, _ = data.shape
        cfg = config
        self.G = StyleGenerator(cfg.z_dim, cfg.w_dim, side, c, cfg.channel_base, cfg.channel_max,
                                cfg.mapping_layers, cfg.mapping_lr_mul, cfg.w_avg_beta)
        self.D = ResidualDiscriminator(c, side, cfg.channel_base, cfg.channel_max, cfg.mbstd_group)
        self.augmentation = augmentation(cfg.augment, data.size)
        self.augment = (None if self.augmentation == "none" else
                        Augment(cfg.augment_policy, self.augmentation == "ada", cfg.ada_target,
                                cfg.ada_kimg, cfg.ada_interval))
        self.register_buffer("pl_mean", torch.zeros(()))

    # -- the players -------------------------------------------------------------------------
    def draw_styles(self, n: int, track: bool = False) -> tuple[Tensor, int]:
        """ws (n, num_ws, w_dim) for a training batch, and the layer where they cross over:
        with probability ``style_mixing`` the layers from a cut-off drawn in 1..num_ws-1 read
        the w of a second code; otherwise cut-off = num_ws (one w for all)."""
        L = self.G.num_ws
        w1 = self.G.mapping(self.prior(n), track=track)
        if self.config.style_mixing > 0 and float(torch.rand(())) < self.config.style_mixing:
            cutoff = int(torch.randint(1, L, ()))
            return mix_styles(w1, self.G.mapping(self.prior(n), track=track), L, cutoff), cutoff
        return mix_styles(w1, w1, L, L), L

    def fakes(self, n: int, y: Tensor | None = None, track: bool = False) -> Tensor:
        return self.G.synthesis(self.draw_styles(n, track)[0])

    def critic(self, x: Tensor, y: Tensor | None = None, eager: bool = False) -> Tensor:
        """D(T(x)): every image D sees is augmented (T = identity when augment=none).
        ``eager``: both run uncompiled (R1 differentiates a gradient through them)."""
        if self.augment is not None:
            x = (self.augment.forward if eager else self.augment)(x)
        return (self.D.forward if eager else self.D)(x)

    # -- the game ----------------------------------------------------------------------------
    def critic_loss(self, batch):
        x = self.real(batch)
        x_tilde = self.fakes(len(x)).detach()
        d_real, d_fake = self.critic(x).float(), self.critic(x_tilde).float()
        loss = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        out = {"loss": loss, "d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach(),
               **self.diversity(x, x_tilde)}
        if self.augment is not None:
            self.augment.observe(d_real)
            out["augment_p"] = self.augment.p.detach().clone()
        return out

    def r1_loss(self, batch):
        """Lazy R1: gamma / 2 E|grad_x D(T(x))|^2, times the interval it stands for."""
        r1 = r1_penalty(lambda x: self.critic(x, eager=True), self.real(batch))
        return {"loss": r1 * (self.config.r1_gamma / 2 * self.config.r1_every), "r1": r1.detach()}

    def generator_loss(self, batch):
        d_fake = self.critic(self.fakes(len(batch["x"]), track=True)).float()
        return {"loss": F.softplus(-d_fake).mean(), "d_fake": d_fake.mean().detach()}

    def path_length_loss(self, batch):
        """Lazy path-length regularisation on a smaller batch: E[(|J_w^T y| - a)^2] times its
        weight and interval; a moves towards the batch's mean length by pl_decay."""
        cfg = self.config
        n = max(1, len(batch["x"]) // cfg.pl_batch_shrink)
        ws, _ = self.draw_styles(n)
        lengths = path_lengths(self.G.synthesis(ws), ws)
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean(), cfg.pl_decay))
        penalty = (lengths - self.pl_mean).square().mean()
        return {"loss": penalty * (cfg.pl_weight * cfg.pl_every), "path_length": lengths.mean().detach(),
                "pl_mean": self.pl_mean.clone(), "pl_penalty": penalty.detach()}

    def objectives(self) -> list[Objective]:
        cfg = self.config

        def adam(every: int, on: bool) -> dict:     # lazy regularisation rescales Adam
            c = every / (every + 1) if on else 1.0
            return dict(lr=cfg.lr * c, betas=(cfg.beta1 ** c, cfg.beta2 ** c))
        d, g = adam(cfg.r1_every, cfg.r1_gamma > 0), adam(cfg.pl_every, cfg.pl_weight > 0)
        D, G = list(self.D.parameters()), list(self.G.parameters())
        out = [Objective("critic", self.critic_loss, D, **d)]
        if cfg.r1_gamma > 0:
            out.append(Objective("r1", self.r1_loss, D, **d, every=cfg.r1_every, shares="critic"))
        out.append(Objective("generator", self.generator_loss, G, **g))
        if cfg.pl_weight > 0:
            out.append(Objective("path_length", self.path_length_loss, G, **g,
                                 every=cfg.pl_every, shares="generator"))
        return out

    # -- sampling ----------------------------------------------------------------------------
    def styles(self, z: Tensor, psi: float = 1.0) -> Tensor:
        """w = f(z), truncated around w_avg by psi: (N, w_dim)."""
        return self.G.mapping(z, psi=psi)

    def synthesize(self, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images in [0, 1] from ws (N, num_ws, w_dim) or one w per item (N, w_dim)."""
        if ws.dim() == 2:
            ws = self.G.broadcast(ws)
        return self.to_images(self.G.synthesis(ws, generator))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               psi: float = 1.0) -> Tensor:
        """n images in [0, 1]; ``psi`` < 1 trades variety for typicality (truncation)."""
        return self.synthesize(self.styles(self.prior(n, generator), psi), generator)
