"""What an episode is on this robot: how long it may last and how each step is rewarded.

The sim arm knows its task (time limit, success, a shaped reward); a real arm knows neither, so
its episodes last `episode_time_s` and the person's success key is the reward."""

from __future__ import annotations

from typing import Any

from hil.config import HILConfig
from hil.episode import Episode
from robot.sim.robot import SimRobot


class SimScene:
    def __init__(self, cfg: HILConfig, robot: SimRobot, fps: float) -> None:
        self.robot, self.dense = robot, cfg.reward == "dense"
        self.max_steps = robot.task.max_episode_steps
        self.task = cfg.task or robot.config.task
        self.realtime = bool(cfg.realtime)

    def reward(self, ep: Episode) -> float:
        """This step's reward (the step has run); success ends the episode."""
        if not ep.success and self.robot.is_success():
            ep.success, ep.terminated, ep.end = True, True, "success"
        return float(self.robot.dense_reward()) if self.dense else float(ep.success)


class ArmScene:
    def __init__(self, cfg: HILConfig, robot: Any, fps: float) -> None:
        self.max_steps = int(round(cfg.episode_time_s * fps))
        self.task = cfg.task or "hil"
        self.realtime = True if cfg.realtime is None else cfg.realtime

    def reward(self, ep: Episode) -> float:
        return 1.0 if ep.success else 0.0     # the person's success key, read before this


def make_scene(cfg: HILConfig, robot: Any, fps: float) -> SimScene | ArmScene:
    return SimScene(cfg, robot, fps) if isinstance(robot, SimRobot) else ArmScene(cfg, robot, fps)
