"""The two players of an image GAN (Goodfellow et al. 2014), as a family.

A generator G maps noise z ~ N(0, I) to an image; a discriminator (or critic) D scores images.
They play a game: D learns to tell real images from G's, G learns to fool D. In genzoo the game
is two objectives on the one Trainer: D's (``repeats`` = critic steps per generator step) first,
then G's; the Trainer gives gradients only to the parameters of the player being updated.
Subclasses write the two losses; this class holds the networks, the scaling of images to
G's tanh range [-1, 1], the prior, sampling and the collapse indicator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.nn.gan import Discriminator, Generator, halvings, spread


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
    lr: float = 2e-4                 # Adam, both players
    beta1: float = 0.5
    beta2: float = 0.999

    def validate(self):
        try:
            halvings(self.image_size)
        except ValueError as e:
            raise ValueError(f"image_size: {e}") from None
        if self.z_dim < 1 or self.g_width < 1 or self.d_width < 1:
            raise ValueError("z_dim, g_width and d_width must be >= 1")
        if not 0 <= self.d_dropout < 1:
            raise ValueError(f"d_dropout must be in [0, 1), got {self.d_dropout}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class ImageGAN(Family):
    """G and D over images of the data's shape; ``critic_loss`` and ``generator_loss`` to write."""
    train_defaults = {"batch_size": 128, "steps": 3000, "sample_every": 250, "log_every": 10}
    num_labels = 0          # > 0: G and D also see a one-hot class label (conditional GAN)

    def __init__(self, config: GANConfig, data: DataInfo):
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
        k = self.num_labels
        self.G = Generator(config.z_dim + k, c, h, config.g_width, config.g_batch_norm,
                           config.slope)
        self.D = Discriminator(c + k, h, config.d_width, config.d_batch_norm, config.d_dropout,
                               config.slope)

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- the players -------------------------------------------------------------------------
    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), (n, z_dim)."""
        return torch.randn(n, self.config.z_dim, generator=generator, device=self.device)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z): images in [-1, 1]; ``y`` is a class index per item for a conditional GAN."""
        return self.G(z)

    def critic(self, x: Tensor, y: Tensor | None = None, eager: bool = False) -> Tensor:
        """D(x) of images x in [-1, 1]: one score each (a logit, or a Wasserstein critic's value).

        ``eager`` bypasses a torch.compile'd D (its forward runs uncompiled): the gradient
        penalty differentiates a gradient, and compiled graphs have no double backward."""
        return (self.D.forward if eager else self.D)(x)

    def readout(self, score: Tensor) -> Tensor:
        """D's score as it is logged: a Wasserstein critic's value as it is."""
        return score.detach().float()

    def labels(self, batch: dict) -> Tensor | None:
        """The condition of a batch (None for an unconditional GAN)."""
        return None

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
        return [Objective("critic", self.critic_loss, list(self.D.parameters()), lr=cfg.lr,
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
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images in [0, 1], (n, C, H, W)."""
        return self.to_images(self.generate(self.prior(n, generator)))

    @staticmethod
    def to_images(x: Tensor) -> Tensor:
        return ((x.float() + 1) / 2).clamp(0, 1)
