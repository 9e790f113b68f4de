"""Calibrate a real arm (LeRobot's interactive procedure) and write its LeRobot-compatible file.

    python -m tools.calibrate --robot.type=koch_follower --robot.port=/dev/ttyUSB0 --robot.id=my_koch
    python -m tools.calibrate --teleop.type=so101_leader --teleop.port=/dev/ttyACM0 --teleop.id=my_leader

What `lerobot-calibrate` does, through our adapters: connect without touching calibration, run the
driver's own `calibrate()` (move the arm to the middle of its range, press Enter, move every joint
through its range, press Enter), write the file atomically to LeRobot's location (or
`--robot.calibration_dir`), disconnect. If a file already exists LeRobot first asks whether to
reuse it (Enter) or recalibrate ('c'). The file works in LeRobot as is, and vice versa.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from contract import real_arm_types
from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, register_all
from tools._common import parse_config, user_errors

register_all()
log = logging.getLogger("tools.calibrate")


@dataclass
class CalibrateConfig:
    # A follower arm to calibrate: --robot.type=so101_follower --robot.port=... --robot.id=...
    robot: RobotConfig | None = None
    # Or a leader arm: --teleop.type=so101_leader --teleop.port=... --teleop.id=...
    teleop: TeleoperatorConfig | None = None

    def __post_init__(self) -> None:
        if (self.robot is None) == (self.teleop is None):
            raise ValueError("give exactly one of --robot.type=... or --teleop.type=...")
        device = self.robot if self.robot is not None else self.teleop
        if device.type not in real_arm_types():
            raise ValueError(f"{device.type!r} has no calibration; real arm types: {', '.join(real_arm_types())}")


def calibrate(cfg: CalibrateConfig) -> str:
    """Run the interactive calibration; returns the path of the file written."""
    device = make_robot(cfg.robot) if cfg.robot is not None else make_teleoperator(cfg.teleop)
    device.connect(calibrate=False)
    try:
        device.calibrate()
    finally:
        device.disconnect()
    return str(device.calibration_path)


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_config(CalibrateConfig, args, tool="calibrate", doc=__doc__)
    device = cfg.robot if cfg.robot is not None else cfg.teleop
    log.info("calibrating %s %r on %s: follow the prompts", device.type, device.id, getattr(device, "port", "?"))
    try:
        with user_errors():
            path = calibrate(cfg)
    except (EOFError, KeyboardInterrupt):
        raise SystemExit("calibration aborted; no file was written") from None
    print(f"Calibration saved to {path}")


if __name__ == "__main__":
    main()
