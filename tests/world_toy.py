"""A toy world for the world-model tests (Ha and Schmidhuber 2018): an 8x8 picture in which a
green dot is steered along a row onto a red one, as a Gymnasium environment with a Box action
(GenzooDot-v0) or a Discrete one (GenzooDotDiscrete-v0: left, stay, right), and V, M and C
built in memory around it. Not a test module: the test files import it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from genzoo.models.base import DataInfo, FieldInfo  # noqa: E402

BOX_ENV = "world_toy:GenzooDot-v0"
DISCRETE_ENV = "world_toy:GenzooDotDiscrete-v0"


class DotEnv(gym.Env):
    """Steer a green dot along a row onto the red target; reward 1 - distance / 7 each step,
    and the episode ends (terminated) on the target."""
    metadata = {"render_modes": []}

    def __init__(self, discrete: bool = False):
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.discrete = discrete
        self.action_space = gym.spaces.Discrete(3, start=-1) if discrete \
            else gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        img = np.zeros((8, 8, 3), np.uint8)
        img[3:5, int(self.target), 0] = 255
        img[3:5, int(round(self.pos)), 1] = 255
        return img

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(0, 8))
        self.pos = float(self.np_random.integers(0, 8))
        return self._obs(), {}

    def step(self, action):
        if self.discrete:
            assert self.action_space.contains(action), action
        self.pos = float(np.clip(self.pos + float(np.asarray(action).reshape(-1)[0]), 0, 7))
        dist = abs(self.pos - self.target)
        return self._obs(), 1 - dist / 7, dist < 0.5, False, {}


gym.register("GenzooDot-v0", entry_point=DotEnv, max_episode_steps=16)
gym.register("GenzooDotDiscrete-v0", entry_point=DotEnv, max_episode_steps=16,
             kwargs={"discrete": True})
TOY = f"gym:{BOX_ENV}?episodes=6&steps=16&size=8"


def toy(episodes=6, env=BOX_ENV, **settings) -> str:
    """The spec of ``episodes`` recorded episodes of the toy environment."""
    extra = "".join(f"&{k}={v}" for k, v in settings.items())
    return f"gym:{env}?episodes={episodes}&steps=16&size=8{extra}"


def rollout_info(actions=3, env=BOX_ENV, T=16, space=None) -> DataInfo:
    space = space or {"kind": "box", "low": [-1.0] * actions, "high": [1.0] * actions}
    return DataInfo("rollout", (T, 3, 8, 8), meta={"env": env, "action_space": space,
                                                    "frame_size": 8},
                    fields={"actions": FieldInfo("action", (T, actions))})


def agent(z=32, hidden=256, actions=3, env=BOX_ENV, space=None, **controller):
    """C standing on a fresh (untrained) V and M for the toy environment."""
    from genzoo.models.vae import VAE, VAEConfig
    from genzoo.models.world_models.controller import ControllerConfig, WorldController
    from genzoo.models.world_models.memory import MemoryConfig, WorldMemory
    torch.manual_seed(0)
    info = rollout_info(actions, env, space=space)
    vision = VAE(VAEConfig(widths=[4, 8], latent_dim=z, image_size=8), DataInfo("image", (3, 8, 8)))
    codes = DataInfo("latent", (16, z), meta={"source_info": info.to_dict()},
                     fields={"actions": FieldInfo("action", (16, actions))})
    memory = WorldMemory(MemoryConfig(hidden=hidden), codes, {"vision": vision})
    return WorldController(ControllerConfig(**controller), info,
                           {"vision": vision, "memory": memory})
