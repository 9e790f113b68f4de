"""One teleoperation control period through the safety layer: leader action -> follower, safely.

Recording and teleoperation on a real arm send a person's (or a leader arm's) actions to the
servos; like the policy's chunks, they pass the safety layer first: joint limits, the per-step
rate cap, easing in when the leader starts far from the follower, NaN hold, and bus-fault handling
(retry, hold, then torque off with a clear error).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot.interface import Robot, Teleoperator, action_dict_to_array
from robot.safety import SafetyConfig, SafetyLayer


class SafeTeleopStep:
    """Call once per control period: reads the follower, filters the teleoperator's action, sends it."""

    def __init__(self, robot: Robot, teleop: Teleoperator, safety: SafetyConfig | None = None) -> None:
        self.robot = robot
        self.teleop = teleop
        self.action_names = tuple(robot.action_features)  # any LeRobot robot's, not only the six-joint arms'
        self.safety = SafetyLayer(robot, self.action_names, safety or SafetyConfig())
        self.step = 0
        self._new_plan = True

    def start_episode(self) -> None:
        """The next action is eased in if the leader is far from where the follower now is."""
        self._new_plan = True

    def __call__(self) -> tuple[dict[str, Any] | None, np.ndarray | None]:
        """(observation read this period or None on a bus fault, action actually sent or None when holding)."""
        k = self.step
        observation = self.safety.read_observation(k)  # raises BusFaultError once the bus is gone
        present = target = None
        if observation is not None:
            present = self.safety.present_position(observation)
            target = action_dict_to_array(self.teleop.get_action(), self.action_names).astype(np.float64)
        safe, _ = self.safety.filter(target, present, k, new_plan=self._new_plan and target is not None)
        if target is not None:
            self._new_plan = False
        sent = safe if safe is not None and self.safety.send(safe, k) else None
        self.safety.end_step(k)
        self.step += 1
        return observation, sent

    def interrupt(self) -> None:
        """Ctrl-C: hold where the arm is (and disable torque if the config says so)."""
        self.safety.on_interrupt(self.step)
