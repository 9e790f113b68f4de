"""Calibration files: LeRobot-compatible JSON, LeRobot's default location, strict loading, atomic writes."""

from __future__ import annotations

import json

import draccus
import pytest
from lerobot.motors import MotorCalibration
from lerobot.robots.koch_follower import KochFollower
from lerobot.robots.so_follower import SO101Follower
from lerobot.teleoperators.so_leader import SO101Leader
from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, ROBOTS, TELEOPERATORS

from calibration import (
    CalibrationError,
    calibration_path,
    load_calibration,
    require_calibration,
    save_calibration,
)
from robot.interface import MOTOR_NAMES, RobotError


def _calibration() -> dict[str, MotorCalibration]:
    return {
        m: MotorCalibration(id=i + 1, drive_mode=int(m == "elbow_flex"), homing_offset=-100 * i,
                            range_min=500 + i, range_max=3500 - i)
        for i, m in enumerate(MOTOR_NAMES)
    }


def test_file_we_write_loads_in_lerobot(tmp_path):
    path = save_calibration(_calibration(), tmp_path / "arm.json")
    with open(path) as f, draccus.config_type("json"):
        loaded = draccus.load(dict[str, MotorCalibration], f)
    assert loaded == _calibration()


def test_file_lerobot_writes_loads_here(tmp_path):
    path = tmp_path / "arm.json"
    with open(path, "w") as f, draccus.config_type("json"):
        draccus.dump(_calibration(), f, indent=4)
    assert load_calibration(path) == _calibration()


def test_default_location_is_lerobots(monkeypatch):
    for var in ("HF_LEROBOT_CALIBRATION", "HF_LEROBOT_HOME", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    assert calibration_path("koch_follower", "a") == HF_LEROBOT_CALIBRATION / ROBOTS / KochFollower.name / "a.json"
    # LeRobot 0.6.1 files SO-100 and SO-101 arms under the shared class name "so_follower"
    assert calibration_path("so101_follower", "a") == HF_LEROBOT_CALIBRATION / ROBOTS / SO101Follower.name / "a.json"
    assert calibration_path("so101_leader", "b") == HF_LEROBOT_CALIBRATION / TELEOPERATORS / SO101Leader.name / "b.json"


def test_default_location_follows_hf_lerobot_calibration(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert calibration_path("so100_follower", "x") == tmp_path / "robots" / "so_follower" / "x.json"


def test_save_replaces_atomically_without_leftovers(tmp_path):
    path = tmp_path / "arm.json"
    path.write_text("old")
    save_calibration(_calibration(), path)
    assert json.loads(path.read_text())["gripper"]["range_max"] == 3495
    assert [p.name for p in tmp_path.iterdir()] == ["arm.json"]


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_calibration(_calibration(), tmp_path / "arm.json")

    def dump_half_then_fail(obj, f, **kwargs):
        f.write('{"shoulder_pan": {')
        raise OSError("disk full")

    monkeypatch.setattr("calibration.files.json.dump", dump_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_calibration(_calibration(), path)
    monkeypatch.undo()
    assert load_calibration(path) == _calibration()
    assert [p.name for p in tmp_path.iterdir()] == ["arm.json"]


@pytest.mark.parametrize(
    "content, says",
    [
        ("{not json", "malformed"),
        ('{"gripper": {"id": 6}}', "missing keys"),
        (json.dumps({m: {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 9, "range_max": 9}
                     for m in MOTOR_NAMES}), "range_min 9 must be below range_max 9"),
        (json.dumps({"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 0,
                                 "range_max": 9}}), "lacks motors"),
    ],
)
def test_malformed_file_raises_calibration_error_naming_the_file(tmp_path, content, says):
    path = tmp_path / "arm.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=says) as err:
        load_calibration(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, RobotError)


def test_missing_calibration_names_the_calibrate_command(tmp_path):
    with pytest.raises(CalibrationError) as err:
        require_calibration("so101_follower", "arm7", tmp_path, port="/dev/ttyACM0")
    message = str(err.value)
    assert str(tmp_path / "arm7.json") in message
    assert "python -m tools.calibrate --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=arm7" in message


def test_missing_leader_calibration_uses_teleop_flags(tmp_path):
    with pytest.raises(CalibrationError, match=r"--teleop.type=koch_leader .*--teleop.id=l1"):
        require_calibration("koch_leader", "l1", tmp_path)


def test_file_from_older_lerobot_layout_is_pointed_out(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    save_calibration(_calibration(), tmp_path / "robots" / "so101_follower" / "arm.json")
    with pytest.raises(CalibrationError, match="older LeRobot release"):
        require_calibration("so101_follower", "arm")
