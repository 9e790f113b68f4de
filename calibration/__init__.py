"""Calibration files (LeRobot-compatible JSON) and the joint limits they imply.

Depends only on `contract`; importing it loads neither LeRobot nor torch."""

from calibration.files import (
    CalibrationError,
    calibrate_command,
    calibration_path,
    calibration_root,
    default_calibration_dir,
    load_calibration,
    require_calibration,
    save_calibration,
)
from calibration.limits import joint_limits, norm_modes

__all__ = [
    "CalibrationError",
    "calibrate_command",
    "calibration_path",
    "calibration_root",
    "default_calibration_dir",
    "joint_limits",
    "load_calibration",
    "norm_modes",
    "require_calibration",
    "save_calibration",
]
