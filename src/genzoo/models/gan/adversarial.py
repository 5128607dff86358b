"""The two players of an image GAN (Goodfellow et al. 2014), as a family.

A generator G maps noise z ~ N(0, I) to an image; a discriminator (or critic) D scores images.
They play a game: D learns to tell real images from G's, G learns to fool D. In genzoo the game
is two objectives on the one Trainer: D's (``repeats`` = critic steps per generator step) first,
then G's; the Trainer gives gradients only to the parameters of the player being updated.

:class:`AdversarialFamily` holds what every image GAN shares whatever its networks (the scaling
of images to G's tanh range [-1, 1], the prior, class conditions, sampling, the collapse
indicator); :class:`ImageGAN` adds the DCGAN pair of networks with the SAGAN / BigGAN toolkit
as options (self-attention, spectral normalisation, class-conditional batch norm with a
projection discriminator, orthogonal regularisation, two learning rates, truncation).
Subclasses write the two losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective, SampleOption
from genzoo.nn.biggan import matrix_weights, orthogonal_regularisation, truncated_normal
from genzoo.nn.gan import Discriminator, Generator, feature_sides, halvings, spread
from genzoo.nn.sagan import apply_spectral_norm


class AdversarialFamily(Family):
    """Two players over square images of side 4 * 2^k; the networks and losses to write.

    ``self.num_classes`` is the number of classes G and D are conditioned on (0: none)."""
    train_defaults = {"batch_size": 128, "steps": 3000, "sample_every": 250, "log_every": 10,
                      "precision": "auto"}
    num_classes = 0

    def __init__(self, config, data: DataInfo):
        super().__init__(config, data)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"{self.family_name}: needs images, got {data.modality} "
                              f"items of shape {tuple(data.shape)}")
        c, h, w = data.shape
        if h != w:
            raise GenzooError(f"{self.family_name}: needs square images, got {h}x{w} "
                              f"(use --image-size)")
        try:
            halvings(h)
        except ValueError as e:
            raise GenzooError(f"{self.family_name}: {e} (use --image-size 32 or 64)") from None

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- the players -------------------------------------------------------------------------
    def prior(self, n: int, generator: torch.Generator | None = None,
              truncation: float | None = None) -> Tensor:
        """z ~ N(0, I), (n, z_dim); truncated at +-``truncation`` when given (BigGAN)."""
        shape = (n, self.config.z_dim)
        if truncation is not None:
            if truncation <= 0:
                raise GenzooError(f"{self.family_name}: truncation must be > 0, got {truncation}")
            return truncated_normal(shape, truncation, generator, self.device)
        return torch.randn(shape, generator=generator, device=self.device)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z): images in [-1, 1]; ``y`` is a class index per item for a conditional GAN."""
        return self.G(z) if y is None else self.G(z, y)

    def critic(self, x: Tensor, y: Tensor | None = None, eager: bool = False) -> Tensor:
        """D(x) of images x in [-1, 1]: one score each (a logit, or a Wasserstein critic's value).

        ``eager`` bypasses a torch.compile'd D (its forward runs uncompiled): the gradient
        penalty differentiates a gradient, and compiled graphs have no double backward."""
        D = self.D.forward if eager else self.D
        return D(x) if y is None else D(x, y)

    def readout(self, score: Tensor) -> Tensor:
        """D's score as it is logged: a Wasserstein critic's value as it is."""
        return score.detach().float()

    def labels(self, batch: dict) -> Tensor | None:
        """The condition of a batch (None for an unconditional GAN)."""
        if not self.num_classes:
            return None
        if "y" not in batch:
            raise GenzooError(f"{self.family_name}: the batch has no labels 'y'")
        return batch["y"]

    @staticmethod
    def real(batch: dict) -> Tensor:
        """Data in [0, 1] -> G's range [-1, 1]."""
        return batch["x"] * 2 - 1

    def fakes(self, n: int, y: Tensor | None = None) -> Tensor:
        return self.generate(self.prior(n), y)

    def diversity(self, x: Tensor, x_tilde: Tensor) -> dict[str, Tensor]:
        """The collapse indicators: per-pixel spread of generated and real batches, and their
        ratio (about 1 when G covers the data's variety, near 0 when it has collapsed)."""
        s_fake, s_real = spread(x_tilde) / 2, spread(x) / 2      # in [0, 1] pixel units
        return {"spread": s_fake, "spread_real": s_real,
                "spread_ratio": s_fake / s_real.clamp_min(1e-8)}

    # -- the game ----------------------------------------------------------------------------
    def critic_loss(self, batch: dict) -> dict[str, Tensor]:
        raise NotImplementedError

    def generator_loss(self, batch: dict) -> dict[str, Tensor]:
        raise NotImplementedError

    def objectives(self) -> list[Objective]:
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        d_lr = getattr(cfg, "d_lr", None) or cfg.lr          # two time-scales (TTUR) or one
        return [Objective("critic", self.critic_loss, list(self.D.parameters()), lr=d_lr,
                          betas=betas, repeats=self.critic_steps),
                Objective("generator", self.generator_loss, list(self.G.parameters()),
                          lr=cfg.lr, betas=betas)]

    @property
    def critic_steps(self) -> int:
        """D's updates per G update (each on a fresh batch)."""
        return 1

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, Tensor]:
        """On held-out images: D's mean score of real and generated ones, and the spread
        indicators (a D that scores held-out reals much lower than training ones overfits)."""
        x = self.real(batch)
        y = self.labels(batch)
        x_tilde = self.fakes(len(x), y)
        d_real = self.readout(self.critic(x, y)).mean()
        d_fake = self.readout(self.critic(x_tilde, y)).mean()
        return {"d_real": d_real, "d_fake": d_fake, "d_gap": d_real - d_fake,
                **self.diversity(x, x_tilde)}

    # -- sampling ----------------------------------------------------------------------------
    def label_tensor(self, n: int, label: int | Tensor | None) -> Tensor | None:
        """Class indices for n samples: ``label`` for all, per item, or cycling when None;
        None for an unconditional GAN (which refuses a label)."""
        k = self.num_classes
        if not k:
            if label is not None:
                raise GenzooError(f"{self.family_name}: this run is unconditional (trained "
                                  f"without class conditioning): it takes no label")
            return None
        if label is None:
            return torch.arange(n, device=self.device) % k
        y = torch.as_tensor(label, device=self.device).long()
        if y.dim() == 0:
            y = y.expand(n)
        if len(y) != n or y.min() < 0 or y.max() >= k:
            raise GenzooError(f"{self.family_name}: label {label if y.numel() == 1 else 'tensor'}"
                              f" is not {n} class indices in 0..{k - 1}")
        return y

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               label: int | Tensor | None = None, truncation: float | None = None) -> Tensor:
        """n images in [0, 1], (n, C, H, W); of class ``label`` for a conditional GAN (None
        cycles through the classes); z truncated at +-``truncation`` when given."""
        y = self.label_tensor(n, label)
        return self.to_images(self.generate(self.prior(n, generator, truncation), y))

    @torch.no_grad()
    def class_grid(self, columns: int, generator: torch.Generator | None = None) -> Tensor:
        """One row per class, the same ``columns`` codes z in every row: (K * columns, C, H, W).

        Down a column only the label changes, so what stays (pose, thickness, colour) is what
        z encodes, and what changes is what the label does."""
        z = self.prior(columns, generator).repeat(self.num_classes, 1)
        y = torch.arange(self.num_classes, device=self.device).repeat_interleave(columns)
        return self.to_images(self.generate(z, y))

    @staticmethod
    def to_images(x: Tensor) -> Tensor:
        return ((x.float() + 1) / 2).clamp(0, 1)


SAMPLE_OPTIONS = (
    SampleOption("label", int, None, "class of every sample, a name or an index (default: "
                 "cycle through the classes; conditional runs only)", kind="label"),
    SampleOption("truncation", float, None, "draw z from a normal truncated at +-this value "
                 "(BigGAN's trick: lower = less variety, more fidelity; default: no truncation)"))


@dataclass
class GANConfig:
    z_dim: int = 100                 # size of the code z ~ N(0, I)
    image_size: int = 64             # side the data is adapted to: 4 * 2^k (32, 64, ...)
    g_width: int = 64                # generator channels before the output (x2 per layer up)
    d_width: int = 64                # discriminator channels after the input (x2 per layer down)
    g_batch_norm: bool = True
    d_batch_norm: bool = True        # DCGAN: yes; a WGAN-GP critic: never
    d_dropout: float = 0.3           # dropout after each discriminator block (Foster's recipe)
    slope: float = 0.2               # LeakyReLU negative slope, both networks
    lr: float = 2e-4                 # Adam, both players (G's when d_lr is set)
    beta1: float = 0.5
    beta2: float = 0.999
    # -- the SAGAN / BigGAN toolkit: all off in the classic recipe --------------------------
    attention_at: int = 0            # a self-attention block after the features of this side,
                                     # in G and in D (SAGAN); 0 = none
    spectral_norm: str = "none"      # none | d | both: spectral normalisation of the weights
    conditional: str = "no"          # no | yes | auto: class-conditional batch norm in G (one
                                     # shared embedding) and a projection D; auto = if labelled
    embed_dim: int = 128             # the shared class embedding
    ortho_reg: float = 0.0           # BigGAN's orthogonal regularisation of G's weights (1e-4)
    d_lr: float | None = None        # D's learning rate, if not lr (two time-scales, TTUR)

    def validate(self):
        try:
            halvings(self.image_size)
        except ValueError as e:
            raise ValueError(f"image_size: {e}") from None
        if self.z_dim < 1 or self.g_width < 1 or self.d_width < 1 or self.embed_dim < 1:
            raise ValueError("z_dim, g_width, d_width and embed_dim must be >= 1")
        if not 0 <= self.d_dropout < 1:
            raise ValueError(f"d_dropout must be in [0, 1), got {self.d_dropout}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.attention_at and self.attention_at not in feature_sides(self.image_size):
            raise ValueError(f"attention_at {self.attention_at}: not a feature side of a "
                             f"{self.image_size}x{self.image_size} GAN (one of "
                             f"{', '.join(map(str, feature_sides(self.image_size)))}, or 0)")
        if self.spectral_norm not in ("none", "d", "both"):
            raise ValueError(f"spectral_norm must be none, d or both, got {self.spectral_norm!r}")
        if self.conditional not in ("no", "yes", "auto"):
            raise ValueError(f"conditional must be no, yes or auto, got {self.conditional!r}")
        if self.conditional != "no" and not self.g_batch_norm:
            raise ValueError("conditional needs g_batch_norm (the class enters G through the "
                             "batch norm's gain and bias)")
        if self.ortho_reg < 0:
            raise ValueError(f"ortho_reg must be >= 0, got {self.ortho_reg}")


class ImageGAN(AdversarialFamily):
    """The DCGAN pair over images of the data's shape, with the toolkit's options."""
    num_labels = 0          # > 0: G and D also see a one-hot class label (conditional GAN)
    sample_options = SAMPLE_OPTIONS

    def __init__(self, config: GANConfig, data: DataInfo):
        super().__init__(config, data)
        c, h, _ = data.shape
        if config.conditional == "yes" and data.num_classes < 2:
            raise GenzooError(f"{self.family_name}: conditional=yes needs labelled data with at "
                              f"least 2 classes, got {data.num_classes or 'no'} (or conditional=no)")
        conditioned = config.conditional != "no" and data.num_classes >= 2
        k = self.num_labels
        self.num_classes = k or (data.num_classes if conditioned else 0)
        by_norm = 0 if k else self.num_classes          # one-hot inputs, or CBN + projection
        self.G = Generator(config.z_dim + k, c, h, config.g_width, config.g_batch_norm,
                           config.slope, config.attention_at, by_norm, config.embed_dim)
        self.D = Discriminator(c + k, h, config.d_width, config.d_batch_norm, config.d_dropout,
                               config.slope, config.attention_at, by_norm)
        if config.spectral_norm in ("d", "both"):
            apply_spectral_norm(self.D, embeddings=True)
        if config.spectral_norm == "both":
            apply_spectral_norm(self.G)

    def objectives(self) -> list[Objective]:
        critic, generator = super().objectives()
        if self.config.ortho_reg > 0:
            generator.loss = self.regularised_generator_loss
        return [critic, generator]

    def regularised_generator_loss(self, batch: dict) -> dict[str, Tensor]:
        """G's loss plus BigGAN's orthogonal regularisation of G's weights."""
        out = self.generator_loss(batch)
        r = orthogonal_regularisation(matrix_weights(self.G), self.config.ortho_reg)
        return {**out, "loss": out["loss"] + r, "ortho_reg": r.detach()}
