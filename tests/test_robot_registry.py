"""Robot/teleop type registry: clear errors, and a simulated run that never imports LeRobot or torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robot.config import RobotConfig, TeleoperatorConfig, register_all, robot_config_for

REPO = Path(__file__).resolve().parents[1]


def test_unknown_robot_type_names_the_known_types():
    with pytest.raises(ValueError, match="unknown robot type 'sim_ur5'.*koch_follower.*sim_so101"):
        robot_config_for("sim_ur5")


def test_every_documented_type_is_registered():
    register_all()
    assert {"sim_so101", "sim_koch", "koch_follower", "so100_follower", "so101_follower"} <= set(
        RobotConfig.get_known_choices())
    assert {"scripted", "koch_leader", "so100_leader", "so101_leader"} <= set(TeleoperatorConfig.get_known_choices())


def test_a_simulated_run_imports_neither_lerobot_nor_torch():
    code = (
        "import sys; sys.argv = ['record', '--robot.type=sim_koch', '--teleop.type=scripted']\n"
        "import tools.record\n"
        "from robot.config import make_robot, robot_config_for, make_teleoperator, TeleoperatorConfig\n"
        "r = make_robot(robot_config_for('sim_koch')); r.connect()\n"
        "t = make_teleoperator(TeleoperatorConfig.get_choice_class('scripted')(), robot=r)\n"
        "r.send_action(t.get_action())\n"
        "print(sorted(m for m in ('torch', 'lerobot') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_type_on_the_command_line_is_refused_with_the_choices(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tools.record", "--robot.type=sim_ur5",
                          f"--dataset.root={tmp_path / 'd'}"], cwd=REPO, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode != 0
    assert "sim_ur5" in out.stderr and "sim_so101" in out.stderr
