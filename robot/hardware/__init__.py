"""Real arms: LeRobot's Koch and SO-100/SO-101 drivers, subclassed with what a robot loop needs.

    koch.py, so.py   one config and one class per arm type, each a subclass of LeRobot's
    device.py        ServoDevice: connect without prompts, clear errors, one transaction at a time,
                     torque_off / hold / joint_limits for the safety layer
    bus.py           LeRobot's buses with read retries, servo health and torque helpers
    servo_status.py  the status byte of every reply (the one reach below LeRobot)

Importing this package registers the types `koch_follower`, `so100_follower`, `so101_follower`,
`koch_leader`, `so100_leader`, `so101_leader` (and loads LeRobot, hence torch).
"""

import lerobot.cameras.opencv  # noqa: F401  (registers the --robot.cameras type "opencv" with draccus)

from robot.hardware.device import FIND_PORT_HINT, BusOptions, ServoArm, ServoDevice, ServoLeader, set_low_latency
from robot.hardware.koch import KochFollower, KochFollowerConfig, KochLeader, KochLeaderConfig
from robot.hardware.so import (
    SO100Follower,
    SO100FollowerConfig,
    SO100Leader,
    SO100LeaderConfig,
    SO101Follower,
    SO101FollowerConfig,
    SO101Leader,
    SO101LeaderConfig,
)
from robot.interface import ServoBusError, ServoFaultError

__all__ = [
    "FIND_PORT_HINT",
    "BusOptions",
    "KochFollower",
    "KochFollowerConfig",
    "KochLeader",
    "KochLeaderConfig",
    "SO100Follower",
    "SO100FollowerConfig",
    "SO100Leader",
    "SO100LeaderConfig",
    "SO101Follower",
    "SO101FollowerConfig",
    "SO101Leader",
    "SO101LeaderConfig",
    "ServoArm",
    "ServoBusError",
    "ServoDevice",
    "ServoFaultError",
    "ServoLeader",
    "set_low_latency",
]
