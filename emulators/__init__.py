"""Servo-bus emulators on pseudo-terminals, for testing and benchmarking LeRobot's real drivers
without hardware.

A package of its own beside `tests/` and `benchmarks/` because both use it (the tests for behaviour,
`benchmarks/bench_bus.py` for timing) and neither should import the other; like them it is not
installed with chunkbot. `emulators.first_order_arm` is the physics-free arm the executor's tests and
benchmark drive.

    from emulators import koch_bus
    with koch_bus() as bus:            # six X-series servos answering on bus.port (/dev/pts/N)
        robot = KochFollower(KochFollowerConfig(port=bus.port, ...))

Each emulator answers the real packets of `dynamixel_sdk` (Protocol 2.0) or `scservo_sdk`
(Feetech protocol 0) from a responder thread, keeps a control table per servo, moves each shaft
toward its goal while torque is on, and injects faults: a silent servo, corrupted replies (the next
n, or one in every n), late replies, and hardware errors in the status byte (overload, overheating, ...).

`emulators.camera` is a stand-in camera (LeRobot's `Camera` interface, type `stand_in`) for the real
arm types' `--robot.cameras`.
"""

from emulators.dynamixel import (
    KOCH_FOLLOWER_MODELS,
    KOCH_LEADER_MODELS,
    DynamixelBusEmulator,
    DynamixelXServo,
    koch_bus,
)
from emulators.feetech import FeetechBusEmulator, FeetechSTSServo, so_bus
from emulators.pty import PtyBusEmulator
from emulators.servo import Servo


def __getattr__(name: str):
    # LeRobot finds a plugin camera's class in its config's package (`make_device_from_device_class`);
    # imported lazily, so the servo emulators stay free of LeRobot's camera stack
    if name in ("StandInCamera", "StandInCameraConfig"):
        from emulators import camera

        return getattr(camera, name)
    raise AttributeError(f"module 'emulators' has no attribute {name!r}")


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
