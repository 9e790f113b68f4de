"""Joint limits agree with what LeRobot's own normalisation reports at the calibrated range ends."""

from __future__ import annotations

import pytest
from lerobot.motors import Motor, MotorCalibration
from lerobot.motors.feetech import FeetechMotorsBus

from calibration import joint_limits, norm_modes
from robot.interface import ACTION_NAMES, MOTOR_NAMES


def _calibration() -> dict[str, MotorCalibration]:
    return {
        m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000 + 10 * i, range_max=3000 + 50 * i)
        for i, m in enumerate(MOTOR_NAMES)
    }


@pytest.mark.parametrize("use_degrees", [True, False])
def test_limits_equal_lerobot_normalisation_of_range_ends(use_degrees):
    cal = _calibration()
    modes = norm_modes("so101_follower", use_degrees)
    bus = FeetechMotorsBus("/dev/null", {m: Motor(cal[m].id, "sts3215", modes[m]) for m in MOTOR_NAMES}, cal)
    lows = bus._normalize({cal[m].id: cal[m].range_min for m in MOTOR_NAMES})
    highs = bus._normalize({cal[m].id: cal[m].range_max for m in MOTOR_NAMES})
    limits = joint_limits("so101_follower", cal, use_degrees)
    for m in MOTOR_NAMES:
        assert limits[f"{m}.pos"] == pytest.approx((lows[cal[m].id], highs[cal[m].id]))


def test_keys_are_the_action_names():
    assert tuple(joint_limits("koch_follower", _calibration(), False)) == ACTION_NAMES


def test_gripper_is_0_to_100_even_in_degrees():
    assert joint_limits("so100_follower", _calibration(), True)["gripper.pos"] == (0.0, 100.0)


def test_koch_leader_ignores_use_degrees():
    limits = joint_limits("koch_leader", _calibration(), True)
    assert limits["shoulder_pan.pos"] == (-100.0, 100.0)


def test_full_turn_joint_spans_plus_minus_180_degrees():
    cal = _calibration()
    cal["wrist_roll"] = MotorCalibration(id=5, drive_mode=0, homing_offset=0, range_min=0, range_max=4095)
    assert joint_limits("so101_follower", cal, True)["wrist_roll.pos"] == pytest.approx((-180.0, 180.0))


def test_unknown_arm_type_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown arm type 'ur5'"):
        joint_limits("ur5", _calibration(), True)
