"""A stand-in camera: LeRobot's `Camera` interface serving generated frames, for driving a real arm
type (`so101_follower`, `koch_follower`) with cameras where no camera is attached.

Registered with LeRobot's camera registry as `stand_in`, so a command line configures it like a real
one:

    --robot.cameras='{front: {type: stand_in, width: 64, height: 64, fps: 30}, wrist: {type: stand_in, width: 64, height: 64, fps: 30}}'

(the registration happens when this module is imported: tests import it before parsing). Each read
returns a fresh (height, width, 3) uint8 RGB frame: a seeded noise pattern shifted by one pixel per
read, so successive frames differ as a real scene's do. LeRobot builds a plugin camera from its
config's class name minus "Config", looked up in this module's package (`emulators.StandInCamera`).
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from lerobot.cameras.camera import Camera
from lerobot.cameras.configs import CameraConfig


@CameraConfig.register_subclass("stand_in")
@dataclass(kw_only=True)
class StandInCameraConfig(CameraConfig):
    fps: int | None = 30
    width: int | None = 64
    height: int | None = 64
    seed: int = 0


class StandInCamera(Camera):
    """Frames from a seeded pattern, with LeRobot's synchronous and latest-frame reads."""

    def __init__(self, config: StandInCameraConfig) -> None:
        super().__init__(config)
        if not config.width or not config.height or config.width <= 0 or config.height <= 0:
            raise ValueError(f"a stand_in camera needs a positive width and height, got {config.width}x{config.height}")
        self.config = config
        self._pattern = np.random.default_rng(config.seed).integers(0, 256, (config.height, config.width * 2, 3),
                                                                     dtype=np.uint8)
        self._reads = 0
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        return []

    def connect(self, warmup: bool = True) -> None:
        self._connected = True

    def read(self) -> np.ndarray:
        if not self._connected:
            from lerobot.utils.errors import DeviceNotConnectedError

            raise DeviceNotConnectedError(f"{self} is not connected")
        shift = self._reads % self.config.width
        self._reads += 1
        return self._pattern[:, shift:shift + self.config.width].copy()

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        return self.read()

    def read_latest(self, max_age_ms: int = 500) -> np.ndarray:
        return self.read()

    def disconnect(self) -> None:
        self._connected = False

    def __str__(self) -> str:
        return f"StandInCamera({self.config.width}x{self.config.height})"
