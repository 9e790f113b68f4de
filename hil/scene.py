"""What an episode is on this robot: how long it may last, how each step is rewarded, and what says it
succeeded.

The sim arm knows its task (time limit, success, a shaped reward); a real arm knows neither, so
its episodes last `episode_time_s` and the person's success key is the reward. With a learned
success reward (`--reward.path`, `hil.reward.LearnedSuccess`) the classifier decides success on either,
in place of the sim's own judgement; a session key pressed on the same step decides it instead (the
keys are read before the reward)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hil.config import HILConfig
from hil.episode import Episode
from hil.reward import LearnedSuccess
from robot.features import state_names
from robot.sim.robot import SimRobot

# how an episode ends when the learned success reward ended it (episodes.jsonl's `end`)
REWARD_MODEL_END = "reward_model"


class _Scene:
    def __init__(self, learned: LearnedSuccess | None) -> None:
        self.learned = learned

    def start_episode(self) -> None:
        if self.learned is not None:
            self.learned.reset()

    def _learned_success(self, ep: Episode, frame: dict[str, np.ndarray]) -> bool:
        """Ask the classifier, unless a key press already ended the episode on this step."""
        if self.learned is None or ep.end:
            return False
        if self.learned.update(frame):
            ep.success, ep.terminated, ep.end = True, True, REWARD_MODEL_END
        return ep.success

    def task_success(self) -> bool | None:
        """The simulator's own judgement of the present state (None on a real arm)."""
        return None


class SimScene(_Scene):
    def __init__(self, cfg: HILConfig, robot: SimRobot, fps: float, learned: LearnedSuccess | None = None) -> None:
        super().__init__(learned)
        self.robot, self.dense = robot, cfg.reward.signal == "dense"
        self.max_steps = robot.task.max_episode_steps
        self.task = cfg.task or robot.config.task
        self.realtime = bool(cfg.realtime)

    def reward(self, ep: Episode, frame: dict[str, np.ndarray]) -> float:
        """This step's reward (the step has run); success ends the episode."""
        if self.learned is not None:
            self._learned_success(ep, frame)
        elif not ep.success and self.robot.is_success():
            ep.success, ep.terminated, ep.end = True, True, "success"
        return float(self.robot.dense_reward()) if self.dense else float(ep.success)

    def task_success(self) -> bool | None:
        return bool(self.robot.is_success())


class ArmScene(_Scene):
    def __init__(self, cfg: HILConfig, robot: Any, fps: float, learned: LearnedSuccess | None = None) -> None:
        super().__init__(learned)
        self.max_steps = int(round(cfg.episode_time_s * fps))
        self.task = cfg.task or "hil"
        self.realtime = True if cfg.realtime is None else cfg.realtime

    def reward(self, ep: Episode, frame: dict[str, np.ndarray]) -> float:
        self._learned_success(ep, frame)
        return 1.0 if ep.success else 0.0     # the person's success key (read before this) or the classifier


def make_scene(cfg: HILConfig, robot: Any, fps: float) -> SimScene | ArmScene:
    learned = LearnedSuccess.load(cfg.reward, state_names(robot.observation_features))
    if isinstance(robot, SimRobot):
        return SimScene(cfg, robot, fps, learned)
    return ArmScene(cfg, robot, fps, learned)
