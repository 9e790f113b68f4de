"""tools.calibrate runs LeRobot's interactive calibration (a scripted human here) and writes a file
that LeRobot loads and that our adapters then connect with, without prompting."""

from __future__ import annotations

import builtins

import draccus
import pytest
from lerobot.motors import MotorCalibration

from calibration import load_calibration
from emulators import KOCH_LEADER_MODELS, koch_bus, so_bus
from robot.config import robot_config_for
from robot.hardware import KochFollowerConfig, KochLeaderConfig, SO101LeaderConfig
from robot.interface import MOTOR_NAMES
from tools.calibrate import CalibrateConfig, calibrate, main

MIDDLE, LOW, HIGH = 2100, 1500, 2600
FULL_TURN = {
    "koch_follower": ("shoulder_pan", "wrist_roll"),
    "koch_leader": ("shoulder_pan", "wrist_roll"),
    "so101_leader": ("wrist_roll",),
}


def _scripted_human(monkeypatch, emu):
    """Answers LeRobot's prompts: Enter at mid-range, then sweeps every joint low and high."""
    emu.set_present_positions({i: MIDDLE for i in range(1, 7)})
    monkeypatch.setattr(builtins, "input", lambda *args: "")
    sweeps = iter([{i: LOW for i in range(1, 7)}, {i: HIGH for i in range(1, 7)}])

    def enter_pressed() -> bool:
        try:
            emu.set_present_positions(next(sweeps))
            return False
        except StopIteration:
            return True

    monkeypatch.setattr("lerobot.motors.motors_bus.enter_pressed", enter_pressed)


@pytest.mark.parametrize(
    "device_type, bus, flag, expected_offset",
    [
        ("koch_follower", koch_bus, "robot", 2047 - MIDDLE),  # Dynamixel: present = actual + offset
        ("so101_leader", so_bus, "teleop", MIDDLE - 2047),  # Feetech: present = actual - offset
    ],
)
def test_calibrate_writes_lerobots_half_turn_homing_and_ranges(monkeypatch, tmp_path, device_type, bus, flag, expected_offset):
    with bus() as emu:
        _scripted_human(monkeypatch, emu)
        cfg = draccus.parse(config_class=CalibrateConfig, args=[
            f"--{flag}.type={device_type}", f"--{flag}.port={emu.port}", f"--{flag}.id=arm",
            f"--{flag}.calibration_dir={tmp_path}",
        ])
        path = calibrate(cfg)
    assert path == str(tmp_path / "arm.json")
    calibration = load_calibration(tmp_path / "arm.json")
    for i, motor in enumerate(MOTOR_NAMES):
        # the scripted sweep places the shafts at LOW / HIGH as read after homing
        lo, hi = (0, 4095) if motor in FULL_TURN[device_type] else (LOW, HIGH)
        assert calibration[motor] == MotorCalibration(
            id=i + 1, drive_mode=0, homing_offset=expected_offset, range_min=lo, range_max=hi
        )


def test_koch_leader_calibration_inverts_the_elbow_in_the_servo(monkeypatch, tmp_path):
    with koch_bus(KOCH_LEADER_MODELS) as emu:
        _scripted_human(monkeypatch, emu)
        calibrate(CalibrateConfig(teleop=KochLeaderConfig(port=emu.port, id="leader", calibration_dir=tmp_path)))
        assert emu.servos[3].get_field("Drive_Mode") == 1
    calibration = load_calibration(tmp_path / "leader.json")
    elbow = calibration["elbow_flex"]
    # reversed, the elbow read -2100 at mid-range, so its half-turn offset is 2047 + 2100
    assert (elbow.drive_mode, elbow.homing_offset, elbow.range_min, elbow.range_max) == (1, 2047 + MIDDLE, LOW, HIGH)
    assert calibration["wrist_flex"].drive_mode == 0


def test_calibrated_arm_then_connects_without_prompts(monkeypatch, tmp_path):
    with koch_bus() as emu:
        _scripted_human(monkeypatch, emu)
        calibrate(CalibrateConfig(robot=KochFollowerConfig(port=emu.port, id="arm", calibration_dir=tmp_path)))

        def refuse(*args):
            raise AssertionError("prompted")

        monkeypatch.setattr(builtins, "input", refuse)
        arm = robot_config_for("koch_follower", port=emu.port, id="arm", calibration_dir=tmp_path).build()
        arm.connect()
        try:
            assert arm.is_calibrated
            assert set(arm.get_observation()) == {f"{m}.pos" for m in MOTOR_NAMES}
        finally:
            arm.disconnect()


def test_leader_config_parses_from_teleop_flags():
    cfg = draccus.parse(config_class=CalibrateConfig, args=[
        "--teleop.type=so101_leader", "--teleop.port=/dev/ttyACM0", "--teleop.id=blue",
    ])
    assert isinstance(cfg.teleop, SO101LeaderConfig) and cfg.teleop.id == "blue"


def test_cli_needs_exactly_one_device(capsys):
    with pytest.raises(SystemExit):
        main([])
    err = capsys.readouterr().err
    assert "exactly one of" in err and len(err.strip().splitlines()) == 1


def test_cli_reports_a_wrong_port_without_a_traceback(capsys):
    with pytest.raises(SystemExit):
        main(["--robot.type=so101_follower", "--robot.port=/dev/ttyNOPE42", "--robot.id=x"])
    err = capsys.readouterr().err
    assert "tools.find_port" in err and "Traceback" not in err
