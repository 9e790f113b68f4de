"""PointReach: a cheap gymnasium env with the sim arm's interface, for learner tests and smoke runs.

A 2-D point follows absolute position targets like a position-controlled servo (it moves a
fraction `gain` of the way to the commanded target each step). Observation
{"observation.state": [x, y, goal_x, goal_y]}, action Box([-1, 1]^2) of absolute targets,
reward -|p - goal| per step (+10 and termination on reaching the goal within `tolerance`),
time limit `max_steps` (truncation). `info["is_success"]` as the sim tasks report it. A random
policy rarely succeeds; commanding the goal succeeds in a few steps. `sparse=True` (registered as
chunkbot/PointReachSparse-v0: slower point, 60 steps) pays only the success: a longer-horizon,
sparse-reward variant for comparing critics.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from contract import STATE_KEY


class PointReachEnv(gym.Env):
    metadata = {"render_modes": [], "render_fps": 10}

    def __init__(self, max_steps: int = 30, gain: float = 0.5, tolerance: float = 0.05, sparse: bool = False) -> None:
        self.max_steps, self.gain, self.tolerance, self.sparse = max_steps, gain, tolerance, sparse
        self.observation_space = spaces.Dict({STATE_KEY: spaces.Box(-1.0, 1.0, (4,), np.float32)})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = np.zeros(2, np.float32)
        self._goal = np.zeros(2, np.float32)
        self._t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {STATE_KEY: np.concatenate([self._pos, self._goal]).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
        while True:  # goal at least 0.6 away, so success needs deliberate motion
            self._goal = self.np_random.uniform(-0.8, 0.8, 2).astype(np.float32)
            if np.linalg.norm(self._goal - self._pos) > 0.6:
                break
        self._t = 0
        return self._obs(), {"is_success": False}

    def step(self, action):
        target = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._pos = (self._pos + self.gain * (target - self._pos)).astype(np.float32)
        self._t += 1
        dist = float(np.linalg.norm(self._pos - self._goal))
        success = dist < self.tolerance
        reward = float(success) if self.sparse else -dist + (10.0 if success else 0.0)
        truncated = self._t >= self.max_steps and not success
        return self._obs(), reward, success, truncated, {"is_success": success}

    def expert_action(self) -> np.ndarray:
        """The scripted demonstrator: command the goal."""
        return self._goal.copy()


def register() -> None:
    if "chunkbot/PointReach-v0" not in gym.registry:
        gym.register("chunkbot/PointReach-v0", entry_point=PointReachEnv)
    if "chunkbot/PointReachSparse-v0" not in gym.registry:
        gym.register("chunkbot/PointReachSparse-v0", entry_point=PointReachEnv,
                     kwargs={"max_steps": 60, "gain": 0.2, "tolerance": 0.05, "sparse": True})
