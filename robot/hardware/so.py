"""SO-100 / SO-101 (Feetech STS3215): the follower arm and the leader arm.

LeRobot's own drivers with chunkbot's `ServoDevice` mixed in (`robot.hardware.device`): same
settings and defaults as LeRobot's configs, plus chunkbot's bus options (`BusOptions`). LeRobot
0.6.1 drives SO-100 and SO-101 with one class; chunkbot keeps the two types apart, so datasets and
exported policies record which arm they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lerobot.robots.so_follower import SOFollower as LeRobotSOFollower
from lerobot.robots.so_follower import SOFollowerRobotConfig as LeRobotSOFollowerConfig
from lerobot.teleoperators.so_leader import SOLeader as LeRobotSOLeader
from lerobot.teleoperators.so_leader import SOLeaderTeleopConfig as LeRobotSOLeaderConfig

from robot.config import RobotConfig, TeleoperatorConfig
from robot.hardware.bus import FeetechServoBus
from robot.hardware.device import BusOptions, ServoArm, ServoLeader


@dataclass(kw_only=True)
class SOFollowerConfig(RobotConfig, BusOptions, LeRobotSOFollowerConfig):
    """LeRobot's `num_read_retries` and chunkbot's `read_retries` both count extra read tries: the larger wins."""


@RobotConfig.register_subclass("so100_follower")
@dataclass(kw_only=True)
class SO100FollowerConfig(SOFollowerConfig):
    def build(self) -> "SO100Follower":
        return SO100Follower(self)


@RobotConfig.register_subclass("so101_follower")
@dataclass(kw_only=True)
class SO101FollowerConfig(SOFollowerConfig):
    def build(self) -> "SO101Follower":
        return SO101Follower(self)


class SO100Follower(ServoArm, LeRobotSOFollower):
    config_class = SO100FollowerConfig
    name = "so100_follower"
    bus_class = FeetechServoBus


class SO101Follower(SO100Follower):
    config_class = SO101FollowerConfig
    name = "so101_follower"


@dataclass(kw_only=True)
class SOLeaderConfig(TeleoperatorConfig, BusOptions, LeRobotSOLeaderConfig):
    """LeRobot's `num_read_retries` and chunkbot's `read_retries` both count extra read tries: the larger wins."""


@TeleoperatorConfig.register_subclass("so100_leader")
@dataclass(kw_only=True)
class SO100LeaderConfig(SOLeaderConfig):
    def build(self, robot: Any = None) -> "SO100Leader":
        return SO100Leader(self)


@TeleoperatorConfig.register_subclass("so101_leader")
@dataclass(kw_only=True)
class SO101LeaderConfig(SOLeaderConfig):
    def build(self, robot: Any = None) -> "SO101Leader":
        return SO101Leader(self)


class SO100Leader(ServoLeader, LeRobotSOLeader):
    config_class = SO100LeaderConfig
    name = "so100_leader"
    bus_class = FeetechServoBus


class SO101Leader(SO100Leader):
    config_class = SO101LeaderConfig
    name = "so101_leader"
