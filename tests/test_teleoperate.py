"""tools.teleoperate: a leader arm moves the follower (LeRobot drivers on emulated Dynamixel buses),
and every action passes the safety layer (rate cap, easing in from far away)."""

from __future__ import annotations

import numpy as np
import pytest
from lerobot.motors import MotorCalibration

from calibration import save_calibration
from emulators import KOCH_LEADER_MODELS, koch_bus
from robot.config import TeleoperatorConfig, robot_config_for
from robot.interface import MOTOR_NAMES
from robot.safety import SafetyConfig
from tools.teleoperate import TeleoperateConfig, teleoperate


def _calibration() -> dict[str, MotorCalibration]:
    return {m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
            for i, m in enumerate(MOTOR_NAMES)}


@pytest.fixture
def koch_pair(tmp_path):
    save_calibration(_calibration(), tmp_path / "follower.json")
    save_calibration(_calibration(), tmp_path / "leader.json")
    with koch_bus(max_speed=20_000.0) as follower_bus, koch_bus(KOCH_LEADER_MODELS) as leader_bus:
        yield follower_bus, leader_bus, tmp_path


def _config(follower_bus, leader_bus, cal_dir, **safety) -> TeleoperateConfig:
    return TeleoperateConfig(
        robot=robot_config_for("koch_follower", port=follower_bus.port, id="follower", calibration_dir=cal_dir),
        teleop=TeleoperatorConfig.get_choice_class("koch_leader")(port=leader_bus.port, id="leader",
                                                                   calibration_dir=cal_dir),
        fps=50.0, duration_s=1.5, safety=SafetyConfig(**safety),
    )


def _follower_goals(bus) -> np.ndarray:
    return np.array([bus.servos[i].goal_position() for i in range(1, 6)], dtype=float)


def test_the_leader_moves_the_follower(koch_pair):
    follower_bus, leader_bus, cal_dir = koch_pair
    # leader body joints at raw 2500 -> +50 in Koch's [-100, 100] range -> the follower's raw 2500
    leader_bus.set_present_positions({1: 2500, 2: 2500, 3: 2500, 4: 2500, 5: 2500})
    steps = teleoperate(_config(follower_bus, leader_bus, cal_dir, max_delta_per_step=10.0, max_start_jump=1e6))
    assert steps >= 30
    np.testing.assert_allclose(_follower_goals(follower_bus), [2500, 2500, 2500, 2500, 2500], atol=15)


def test_a_far_leader_is_approached_at_the_rate_cap_not_in_one_jump(koch_pair):
    follower_bus, leader_bus, cal_dir = koch_pair
    leader_bus.set_present_positions({1: 3000, 2: 2000, 3: 2000, 4: 2000, 5: 2000})  # pan +100, far away
    cfg = _config(follower_bus, leader_bus, cal_dir, max_delta_per_step=1.0)
    cfg.duration_s = 0.2  # ~10 periods: ~10 of the ~95 units the pan has to travel
    start = follower_bus.servos[1].present_position()
    steps = teleoperate(cfg)
    moved = follower_bus.servos[1].goal_position() - start
    # 1 unit = 10 raw counts over the 1000..3000 range; at most 1 unit per period, and it did move
    assert 0 < moved <= 10 * steps + 1
    assert moved < 950 - 10  # nowhere near the leader yet
