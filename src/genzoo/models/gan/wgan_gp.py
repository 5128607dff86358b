"""WGAN-GP: Wasserstein GAN with gradient penalty (Arjovsky et al. 2017; Gulrajani et al. 2017).

The critic D is not a classifier but a 1-Lipschitz function whose mean gap
E[D(x)] - E[D(G(z))] estimates the Wasserstein-1 distance between the data and the generator's
distribution (Kantorovich-Rubinstein duality). Lipschitz-ness is encouraged softly: the critic
minimises D(x_tilde) - D(x) + lambda (||grad D(x_hat)||_2 - 1)^2, where x_hat lies on the line
between a real x and a generated x_tilde (Algorithm 1 of Gulrajani et al.). The critic has no
batch norm (the penalty is per sample) and a linear output; it is trained n_critic times per
generator step, and the generator minimises -D(G(z)).
"""
from __future__ import annotations

from dataclasses import dataclass

from genzoo.models.gan.adversarial import GANConfig, ImageGAN
from genzoo.nn.gan import gradient_penalty
from genzoo.registry import register


@dataclass
class WGANGPConfig(GANConfig):
    d_batch_norm: bool = False       # never batch norm in a gradient-penalised critic
    beta2: float = 0.9               # Adam (2e-4, 0.5, 0.9)
    n_critic: int = 3                # critic updates per generator update (5 in the paper)
    lambda_gp: float = 10.0          # weight of the gradient penalty

    def validate(self):
        super().validate()
        if self.d_batch_norm:
            raise ValueError("d_batch_norm must be false: the gradient penalty is per sample, "
                             "batch norm mixes the samples of a batch")
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")
        if self.lambda_gp < 0:
            raise ValueError(f"lambda_gp must be >= 0, got {self.lambda_gp}")


PRESETS = {
    # Gulrajani et al.'s Algorithm 1: n_critic 5, Adam(1e-4, 0, 0.9), no dropout.
    "paper": dict(n_critic=5, lr=1e-4, beta1=0.0, beta2=0.9, d_dropout=0.0),
    "small": dict(image_size=32),
    # A few-millisecond pair for the contract test and pipeline smoke runs (still more than
    # one critic step per generator step; conditioned on the labels where the data has them).
    "tiny": dict(image_size=8, z_dim=8, g_width=8, d_width=8, n_critic=2, conditional="auto"),
}


@register("wgan_gp", config=WGANGPConfig, taxonomy="implicit", modality="image",
          summary="Wasserstein GAN: linear critic with a gradient penalty, n_critic steps per G step",
          showcase="genzoo.viz.gan:showcase")
class WGANGP(ImageGAN):
    presets = PRESETS

    @property
    def critic_steps(self) -> int:
        return self.config.n_critic

    def critic_loss(self, batch):
        x = self.real(batch)
        y = self.labels(batch)
        x_tilde = self.fakes(len(x), y).detach()
        d_real = self.critic(x, y).float().mean()
        d_fake = self.critic(x_tilde, y).float().mean()
        gp = gradient_penalty(lambda x_hat: self.critic(x_hat, y, eager=True), x, x_tilde)
        return {"loss": d_fake - d_real + self.config.lambda_gp * gp,
                "wasserstein": d_real - d_fake,         # the critic's estimate of W(P_r, P_g)
                "gradient_penalty": gp, "d_real": d_real, "d_fake": d_fake,
                **self.diversity(x, x_tilde)}

    def generator_loss(self, batch):
        y = self.labels(batch)
        d_fake = self.critic(self.fakes(len(batch["x"]), y), y).float().mean()
        return {"loss": -d_fake, "d_fake": d_fake.detach()}
