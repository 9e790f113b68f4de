"""The robot and teleoperator interfaces every loop in chunkbot talks to.

They mirror LeRobot's `lerobot.robots.Robot` / `lerobot.teleoperators.Teleoperator` method for
method, so a LeRobot robot, one of our thin adapters over it, and a simulated arm can stand in for
one another anywhere (duck typing: LeRobot's own classes satisfy these without inheriting).

Units follow LeRobot: features named `<motor>.pos`; body joints in degrees (SO arms,
`use_degrees=True`) or in the normalised range [-100, 100] (Koch); the gripper in [0, 100]
(0 = closed, 100 = open); camera images H x W x 3 uint8.
"""

from __future__ import annotations

import abc
from typing import Any

from contract import ACTION_NAMES, MOTOR_NAMES, RobotError

__all__ = ["ACTION_NAMES", "MOTOR_NAMES", "InProcessDevice", "Robot", "RobotError", "ServoBusError", "ServoFaultError",
           "Teleoperator", "action_dict_to_array", "array_to_action_dict"]


class ServoBusError(RobotError):
    """The servo bus failed (a read after its retries, the connect check, torque off).
    `motors` are the servos that did not answer a ping afterwards (empty: all answered)."""

    def __init__(self, message: str, motors: list[str]):
        super().__init__(message)
        self.motors = motors


class ServoFaultError(ServoBusError):
    """A servo answered with a hardware error (overload, overheating, ...): retrying cannot help, the
    loop must stop with torque off and a person must look. `faults`: {motor: [error, ...]}."""

    def __init__(self, message: str, motors: list[str], faults: dict[str, list[str]]):
        super().__init__(message, motors)
        self.faults = faults


class Robot(abc.ABC):
    """A robot arm: observations in, joint targets out (LeRobot's interface)."""

    name: str

    @property
    @abc.abstractmethod
    def observation_features(self) -> dict[str, Any]:
        """`{"<motor>.pos": float, "<camera>": (H, W, 3), ...}` as LeRobot declares them."""

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, Any]:
        """`{"<motor>.pos": float, ...}`."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @abc.abstractmethod
    def connect(self, calibrate: bool = True) -> None: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @abc.abstractmethod
    def get_observation(self) -> dict[str, Any]:
        """Joint positions (floats) and camera frames (H x W x 3 uint8)."""

    @abc.abstractmethod
    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Command joint targets; returns what was actually sent (after any clipping)."""

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:  # pragma: no cover - real arms override
        pass

    def configure(self) -> None:  # pragma: no cover - real arms override
        pass

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()


class Teleoperator(abc.ABC):
    """A source of human (or scripted) actions in the follower's action space."""

    name: str

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, Any]: ...

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @abc.abstractmethod
    def connect(self, calibrate: bool = True) -> None: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @abc.abstractmethod
    def get_action(self) -> dict[str, float]: ...

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:  # pragma: no cover
        pass

    def configure(self) -> None:  # pragma: no cover
        pass

    def send_feedback(self, feedback: dict[str, Any]) -> None:
        pass

    def __enter__(self) -> "Teleoperator":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()


def action_dict_to_array(action: dict[str, float], names: tuple[str, ...] = ACTION_NAMES):
    """Order an action dict as a float32 vector; a missing key is a clear error."""
    import numpy as np

    missing = [n for n in names if n not in action]
    if missing:
        raise KeyError(f"action is missing {missing}; expected keys {list(names)}")
    return np.asarray([float(action[n]) for n in names], dtype=np.float32)


def array_to_action_dict(values, names: tuple[str, ...] = ACTION_NAMES) -> dict[str, float]:
    if len(values) != len(names):
        raise ValueError(f"got {len(values)} action values for {len(names)} joints {list(names)}")
    return {n: float(v) for n, v in zip(names, values)}


class InProcessDevice:
    """For a device with nothing to open (the sim arm, the scripted and keyboard teleoperators):
    `connect` only raises a flag, and its actions are the six joint targets. List it before
    `Robot`/`Teleoperator` among the bases so it fills in their abstract members."""

    _connected: bool = False

    @property
    def action_features(self) -> dict[str, Any]:
        return {n: float for n in ACTION_NAMES}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False
