"""Test set-up shared by every test file: one torch thread (CI has two cores and pytest may run
beside other work), runs written under a temporary directory, W&B never reaching the network."""

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
torch.set_num_threads(1)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run inside a fresh directory, so runs/, videos/ and wandb/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


class EpisodeEnv(gym.Env):
    """Reward 1 a step for `length` steps; then the episode terminates or, with terminate=False,
    a TimeLimit of `length` truncates it. The observation is 0 until the last step and `last_obs`
    there, so a test can tell a true final observation from a reset one. Actions are ignored."""

    def __init__(self, length: int, terminate: bool, discrete: bool, last_obs: float):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        if discrete:
            self.action_space = gym.spaces.Discrete(2)
        else:
            self.action_space = gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 4.0]))
        self.length, self.terminate, self.last_obs, self.t = length, terminate, last_obs, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        last = self.t >= self.length
        obs = np.full(2, self.last_obs if last else 0.0, np.float32)
        return obs, 1.0, self.terminate and last, False, {}


# Box actions, 5 steps, a distinct final observation (off-policy boundary tests).
for _name, _terminate in [("Terminated", True), ("Truncated", False)]:
    gym.register(
        f"Constant{_name}-v0",
        entry_point=EpisodeEnv,
        max_episode_steps=None if _terminate else 5,
        kwargs=dict(length=5, terminate=_terminate, discrete=False, last_obs=0.5),
    )
    # Discrete actions, 4 steps, the observation always 0 (on-policy boundary tests).
    gym.register(
        f"Discrete{_name}-v0",
        entry_point=EpisodeEnv,
        max_episode_steps=None if _terminate else 4,
        kwargs=dict(length=4, terminate=_terminate, discrete=True, last_obs=0.0),
    )
