"""Servo-bus emulators on pseudo-terminals, for testing LeRobot's real drivers without hardware.

    from tests.emulators import koch_bus
    with koch_bus() as bus:            # six X-series servos answering on bus.port (/dev/pts/N)
        robot = KochFollower(KochFollowerConfig(port=bus.port, ...))

Each emulator answers the real packets of `dynamixel_sdk` (Protocol 2.0) or `scservo_sdk`
(Feetech protocol 0) from a responder thread, keeps a control table per servo, moves each shaft
toward its goal while torque is on, and injects faults (silent servo, corrupted reply, delay).
"""

from tests.emulators.dynamixel import (
    KOCH_FOLLOWER_MODELS,
    KOCH_LEADER_MODELS,
    DynamixelBusEmulator,
    DynamixelXServo,
    koch_bus,
)
from tests.emulators.feetech import FeetechBusEmulator, FeetechSTSServo, so_bus
from tests.emulators.pty import PtyBusEmulator
from tests.emulators.servo import Servo

__all__ = [
    "KOCH_FOLLOWER_MODELS",
    "KOCH_LEADER_MODELS",
    "DynamixelBusEmulator",
    "DynamixelXServo",
    "FeetechBusEmulator",
    "FeetechSTSServo",
    "PtyBusEmulator",
    "Servo",
    "koch_bus",
    "so_bus",
]
