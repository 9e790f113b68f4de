"""Koch v1.1 (Dynamixel XL430 / XL330): the follower arm and the leader arm.

LeRobot's own drivers with chunkbot's `ServoDevice` mixed in (`robot.hardware.device`): same
settings and defaults as LeRobot's configs, plus chunkbot's bus options (`BusOptions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lerobot.robots.koch_follower import KochFollower as LeRobotKochFollower
from lerobot.robots.koch_follower import KochFollowerConfig as LeRobotKochFollowerConfig
from lerobot.teleoperators.koch_leader import KochLeader as LeRobotKochLeader
from lerobot.teleoperators.koch_leader import KochLeaderConfig as LeRobotKochLeaderConfig

from robot.config import RobotConfig, TeleoperatorConfig
from robot.hardware.bus import DynamixelServoBus
from robot.hardware.device import BusOptions, ServoArm, ServoLeader


@RobotConfig.register_subclass("koch_follower")
@dataclass(kw_only=True)
class KochFollowerConfig(RobotConfig, BusOptions, LeRobotKochFollowerConfig):
    def build(self) -> "KochFollower":
        return KochFollower(self)


class KochFollower(ServoArm, LeRobotKochFollower):
    config_class = KochFollowerConfig
    name = "koch_follower"
    bus_class = DynamixelServoBus


@TeleoperatorConfig.register_subclass("koch_leader")
@dataclass(kw_only=True)
class KochLeaderConfig(TeleoperatorConfig, BusOptions, LeRobotKochLeaderConfig):
    def build(self, robot: Any = None) -> "KochLeader":
        return KochLeader(self)


class KochLeader(ServoLeader, LeRobotKochLeader):
    config_class = KochLeaderConfig
    name = "koch_leader"
    bus_class = DynamixelServoBus

    def send_feedback(self, feedback: dict[str, Any]) -> None:
        """Nothing to do: LeRobot's Koch leader has no force feedback (its send_feedback raises)."""
