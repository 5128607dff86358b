"""M, the memory of a world model (Ha and Schmidhuber 2018): an MDN-RNN over V's codes.

V (a VAE run) compresses each frame of the recorded rollouts to z_t; M is an LSTM that reads
(z_t, a_t) and, from its hidden state h_{t+1}, predicts the next code as a mixture of K
Gaussians per latent dimension (nn/mdn.py), P(z_{t+1} | a_t, z_t, h_t), together with the reward
r_t and whether the episode ends there (done_t), so that it can stand in for the environment
("dreaming"). Training minimises -log P(z_{t+1}) per latent dimension, the squared reward
error and the done flag's cross-entropy, on the steps that happened. As in the paper, each
batch draws its codes z ~ q(z|x) = N(mu, sigma^2) from V's posterior (a little noise that keeps
M from over-fitting the means). Dreaming feeds M its own samples at a temperature tau
(``temperature``): tau > 1 makes the dream harder to exploit, tau -> 0 deterministic.

Its data is derived from V (``derives_data_from = "vision"``): the rollouts named by --data
(``gym:ENV?...``) are passed once through V, frame by frame, and cached.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.config import RunRef
from genzoo.models.base import DataInfo, Family, Objective, SampleOption
from genzoo.nn.mdn import Mixture, MixtureDensity
from genzoo.registry import register


@dataclass
class MemoryConfig:
    vision: RunRef | None = None     # the trained V (a vae run) whose codes M models
    hidden: int = 256                # LSTM units
    mixtures: int = 5                # Gaussians per latent dimension
    temperature: float = 1.0         # tau when dreaming
    seq_len: int = 0                 # train on random windows of this many steps; 0 = episodes
    sample_z: bool = True            # z ~ q(z|x) each batch (the paper), else V's means
    done_pos_weight: float = 10.0    # weight of the rare terminal steps in the done loss
    lr: float = 1e-3                 # Adam; gradients clipped at 1 (train_defaults)

    def validate(self):
        if self.hidden < 1 or self.mixtures < 1 or self.seq_len < 0:
            raise ValueError("hidden and mixtures must be >= 1, seq_len >= 0")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


@register("world_m", config=MemoryConfig, taxonomy="explicit-tractable", modality="latent",
          summary="world model's M: LSTM + mixture density over V's next code, reward, done",
          showcase="genzoo.viz.world_models:memory_showcase")
class WorldMemory(Family):
    derives_data_from = "vision"
    train_defaults = {"batch_size": 100, "steps": 4000, "grad_clip": 1.0}
    presets = {"tiny": dict(hidden=16, mixtures=2)}
    sample_options = (
        SampleOption("temperature", float, None, "tau of the dream (default the run's)"),
        SampleOption("steps", int, None, "dreamed steps (default the rollouts' length)"),
    )

    def __init__(self, config: MemoryConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        if "actions" not in data.fields or len(data.shape) != 2:
            raise ValueError("world_m models sequences of codes with their actions: train it "
                             "on rollouts (gym:ENV?...) with vision=RUN_DIR")
        self.z_dim, self.a_dim = data.shape[-1], data.fields["actions"].shape[-1]
        self.lstm = nn.LSTM(self.z_dim + self.a_dim, config.hidden, batch_first=True)
        self.mdn = MixtureDensity(config.hidden, self.z_dim, config.mixtures)
        self.reward = nn.Linear(config.hidden, 1)
        self.done = nn.Linear(config.hidden, 1)

    # -- one step of the recurrent model ----------------------------------------------------------
    def advance(self, z: Tensor, a: Tensor, state=None) -> tuple[Tensor, tuple]:
        """Read (z_t, a_t): h_{t+1} (n, hidden) and the LSTM state."""
        out, state = self.lstm(torch.cat([z, a], -1)[:, None], state)
        return out[:, 0], state

    def predict(self, h: Tensor) -> tuple[Mixture, Tensor, Tensor]:
        """From h_{t+1}: the mixture over z_{t+1}, the reward r_t and P(done_t)."""
        return (self.mdn(h), self.reward(h).squeeze(-1),
                torch.sigmoid(self.done(h).squeeze(-1)))

    # -- training --------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        z, a, m = batch["x"], batch["actions"], batch["mask"]
        r, d = batch["rewards"], batch["dones"]
        if self.training and self.config.sample_z and "log_var" in batch:
            z = z + (0.5 * batch["log_var"]).exp() * torch.randn_like(z)
        L = self.config.seq_len + 1
        if self.training and 1 < L < z.shape[1]:
            s = int(torch.randint(0, z.shape[1] - L + 1, ()))
            z, a, m, r, d = (t[:, s:s + L] for t in (z, a, m, r, d))
        h, _ = self.lstm(torch.cat([z[:, :-1], a[:, :-1]], -1))
        mix, r_hat, d_logit = self.mdn(h), self.reward(h).squeeze(-1), self.done(h).squeeze(-1)
        step, nxt = m[:, :-1], m[:, 1:]          # step t happened; z_{t+1} was seen
        z_nll = -(mix.log_prob(z[:, 1:]).mean(-1) * nxt).sum() / nxt.sum().clamp(min=1)
        r_mse = ((r_hat - r[:, :-1]).pow(2) * step).sum() / step.sum().clamp(min=1)
        bce = F.binary_cross_entropy_with_logits(
            d_logit, d[:, :-1], reduction="none",
            pos_weight=torch.tensor(self.config.done_pos_weight, device=h.device))
        d_bce = (bce * step).sum() / step.sum().clamp(min=1)
        return {"loss": z_nll + r_mse + d_bce, "z_nll": z_nll, "reward_mse": r_mse,
                "done_bce": d_bce}

    def objectives(self):
        params = [p for n, p in self.named_parameters() if not n.startswith("components.")]
        return [Objective("memory", self.loss, params, lr=self.config.lr)]

    # -- dreaming --------------------------------------------------------------------------------
    @torch.no_grad()
    def continue_dream(self, z: Tensor, actions: Tensor, context: int, tau: float | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
        """Codes (n, T, Z): the first ``context`` of ``z`` read as they are, the rest dreamed
        by M, fed its own samples and the given ``actions`` (n, T, A)."""
        tau = self.config.temperature if tau is None else tau
        out, state = [z[:, t] for t in range(max(1, min(context, z.shape[1])))], None
        for t in range(z.shape[1] - 1):
            h, state = self.advance(out[t], actions[:, t], state)
            if t + 1 >= len(out):
                out.append(self.mdn(h).sample(tau, generator))
        return torch.stack(out, 1)

    def random_actions(self, n: int, steps: int, generator=None) -> Tensor:
        """Actions (n, steps, A) drawn uniformly from the environment's action space."""
        space = self.source.meta["action_space"]
        if space["kind"] == "discrete":
            k = torch.randint(space["n"], (n, steps), generator=generator, device=self.device)
            return F.one_hot(k, space["n"]).float()
        low, high = (torch.tensor(space[b], device=self.device) for b in ("low", "high"))
        u = torch.rand(n, steps, len(low), generator=generator, device=self.device)
        return low + u * (high - low)

    @property
    def source(self) -> DataInfo:
        """The rollouts the codes were derived from."""
        return DataInfo.from_dict(self.data.meta["source_info"])

    @property
    def output_info(self) -> DataInfo:
        v = self.components["vision"].data
        return DataInfo("rollout", (self.data.shape[0], *v.shape), meta=self.source.meta)

    @torch.no_grad()
    def sample(self, n, generator=None, temperature: float | None = None, steps: int | None = None):
        """``n`` dreamed rollouts decoded by V, float (n, steps, C, H, W): z_0 from V's prior,
        random actions, the rest dreamed at ``temperature``."""
        steps = steps or self.data.shape[0]
        z = torch.zeros(n, steps, self.z_dim, device=self.device)
        z[:, 0] = torch.randn(n, self.z_dim, generator=generator, device=self.device)
        a = self.random_actions(n, steps, generator)
        z = self.continue_dream(z, a, 1, temperature, generator)
        vision = self.components["vision"]
        return vision.decode(z.flatten(0, 1)).view(n, steps, *vision.data.shape)
