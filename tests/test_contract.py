"""The contract at the bottom of the import graph: light to import, and its arm table agrees with
LeRobot's own drivers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract import ACTION_NAMES, ARM_TYPES, MOTOR_NAMES, arm_type, real_arm_types

REPO = Path(__file__).resolve().parents[1]


def _modules_loaded_by(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(sorted(m for m in ('torch', 'lerobot', 'numpy', 'robot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return eval(out.stdout.strip().splitlines()[-1])


def test_importing_calibration_loads_neither_torch_nor_lerobot_nor_the_robot_package():
    assert _modules_loaded_by("import calibration") == []


def test_importing_the_contract_loads_nothing_heavy():
    assert _modules_loaded_by("import contract") == []


def test_action_names_are_the_motor_position_features():
    assert ACTION_NAMES == tuple(f"{m}.pos" for m in MOTOR_NAMES)


def test_an_unknown_arm_type_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown arm type 'ur5'.*koch_follower"):
        arm_type("ur5")


def _lerobot_device(name: str, tmp_path: Path):
    """LeRobot 0.6.1's own driver for an arm type (not connected: building it opens no port)."""
    from lerobot.robots.koch_follower import KochFollower, KochFollowerConfig
    from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig
    from lerobot.teleoperators.koch_leader import KochLeader, KochLeaderConfig
    from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig

    drivers = {
        "koch_follower": (KochFollower, KochFollowerConfig),
        "koch_leader": (KochLeader, KochLeaderConfig),
        "so100_follower": (SOFollower, SOFollowerRobotConfig),
        "so101_follower": (SOFollower, SOFollowerRobotConfig),
        "so100_leader": (SOLeader, SOLeaderTeleopConfig),
        "so101_leader": (SOLeader, SOLeaderTeleopConfig),
    }
    driver, config = drivers[name]
    return driver(config(port="/dev/null", calibration_dir=tmp_path))


@pytest.mark.parametrize("name", real_arm_types())
def test_arm_table_matches_lerobots_driver(name, tmp_path):
    arm, device = ARM_TYPES[name], _lerobot_device(name, tmp_path)
    assert tuple(device.bus.motors) == arm.motors
    assert tuple(m.id for m in device.bus.motors.values()) == arm.ids
    assert tuple(m.model for m in device.bus.motors.values()) == arm.models
    assert [m.norm_mode.value for m in device.bus.motors.values()] == list(arm.units(arm.degrees_by_default).values())
    assert device.name == arm.calibration_dir
    assert getattr(device.config, "use_degrees", False) == (arm.degrees_by_default and arm.degrees_option)
