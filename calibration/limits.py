"""Joint limits in robot units, derived from a calibration the way LeRobot normalises positions.

LeRobot 0.6.1 (`SerialMotorsBus._normalize`, all four arms use 4096-count encoders):
- RANGE_M100_100: raw in [range_min, range_max] maps linearly onto [-100, 100] (drive_mode
  negates, which leaves the interval unchanged);
- RANGE_0_100 (every gripper): onto [0, 100];
- DEGREES: (raw - mid) * 360 / 4095 with mid = (range_min + range_max) / 2, not clipped; the servo
  itself is confined to [range_min, range_max] (written as its Min/Max_Position_Limit), so the
  reachable interval is +-(range_max - range_min) / 2 * 360 / 4095 degrees.

Which mode each joint uses is the arm table's (`contract.arms.ArmType.units`): body joints in
DEGREES when `use_degrees` and the driver has a degrees mode, else RANGE_M100_100; the gripper
always RANGE_0_100.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contract import position_feature, real_arm_types
from contract.arms import ARM_TYPES, DEGREES, RANGE_0_100, RANGE_M100_100

if TYPE_CHECKING:
    from lerobot.motors import MotorCalibration

RESOLUTION = 4096  # XL330, XL430 and STS3215 alike


def _units(robot_type: str, use_degrees: bool) -> dict[str, str]:
    if robot_type not in real_arm_types():
        raise ValueError(f"unknown arm type {robot_type!r}; known: {', '.join(real_arm_types())}")
    return ARM_TYPES[robot_type].units(use_degrees)


def norm_modes(robot_type: str, use_degrees: bool) -> dict[str, Any]:
    """The `lerobot.motors.MotorNormMode` LeRobot applies to each motor of this arm type."""
    from lerobot.motors import MotorNormMode

    return {m: MotorNormMode(unit) for m, unit in _units(robot_type, use_degrees).items()}


def joint_limits(
    robot_type: str, calibration: dict[str, MotorCalibration], use_degrees: bool
) -> dict[str, tuple[float, float]]:
    """`{"<motor>.pos": (lo, hi)}` in the units `get_observation` / `send_action` use."""
    limits: dict[str, tuple[float, float]] = {}
    for motor, unit in _units(robot_type, use_degrees).items():
        if motor not in calibration:
            raise KeyError(f"calibration has no entry for {motor!r} (has {sorted(calibration)})")
        cal = calibration[motor]
        if unit == RANGE_0_100:
            lo, hi = 0.0, 100.0
        elif unit == RANGE_M100_100:
            lo, hi = -100.0, 100.0
        else:
            assert unit == DEGREES, unit
            half = (cal.range_max - cal.range_min) / 2 * 360.0 / (RESOLUTION - 1)
            lo, hi = -half, half
        limits[position_feature(motor)] = (lo, hi)
    return limits
