"""Servo health on the emulated Dynamixel and Feetech buses: a servo that reports a hardware error
stops the loop with torque off and says which servo, which error and what to do; "no answer" and
"answered with an error" are different messages; a servo whose replies keep arriving corrupted is
named in a warning; and every tool reports the fault that stopped it."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from lerobot.motors import MotorCalibration

from calibration import save_calibration
from emulators import koch_bus, so_bus
from robot.config import make_robot, robot_config_for
from robot.connection import connected, disconnect
from robot.executor import ChunkExecutor, ExecutionConfig
from robot.interface import ACTION_NAMES, MOTOR_NAMES, RobotError, ServoFaultError
from robot.safety import BusFaultError, SafetyConfig
from robot.timing import RealClock
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy, reach_chunk

ARMS = {"koch_follower": koch_bus, "so101_follower": so_bus}


def _calibrate(directory) -> None:
    save_calibration({m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
                      for i, m in enumerate(MOTOR_NAMES)}, directory / "arm.json")


@pytest.fixture(params=sorted(ARMS))
def arm(request, tmp_path):
    _calibrate(tmp_path)
    with ARMS[request.param](max_speed=20_000.0) as emu:
        robot = make_robot(robot_config_for(request.param, port=emu.port, id="arm", calibration_dir=tmp_path))
        robot.connect()
        yield emu, robot
        for servo in emu.servos.values():
            servo.silent = False
            servo.clear_hardware_error()
        if robot.is_connected:
            robot.disconnect()


def test_an_overloaded_servo_stops_the_loop_at_once_with_torque_off_naming_servo_error_and_remedy(arm):
    emu, robot = arm
    policy = ScriptedChunkPolicy(10, 30.0, chunk_fn=reach_chunk(np.full(6, 10.0), 10, step=1.0))
    ex = ChunkExecutor(robot, policy, ExecutionConfig(mode="receding"), clock=RealClock(), safety=SafetyConfig())
    with ex:
        ex.run(max_steps=5)
        steps_before = len(ex.timing.rows()["source"])
        emu.servos[3].raise_hardware_error("overload")
        with pytest.raises(BusFaultError) as err:
            ex.run(max_steps=30)
    message = str(err.value)
    assert "elbow_flex (id 3) reports overload" in message, message
    assert "free it and lighten the load" in message and "power-cycle" in message
    assert "torque disabled" in message
    assert "not answering" not in message
    assert len(ex.timing.rows()["source"]) - steps_before <= 1  # the first read that saw it stopped the loop
    assert ex.safety.counts["servo_fault"] == 1 and "bus_read_error" not in ex.safety.counts  # no retries
    assert not any(servo.torque_on for servo in emu.servos.values())


def test_a_servo_answering_with_an_error_is_told_apart_from_a_silent_one(arm):
    emu, robot = arm
    emu.servos[3].raise_hardware_error("overheating")
    with pytest.raises(ServoFaultError) as err:
        robot.get_observation()
    assert err.value.faults == {"elbow_flex": ["overheating"]}
    assert "let it cool" in str(err.value) and "not answering" not in str(err.value)
    emu.servos[3].clear_hardware_error()
    emu.servos[5].silent = True
    with pytest.raises(RobotError) as err:
        robot.get_observation()
    assert not isinstance(err.value, ServoFaultError)
    assert "Servo(s) not answering: wrist_roll (id 5)" in str(err.value)


def test_disconnecting_with_an_overloaded_servo_names_the_overload_not_a_cable(arm):
    emu, robot = arm
    emu.servos[2].raise_hardware_error("overload")
    with pytest.raises(ServoFaultError, match=r"shoulder_lift \(id 2\) reports overload") as err:
        robot.disconnect()
    assert "not answering" not in str(err.value) and "cable" not in str(err.value)
    assert not robot.bus.port_handler.is_open
    assert not any(servo.torque_on for servo in emu.servos.values())


def test_one_reply_in_20_with_a_bad_checksum_is_retried_and_the_servo_is_named_in_a_warning(arm, caplog):
    emu, robot = arm
    emu.corrupt_every(20, servo_id=3)
    with caplog.at_level(logging.WARNING, logger="robot.hardware.bus"):
        for _ in range(220):
            assert set(robot.get_observation()) == set(ACTION_NAMES)  # every read recovered
    assert emu.corrupted >= 10
    # counted against servo 3 alone (a corrupted reply that arrives after a timeout is drained unread: <=)
    counted = robot.bus.status.corrupted
    assert 0 < counted[3] <= emu.corrupted and sum(counted.values()) == counted[3], (dict(counted), emu.corrupted)
    warnings = [r.getMessage() for r in caplog.records if "corrupted checksum" in r.getMessage()]
    assert warnings and all("elbow_flex (id 3)" in w for w in warnings)
    assert "above the 2.0 % warning level" in warnings[0]


def test_a_clean_bus_gives_no_checksum_warning(arm, caplog):
    _, robot = arm
    with caplog.at_level(logging.WARNING, logger="robot.hardware.bus"):
        for _ in range(150):
            robot.get_observation()
    assert not [r for r in caplog.records if "corrupted checksum" in r.getMessage()]


@pytest.fixture(scope="module")
def actors(tmp_path_factory):
    """An exported actor per arm type, in that arm's units."""
    from export.exporter import export_policy
    from testing.sample_policies import make_policy, save_training_checkpoint

    root = tmp_path_factory.mktemp("health_actors")
    low, high = np.array([-80.0] * 5 + [0.0]), np.array([80.0] * 5 + [100.0])
    paths = {}
    for robot_type in ARMS:
        policy = make_policy("mlp", seed=3, features=(list(ACTION_NAMES), list(ACTION_NAMES), low, high))
        checkpoint = save_training_checkpoint(policy, root / robot_type)
        paths[robot_type] = export_policy(checkpoint, root / f"{robot_type}.onnx", robot_type=robot_type,
                                          dynamo=False).path
    return paths


@pytest.mark.parametrize("robot_type", sorted(ARMS))
def test_a_servo_that_stops_answering_under_run_policy_is_named_in_the_error(robot_type, actors, tmp_path, capsys):
    from tools.run_policy import main

    _calibrate(tmp_path)
    with ARMS[robot_type](max_speed=20_000.0) as emu:
        emu.set_present_positions({i: 2000 for i in range(1, 7)})
        unplug = threading.Timer(0.8, lambda: setattr(emu.servos[4], "silent", True))
        unplug.start()
        try:
            with pytest.raises(SystemExit) as exit_info:
                main([f"--robot.type={robot_type}", f"--robot.port={emu.port}", "--robot.id=arm",
                      f"--robot.calibration_dir={tmp_path}", f"--policy.path={actors[robot_type]}",
                      "--episodes=1", "--max_steps=600"])
        finally:
            unplug.cancel()
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "bus fault" in err and "wrist_flex (id 4)" in err and "not answering" in err
    assert "disconnecting failed" not in err  # the disconnect's own failure does not replace the fault


class _UnpluggedArm(FirstOrderArm):
    """An arm whose disconnect fails, as a real one does with a dead servo."""

    def disconnect(self) -> None:
        super().disconnect()
        raise RobotError("disconnecting failed: torque off was not confirmed")


def test_a_failing_disconnect_after_a_fault_is_logged_and_the_fault_propagates(caplog):
    with pytest.raises(BusFaultError, match="the fault"):
        with connected(_UnpluggedArm()):
            raise BusFaultError("the fault")
    assert "disconnecting after the error below failed too" in caplog.text


def test_a_failing_disconnect_on_its_own_is_raised():
    arm = _UnpluggedArm()
    arm.connect()
    with pytest.raises(RobotError, match="disconnecting failed"):
        disconnect(arm)


def test_run_policy_summary_still_reports_a_clean_run_on_a_real_arm_type(actors, tmp_path, capsys):
    from tools.run_policy import main

    _calibrate(tmp_path)
    with so_bus(max_speed=20_000.0) as emu:
        main(["--robot.type=so101_follower", f"--robot.port={emu.port}", "--robot.id=arm",
              f"--robot.calibration_dir={tmp_path}", f"--policy.path={actors['so101_follower']}",
              "--episodes=1", "--max_steps=6"])
    assert json.loads(capsys.readouterr().out)["episodes"][0]["steps"] == 6
