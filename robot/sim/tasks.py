"""Gymnasium environments over `SimRobot`: reach, lift and pick-and-place for SO-101 and Koch.

The env is a thin layer: one `step` = one `SimRobot.send_action` (one 1/fps control period of
physics sub-steps), observations are the robot's policy frame (robot.features.to_policy_frame:
`observation.state` float32 + `observation.images.<cam>` uint8), actions are absolute joint
targets in robot units. Success terminates the episode; the time limit truncates it (gymnasium's
TimeLimit, set at registration). Registered ids (on `import robot.sim`):

    chunkbot/SO101Reach-v0  chunkbot/SO101Lift-v0  chunkbot/SO101PickPlace-v0     (100 / 150 / 300 steps)
    chunkbot/KochReach-v0   chunkbot/KochLift-v0   chunkbot/KochPickPlace-v0

    env = gymnasium.make("chunkbot/SO101Lift-v0", reward_type="dense", cameras=["front"])

Keyword arguments (all optional): obs_mode ("state" | "pixels"), reward_type ("sparse" | "dense" |
"step_cost"), cameras, image_height, image_width, fps, physics_timestep, use_degrees,
start_joint_noise, state_features ("privileged" | "joints" | "positions"), randomize (domain
randomisation), render_mode.

    env = gymnasium.make("chunkbot/SO101Lift-v0", obs_mode="pixels", image_height=64, image_width=64)

`obs_mode="pixels"` observes what a real `so101_follower` (`koch_follower`) with cameras `front` and
`wrist` gives: `observation.state` = the six joint positions (LeRobot's names and units) and
`observation.images.front` / `observation.images.wrist` (H, W, 3) uint8; nothing privileged.
`env.unwrapped.robot` is the SimRobot (privileged state, FK); `info["is_success"]` every step.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from robot.features import IMAGE_PREFIX, STATE_KEY, state_names, to_policy_frame
from robot.interface import ACTION_NAMES
from robot.sim.robot import SimKochConfig, SimRobot, SimSO101Config
from robot.sim.task_spec import TASKS

# sparse: 1 on success (which ends the episode), else 0; dense: the task's shaped progress in [0, 1];
# step_cost: dense - 1, so every step short of success costs and success (0) is the best a step can
# pay (OGBench's single-task convention): ending an episode by succeeding is always worth it
REWARD_TYPES = ("sparse", "dense", "step_cost")
_ARM_CONFIGS = {"so101": SimSO101Config, "koch": SimKochConfig}


class SimArmEnv(gym.Env):
    """One simulated arm doing one task, as a gymnasium env."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, arm: str = "so101", task: str = "lift", reward_type: str = "sparse",
                 cameras: Sequence[str] = (), image_height: int = 96, image_width: int = 96,
                 fps: int = 30, physics_timestep: float = 0.002, use_degrees: bool | None = None,
                 start_joint_noise: float = 0.02, state_features: str = "privileged",
                 randomize: bool = False, render_mode: str | None = None, obs_mode: str = "state"):
        if arm not in _ARM_CONFIGS:
            raise ValueError(f"unknown sim arm {arm!r}; known arms: {', '.join(_ARM_CONFIGS)}")
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"unknown reward_type {reward_type!r}; use one of {REWARD_TYPES}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unsupported render_mode {render_mode!r}; use None or 'rgb_array'")
        config_cls = _ARM_CONFIGS[arm]
        kwargs: dict[str, Any] = dict(task=task, cameras=list(cameras), image_height=image_height,
                                      image_width=image_width, fps=fps, physics_timestep=physics_timestep,
                                      start_joint_noise=start_joint_noise, state_features=state_features,
                                      randomize=randomize, obs_mode=obs_mode)
        if use_degrees is not None:
            kwargs["use_degrees"] = use_degrees
        self.robot: SimRobot = config_cls(**kwargs).build()
        self.robot.connect()
        self.reward_type = reward_type
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": fps}

        features = self.robot.observation_features
        spaces: dict[str, gym.Space] = {
            STATE_KEY: gym.spaces.Box(-np.inf, np.inf, (len(state_names(features)),), dtype=np.float32)
        }
        for cam in self.robot.config.cameras:
            spaces[IMAGE_PREFIX + cam] = gym.spaces.Box(0, 255, (image_height, image_width, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(self.robot.action_low.astype(np.float32),
                                           self.robot.action_high.astype(np.float32), dtype=np.float32)

    @property
    def action_names(self) -> tuple[str, ...]:
        """Names of the action entries, in order (`<motor>.pos`)."""
        return ACTION_NAMES

    @property
    def state_names(self) -> list[str]:
        """Names of the `observation.state` entries, in order."""
        return state_names(self.robot.observation_features)

    def _observation(self) -> dict[str, np.ndarray]:
        return to_policy_frame(self.robot.get_observation(), self.robot.observation_features)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # the episode's randomness comes from the env's seeded generator, so reset(seed=s)
        # reproduces an episode and later resets keep drawing fresh ones
        observation = self.robot.reset(int(self.np_random.integers(2**31 - 1)))
        frame = to_policy_frame(observation, self.robot.observation_features)
        return frame, {"is_success": self.robot.is_success()}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (len(ACTION_NAMES),):
            raise ValueError(f"action must have {len(ACTION_NAMES)} joint targets {list(ACTION_NAMES)}, "
                             f"got shape {action.shape}")
        self.robot.send_action({n: float(v) for n, v in zip(ACTION_NAMES, action)})
        success = self.robot.is_success()
        if self.reward_type == "sparse":
            reward = float(success)
        else:
            reward = float(self.robot.dense_reward()) - (1.0 if self.reward_type == "step_cost" else 0.0)
        return self._observation(), reward, success, False, {"is_success": success}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.robot.arm.render("front", 240, 320)

    def close(self) -> None:
        if self.robot.is_connected:
            self.robot.disconnect()


ENV_IDS: dict[str, tuple[str, str]] = {}
for _arm, _prefix in (("so101", "SO101"), ("koch", "Koch")):
    for _task, _suffix in (("reach", "Reach"), ("lift", "Lift"), ("pick_place", "PickPlace")):
        ENV_IDS[f"chunkbot/{_prefix}{_suffix}-v0"] = (_arm, _task)


def register_envs() -> None:
    """Register the chunkbot sim envs with gymnasium (idempotent)."""
    for env_id, (arm, task) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="robot.sim.tasks:SimArmEnv",
                         max_episode_steps=TASKS[task].max_episode_steps,
                         kwargs={"arm": arm, "task": task})
