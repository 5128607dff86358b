"""C, the controller of a world model (Ha and Schmidhuber 2018): a_t = W_c [z_t, h_t] + b_c.

The agent sees a frame, V codes it as z_t (its posterior mean), C maps the code and M's hidden
state h_t to an action, and M reads (z_t, a_t) to update h. C is deliberately tiny (867
parameters for z = 32, h = 256 and three actions) so that nearly all of the agent's
complexity lives in V and M, trained without reward, and C can be found by an evolution
strategy: CMA-ES (training/evolution.py) over the vector (W_c, b_c), each candidate's fitness the
total reward of whole episodes. A Box action is tanh(W_c [z, h] + b_c) stretched to the
action's bounds, or clipped to them in the dimensions ``clipped_actions`` names for the
environment: by default CarRacing's brake, as the paper's agent takes it, so that at theta = 0
the car steers straight at half gas without braking (stretched, the brake would rest at half).
A Discrete action is the argmax.

Where it plays: the real environment the rollouts were recorded in (the paper's CarRacing), or,
with ``dream=true``, inside M (the paper's VizDoom): the episode starts from the environment's
real first frame, then M's samples at temperature tau stand in for the frames, M's reward
head for the reward and its done head, drawn, ends the episode. Its data is the rollouts
themselves (it reads one episode: which environment, which action space, the frame size).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from genzoo.config import RunRef
from genzoo.data.rollouts import frame, make_env
from genzoo.models.base import DataInfo
from genzoo.models.evolved import EvolvedFamily
from genzoo.registry import register


PAPER_CLIPPED = {"CarRacing-v2": [2], "CarRacing-v3": [2]}     # steer, gas, brake: the brake


@dataclass
class ControllerConfig:
    vision: RunRef | None = None     # V: the vae run that codes frames
    memory: RunRef | None = None     # M: the world_m run trained on V's codes
    dream: bool = False              # evolve inside M's dream instead of the real environment
    temperature: float = 1.0         # tau of the dream
    max_steps: int = 1000            # steps of a training episode at most (the env may end it)
    score_episodes: int = 100        # real episodes the trained controller is scored on ...
    score_steps: int = 1000          # ... of this many steps at most (CarRacing's whole track)
    # per environment, the Box dimensions taken as clip(tanh(y), low, high), resting at 0:
    # the paper's CarRacing brake; the other dimensions and environments are stretched
    clipped_actions: dict[str, list[int]] = field(default_factory=lambda: dict(PAPER_CLIPPED))

    def validate(self):
        if min(self.max_steps, self.score_episodes, self.score_steps) < 1 or self.temperature < 0:
            raise ValueError("max_steps, score_episodes and score_steps must be >= 1, "
                             "temperature >= 0")
        for env, dims in self.clipped_actions.items():
            if not (isinstance(dims, (list, tuple)) and all(isinstance(i, int) and i >= 0
                                                            for i in dims)):
                raise ValueError(f"clipped_actions: {env}: {dims!r} is not a list of action "
                                 "dimensions (indices >= 0)")


@register("world_c", config=ControllerConfig, taxonomy="implicit", modality="rollout",
          summary="world model's C: linear [z, h] -> action, evolved by CMA-ES (real or dreamed)",
          showcase="genzoo.viz.world_models:controller_showcase")
class WorldController(EvolvedFamily):
    train_defaults = {"population": 64, "episodes": 16, "sigma0": 0.1}
    presets = {
        # What about an hour on 2 cores affords: short training episodes, a small population.
        "cpu-budget": {"max_steps": 500, "train.population": 16, "train.episodes": 1},
        "tiny": {"max_steps": 12, "score_episodes": 2, "score_steps": 12,
                 "train.population": 4, "train.episodes": 1},
    }

    def __init__(self, config: ControllerConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        if data.modality != "rollout" or "action_space" not in data.meta:
            raise ValueError("world_c plays the environment its data was recorded in: give it "
                             "the rollouts (gym:ENV?...)")
        if not {"vision", "memory"} <= set(self.components):
            raise ValueError("world_c stands on V and M: set vision=RUN_DIR and memory=RUN_DIR")
        memory = self.components["memory"]
        if memory.source.meta.get("env") != data.meta["env"]:
            raise ValueError(f"M was trained on {memory.source.meta.get('env')}, the data is "
                             f"{data.meta['env']}")
        self.space = data.meta["action_space"]
        self.clipped = list(config.clipped_actions.get(data.meta["env"], []))
        # a Box's bounds, built once rather than every step (not state: they come with the data)
        self._low, self._high = (torch.tensor(self.space.get(b, []), dtype=torch.float32)
                                 for b in ("low", "high"))
        dims = len(self.space.get("low", ()))
        if self.clipped and (self.space["kind"] != "box" or max(self.clipped) >= dims):
            raise ValueError(f"clipped_actions: {data.meta['env']}: {self.clipped}, but its "
                             f"actions are {self.space['kind']} with {dims or 'no'} Box "
                             "dimensions")
        self.controller = nn.Linear(memory.z_dim + memory.config.hidden, memory.a_dim)
        nn.init.zeros_(self.controller.weight)      # CMA-ES starts at theta = 0
        nn.init.zeros_(self.controller.bias)
        self.testing = False        # True: score() is the final test in the real environment

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"max_items": 1, "holdout": 0}     # one episode tells it the environment

    def __getstate__(self):                       # worker processes make their own env
        state = dict(super().__getstate__())
        state.pop("_env", None)
        return state

    # -- the agent ----------------------------------------------------------------------------
    def encode(self, obs) -> Tensor:
        """An observation -> z (1, Z): V's posterior mean of the frame, as V saw frames."""
        x = frame(obs, self.data.meta["frame_size"], self.data.meta["env"])
        x = x[None].to(self.device).float() / 255
        return self.components["vision"].derive({"x": x})["x"]

    def act(self, z: Tensor, h: Tensor) -> tuple[Tensor, object]:
        """(the action as M reads it (n, A), the action as the environment takes it)."""
        y = self.controller(torch.cat([z, h], -1))
        if self.space["kind"] == "discrete":
            k = int(y[0].argmax())
            return torch.nn.functional.one_hot(y.argmax(-1), self.space["n"]).float(), \
                self.space["start"] + k
        low, high = self._low.to(y.device), self._high.to(y.device)
        t = torch.tanh(y)
        a = low + (t + 1) / 2 * (high - low)
        if self.clipped:
            c = self.clipped
            a[:, c] = torch.minimum(torch.maximum(t[:, c], low[c]), high[c])
        return a, a[0].cpu().numpy().astype(np.float32)

    def _environment(self):
        if "_env" not in self.__dict__:
            self._env = make_env(self.data.meta["env"])
        return self._env

    @torch.no_grad()
    def play(self, seed: int, record: bool = False, steps: int | None = None
             ) -> tuple[float, list[Tensor]]:
        """One real episode of ``steps`` at most (default max_steps): (total reward, the
        frames seen when ``record``)."""
        env, memory = self._environment(), self.components["memory"]
        obs, _ = env.reset(seed=int(seed))
        h, state, total, frames = torch.zeros(1, memory.config.hidden, device=self.device), \
            None, 0.0, []
        for _ in range(steps or self.config.max_steps):
            if record:
                frames.append(frame(obs, self.data.meta["frame_size"], self.data.meta["env"]))
            z = self.encode(obs)
            a, env_action = self.act(z, h)
            obs, r, terminated, truncated, _ = env.step(env_action)
            total += float(r)
            if terminated or truncated:
                break
            h, state = memory.advance(z, a, state)
        return total, frames

    @torch.no_grad()
    def dream(self, seed: int) -> float:
        """One episode in M's dream from the environment's real first frame: total reward."""
        memory, g = self.components["memory"], torch.Generator(self.device).manual_seed(int(seed))
        obs, _ = self._environment().reset(seed=int(seed))
        z, state, total = self.encode(obs), None, 0.0
        h = torch.zeros(1, memory.config.hidden, device=self.device)
        for _ in range(self.config.max_steps):
            a, _ = self.act(z, h)
            h, state = memory.advance(z, a, state)
            mixture, reward, p_done = memory.predict(h)
            total += float(reward)
            if float(torch.rand((), generator=g, device=self.device)) < float(p_done):
                break
            z = mixture.sample(self.config.temperature, g)
        return total

    def score(self, seed: int) -> float:
        """Training: in the dream or the real environment. The final test (``testing``):
        real episodes of ``score_steps``."""
        if self.testing:
            return self.play(seed, steps=self.config.score_steps)[0]
        return self.dream(seed) if self.config.dream else self.play(seed)[0]

    @torch.no_grad()
    def sample(self, n, generator=None):
        """``n`` real episodes played by the controller, frames float (n, T, C, S, S) (zeros
        after an episode ends)."""
        seeds = torch.randint(0, 2**31 - 1, (n,), generator=generator).tolist()
        x = torch.zeros(n, *self.data.shape)
        for i, seed in enumerate(seeds):
            frames = self.play(seed, record=True)[1][: self.data.shape[0]]
            x[i, :len(frames)] = torch.stack(frames).float() / 255
        return x.to(self.device)
