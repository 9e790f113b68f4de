"""Joint limits in robot units, derived from a calibration the way LeRobot normalises positions.

LeRobot 0.6.1 (`SerialMotorsBus._normalize`, all four arms use 4096-count encoders):
- RANGE_M100_100: raw in [range_min, range_max] maps linearly onto [-100, 100] (drive_mode
  negates, which leaves the interval unchanged);
- RANGE_0_100 (every gripper): onto [0, 100];
- DEGREES: (raw - mid) * 360 / 4095 with mid = (range_min + range_max) / 2, not clipped; the servo
  itself is confined to [range_min, range_max] (written as its Min/Max_Position_Limit), so the
  reachable interval is +-(range_max - range_min) / 2 * 360 / 4095 degrees.

Which mode each joint uses: body joints in DEGREES when `use_degrees` (SO arms default True, Koch
follower default False), else RANGE_M100_100; the Koch leader is always RANGE_M100_100; the
gripper is always RANGE_0_100.
"""

from __future__ import annotations

from lerobot.motors import MotorCalibration, MotorNormMode

from robot.interface import MOTOR_NAMES

RESOLUTION = 4096  # XL330, XL430 and STS3215 alike
GRIPPER = "gripper"

_KNOWN_TYPES = (
    "koch_follower", "koch_leader", "so100_follower", "so101_follower", "so100_leader", "so101_leader",
)


def norm_modes(robot_type: str, use_degrees: bool) -> dict[str, MotorNormMode]:
    """The normalisation LeRobot applies to each motor of this arm type."""
    if robot_type not in _KNOWN_TYPES:
        raise ValueError(f"unknown arm type {robot_type!r}; known: {', '.join(_KNOWN_TYPES)}")
    degrees = use_degrees and robot_type != "koch_leader"  # KochLeader has no degrees option
    body = MotorNormMode.DEGREES if degrees else MotorNormMode.RANGE_M100_100
    return {m: (MotorNormMode.RANGE_0_100 if m == GRIPPER else body) for m in MOTOR_NAMES}


def joint_limits(
    robot_type: str, calibration: dict[str, MotorCalibration], use_degrees: bool
) -> dict[str, tuple[float, float]]:
    """`{"<motor>.pos": (lo, hi)}` in the units `get_observation` / `send_action` use."""
    limits: dict[str, tuple[float, float]] = {}
    for motor, mode in norm_modes(robot_type, use_degrees).items():
        if motor not in calibration:
            raise KeyError(f"calibration has no entry for {motor!r} (has {sorted(calibration)})")
        cal = calibration[motor]
        if mode is MotorNormMode.RANGE_0_100:
            lo, hi = 0.0, 100.0
        elif mode is MotorNormMode.RANGE_M100_100:
            lo, hi = -100.0, 100.0
        else:
            half = (cal.range_max - cal.range_min) / 2 * 360.0 / (RESOLUTION - 1)
            lo, hi = -half, half
        limits[f"{motor}.pos"] = (lo, hi)
    return limits
