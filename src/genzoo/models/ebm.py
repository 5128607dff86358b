"""Energy-based model (Du & Mordatch 2019, "Implicit generation and generalization in
energy-based models"; the recipe of Foster's "Generative Deep Learning", ch. 7).

A network gives every image an energy E(x); the model is p(x) = exp(-E(x)) / Z with an
intractable Z. Contrastive divergence follows the gradient of the log-likelihood anyway,
grad log p(x) = -grad E(x) + E_{x'~p}[grad E(x')], with the expectation estimated on samples
x' from the model itself, drawn by Langevin dynamics on E. So training lowers the energy of
real images and raises that of the model's samples: loss = E(real) - E(fake), plus
alpha * (E(real)^2 + E(fake)^2) to keep energies near zero. The chains start from a replay
buffer of past samples (95%) or fresh uniform noise (5%), so short chains of 60 steps are
enough: across training, each buffered sample is a much longer chain.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective, SampleOption
from genzoo.nn.langevin import langevin
from genzoo.registry import register


@dataclass
class EBMConfig:
    widths: tuple[int, ...] = (16, 32, 64, 64)   # conv channels, each layer stride 2 (5x5 first, then 3x3)
    dense: int = 64                 # units of the hidden dense layer
    alpha: float = 0.1              # weight of the energy regulariser E(real)^2 + E(fake)^2
    step_size: float = 10.0         # Langevin step on the (clipped) energy gradient
    noise: float = 0.005            # std of the Gaussian noise added at each Langevin step
    grad_clip: float = 0.03         # per-pixel clip of the energy gradient
    steps: int = 60                 # Langevin steps per training batch
    buffer_size: int = 8192         # replay buffer of past samples
    fresh: float = 0.05             # fraction of chains started from fresh uniform noise
    real_noise: float = 0.005       # std of the noise added to real images during training
    sample_steps: int = 1000        # Langevin steps when sampling from fresh noise
    image_size: int = 32            # the recipe's side (grey digits padded to 32x32)
    lr: float = 1e-4                # Adam

    def validate(self):
        if not self.widths or min(self.widths) < 1 or self.dense < 1:
            raise ValueError("widths must be a non-empty list of positive sizes, dense >= 1")
        if self.steps < 1 or self.sample_steps < 1 or self.buffer_size < 1:
            raise ValueError("steps, sample_steps and buffer_size must be >= 1")
        if not 0 <= self.fresh <= 1:
            raise ValueError(f"fresh must be in [0, 1], got {self.fresh}")
        if self.step_size <= 0 or self.noise < 0 or self.grad_clip < 0 or self.alpha < 0:
            raise ValueError("step_size must be > 0; noise, grad_clip and alpha >= 0")


class EnergyNet(nn.Module):
    """x (N, C, H, W) in [-1, 1] -> E(x) (N,): strided convs and swish, then two dense layers."""

    def __init__(self, shape: tuple[int, int, int], widths: tuple[int, ...], dense: int):
        super().__init__()
        layers, c, h, w = [], *shape
        for i, width in enumerate(widths):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c, width, k, stride=2, padding=k // 2), nn.SiLU()]
            c, h, w = width, (h + 1) // 2, (w + 1) // 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, dense), nn.SiLU(),
                                 nn.Linear(dense, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@register("ebm", config=EBMConfig, taxonomy="explicit-approximate", modality="image",
          summary="energy-based model: contrastive divergence with Langevin samples and a replay buffer",
          showcase="genzoo.viz.ebm:showcase")
class EBM(Family):
    train_defaults = {"batch_size": 128, "steps": 3000, "sample_every": 500}
    presets = {
        # A few-millisecond model for the contract test and pipeline smoke runs: short chains.
        "tiny": dict(widths=[8, 16], dense=16, steps=5, sample_steps=10, buffer_size=64,
                     image_size=8),
    }
    sample_options = (
        SampleOption("steps", int, None, "Langevin steps of each chain (default: the config's "
                     "sample_steps)"),)

    def __init__(self, config: EBMConfig, data: DataInfo):
        super().__init__(config, data)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"ebm: models images, not {data.modality!r} data")
        self.energy = EnergyNet(tuple(data.shape), tuple(config.widths), config.dense)
        # The replay buffer is model state (saved in checkpoints, so resume is exact). It is kept
        # as the raw bits of float32 samples in an int32 tensor: the EMA averages floating-point
        # state only, and an average of samples is not a sample.
        start = torch.rand(config.buffer_size, *data.shape) * 2 - 1
        self.register_buffer("replay_bits", start.view(torch.int32))
        self.register_buffer("replay_next", torch.zeros((), dtype=torch.long))  # FIFO position

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size, "channels": 1}

    @property
    def replay(self) -> Tensor:
        """The buffer as float samples in [-1, 1] (a view: writes go into the buffer)."""
        return self.replay_bits.view(torch.float32)

    def _uniform(self, n: int, generator=None) -> Tensor:
        return torch.rand((n, *self.data.shape), generator=generator, device=self.device) * 2 - 1

    def langevin(self, x: Tensor, steps: int, generator=None, record=()):
        c = self.config
        return langevin(self.energy, x, steps, c.step_size, c.noise, c.grad_clip, (-1.0, 1.0),
                        generator, record)

    # -- contrastive divergence ---------------------------------------------------------------
    def negative_samples(self, n: int) -> Tensor:
        """x' for one batch: chains from the buffer (or fresh noise), written back FIFO."""
        size = self.config.buffer_size
        start = self.replay[torch.randint(0, size, (n,), device=self.device)]
        fresh = torch.rand(n, device=self.device) < self.config.fresh
        start = torch.where(fresh[:, None, None, None], self._uniform(n), start)
        x, _, _ = self.langevin(start, self.config.steps)
        where = (self.replay_next + torch.arange(n, device=self.device)) % size
        self.replay[where] = x.float()
        self.replay_next.copy_((self.replay_next + n) % size)
        return x

    def loss(self, batch: dict) -> dict:
        real = batch["x"] * 2 - 1                                  # [0, 1] -> [-1, 1]
        real = (real + self.config.real_noise * torch.randn_like(real)).clamp(-1, 1)
        fake = self.negative_samples(len(real))
        e_real, e_fake = self.energy(real), self.energy(fake)
        cdiv = e_real.mean() - e_fake.mean()
        reg = self.config.alpha * (e_real.pow(2).mean() + e_fake.pow(2).mean())
        return {"loss": cdiv + reg, "cdiv": cdiv, "reg": reg,
                "energy_real": e_real.mean(), "energy_fake": e_fake.mean()}

    def objectives(self):
        return [Objective("model", self.loss, list(self.energy.parameters()), lr=self.config.lr)]

    def evaluate(self, batch: dict) -> dict:
        """Energies of held-out images and of uniform noise, and the gap between them (> 0:
        the model finds the real images more likely than noise)."""
        real = batch["x"] * 2 - 1
        e_real = self.energy(real).mean()
        e_noise = self.energy(self._uniform(len(real))).mean()
        return {"energy_real": e_real, "energy_noise": e_noise, "energy_gap": e_noise - e_real}

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               steps: int | None = None) -> Tensor:
        """Langevin chains of ``steps`` (default sample_steps) from fresh uniform noise, in [0, 1]."""
        steps = self.config.sample_steps if steps is None else steps
        if steps < 0:
            raise GenzooError(f"ebm: --steps must be >= 0, got {steps}")
        x, _, _ = self.langevin(self._uniform(n, generator), steps, generator)
        return (x + 1) / 2

    @torch.no_grad()
    def from_buffer(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples from the replay buffer, in [0, 1]."""
        idx = torch.randperm(self.config.buffer_size, generator=generator,
                             device=generator.device if generator is not None else "cpu")[:n]
        return (self.replay[idx.to(self.device)] + 1) / 2
