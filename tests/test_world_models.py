"""World models (Ha and Schmidhuber 2018): rollouts recorded from an environment, V (the VAE
family) on their frames, M (an MDN-RNN) on V's codes, C (a linear controller) evolved by CMA-ES
in the environment or in M's dream, chained by a pipeline. A toy Gymnasium environment made
here (a 8x8 picture: steer a green dot onto a red one) runs the whole chain in seconds."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from genzoo import data as D  # noqa: E402
from genzoo.cli import main  # noqa: E402
from genzoo.errors import GenzooError  # noqa: E402
from genzoo.models.base import DataInfo, FieldInfo  # noqa: E402
from genzoo.nn.mdn import Mixture, MixtureDensity  # noqa: E402

needs_cma = pytest.mark.skipif(importlib.util.find_spec("cma") is None, reason="needs cma")


class DotEnv(gym.Env):
    """Steer a green dot along a row onto the red target; reward 1 - distance / 7 each step,
    and the episode ends (terminated) on the target."""
    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

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
        self.pos = float(np.clip(self.pos + float(np.asarray(action).reshape(-1)[0]), 0, 7))
        dist = abs(self.pos - self.target)
        return self._obs(), 1 - dist / 7, dist < 0.5, False, {}


gym.register("GenzooDot-v0", entry_point=DotEnv, max_episode_steps=16)
TOY = "gym:test_world_models:GenzooDot-v0?episodes=6&steps=16&size=8"
