"""LeRobot's own Koch / SO-101 drivers, through our adapters, against the emulated servo buses."""

from __future__ import annotations

import builtins
import dataclasses
import time

import draccus
import pytest
from lerobot.motors import MotorCalibration

from calibration import CalibrationError, save_calibration
from emulators import KOCH_LEADER_MODELS, koch_bus, so_bus
from emulators.dynamixel import SYNC_READ
from robot.config import RobotConfig, make_robot, make_teleoperator, robot_config_for
from robot.hardware import KochLeaderConfig, ServoArm, ServoBusError, ServoLeader
from robot.interface import ACTION_NAMES, MOTOR_NAMES, RobotError

# Calibrated range 1000..3000 counts for every joint: normalised values are easy to compute by hand.
LO, HI = 1000, 3000


def _calibration(homing_offsets: list[int], drive_modes: list[int] | None = None) -> dict[str, MotorCalibration]:
    drive_modes = drive_modes or [0] * 6
    return {
        m: MotorCalibration(id=i + 1, drive_mode=drive_modes[i], homing_offset=homing_offsets[i], range_min=LO, range_max=HI)
        for i, m in enumerate(MOTOR_NAMES)
    }


KOCH_OFFSETS = [-1024, 512, 0, 100, -100, 2047]
SO_OFFSETS = [-300, 250, 0, 40, -40, 1000]  # Feetech offsets are 11-bit sign-magnitude


@pytest.fixture(autouse=True)
def no_prompts(monkeypatch):
    """A robot loop must never block on input(): make any prompt fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"input() was called: {args}")

    monkeypatch.setattr(builtins, "input", refuse)


@pytest.fixture
def cal_dir(tmp_path):
    save_calibration(_calibration(KOCH_OFFSETS), tmp_path / "koch.json")
    save_calibration(_calibration(SO_OFFSETS), tmp_path / "so.json")
    save_calibration(_calibration([0] * 6, drive_modes=[0, 0, 1, 0, 0, 0]), tmp_path / "leader.json")
    return tmp_path


@pytest.fixture
def koch(cal_dir):
    with koch_bus(max_speed=20_000.0) as emu:
        arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="koch", calibration_dir=cal_dir))
        arm.connect()
        yield emu, arm
        _reconnect_all_and_disconnect(emu, arm)


@pytest.fixture
def so101(cal_dir):
    with so_bus(max_speed=20_000.0) as emu:
        arm = make_robot(robot_config_for("so101_follower", port=emu.port, id="so", calibration_dir=cal_dir))
        arm.connect()
        yield emu, arm
        _reconnect_all_and_disconnect(emu, arm)


def _eventually(check, timeout_s: float = 2.0) -> None:
    """Sync writes get no reply, so the emulator applies them a moment after send_action returns."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _reconnect_all_and_disconnect(emu, arm) -> None:
    for servo in emu.servos.values():
        servo.silent = False
    if arm.is_connected:
        arm.disconnect()


def _sync_reads(emu) -> int:
    return sum(1 for instruction, _ in emu.instructions if instruction == SYNC_READ)


def test_config_types_are_registered_in_our_registry():
    for name in ("koch_follower", "so100_follower", "so101_follower"):
        assert robot_config_for(name, port="/dev/null").type == name


def test_connect_writes_the_files_calibration_into_the_servos(koch):
    emu, arm = koch
    assert isinstance(arm, ServoArm)
    assert [emu.servos[i].get_signed("Homing_Offset") for i in range(1, 7)] == KOCH_OFFSETS
    assert [emu.servos[i].get_field("Min_Position_Limit") for i in range(1, 7)] == [LO] * 6
    assert arm.is_calibrated


def test_koch_configure_sets_lerobots_operating_modes_and_torque(koch):
    emu, _ = koch
    assert [emu.servos[i].get_field("Operating_Mode") for i in range(1, 7)] == [4, 4, 4, 4, 4, 5]
    assert all(emu.servos[i].torque_on for i in range(1, 7))


def test_koch_observation_is_in_minus_100_100_and_gripper_0_100(koch):
    emu, arm = koch
    arm.torque_off()  # so the shafts stay where the test puts them
    emu.set_present_positions({1: 1500, 2: 2500, 3: 2000, 4: 1000, 5: 3000, 6: 1500})
    obs = arm.get_observation()
    assert list(obs) == list(ACTION_NAMES)
    assert [obs[n] for n in ACTION_NAMES] == pytest.approx([-50.0, 50.0, 0.0, -100.0, 100.0, 25.0])


def test_koch_action_reaches_the_servos_as_goal_counts(koch):
    emu, arm = koch
    sent = arm.send_action({"shoulder_pan.pos": 50.0, "shoulder_lift.pos": -50.0, "elbow_flex.pos": 0.0,
                            "wrist_flex.pos": 100.0, "wrist_roll.pos": -100.0, "gripper.pos": 75.0})
    assert sent["gripper.pos"] == 75.0

    def goals_arrived():
        assert emu.goal_positions() == {1: 2500, 2: 1500, 3: 2000, 4: 3000, 5: 1000, 6: 2500}

    _eventually(goals_arrived)


def test_koch_servos_move_to_the_commanded_goal(koch):
    emu, arm = koch
    target = {n: 20.0 for n in ACTION_NAMES}
    arm.send_action(target)
    time.sleep(0.3)
    obs = arm.get_observation()
    assert [obs[n] for n in ACTION_NAMES] == pytest.approx([20.0] * 6, abs=0.2)


def test_so101_observation_in_degrees_with_sign_magnitude_offsets(so101):
    emu, arm = so101
    assert [emu.servos[i].get_signed("Homing_Offset") for i in range(1, 7)] == SO_OFFSETS
    arm.torque_off()
    emu.set_present_positions({1: 2000, 2: 3000, 3: 1000, 4: 2500, 5: 1500, 6: 2500})
    obs = arm.get_observation()
    per_count = 360 / 4095  # LeRobot DEGREES: (raw - mid) * 360 / 4095, mid = 2000
    assert [obs[n] for n in ACTION_NAMES] == pytest.approx(
        [0.0, 1000 * per_count, -1000 * per_count, 500 * per_count, -500 * per_count, 75.0]
    )


def test_so101_action_in_degrees_reaches_the_servos(so101):
    emu, arm = so101
    arm.send_action({n: (45.0 if n != "gripper.pos" else 50.0) for n in ACTION_NAMES})
    body = int(45.0 * 4095 / 360 + 2000)

    def goals_arrived():
        assert emu.goal_positions() == {1: body, 2: body, 3: body, 4: body, 5: body, 6: 2000}

    _eventually(goals_arrived)


def test_so101_joint_limits_follow_the_calibration(so101):
    _, arm = so101
    limits = arm.joint_limits()
    assert limits["elbow_flex.pos"] == pytest.approx((-1000 * 360 / 4095, 1000 * 360 / 4095))
    assert limits["gripper.pos"] == (0.0, 100.0)


def test_koch_leader_read_gives_actions(cal_dir):
    with koch_bus(KOCH_LEADER_MODELS) as emu:
        leader = make_teleoperator(KochLeaderConfig(port=emu.port, id="leader", calibration_dir=cal_dir))
        assert isinstance(leader, ServoLeader)
        leader.connect()
        try:
            # LeRobot's leader: torque only on the gripper (a spring-back trigger held at 50)
            assert [emu.servos[i].torque_on for i in range(1, 7)] == [False] * 5 + [True]
            assert emu.servos[6].goal_position() == 2000
            assert emu.servos[3].get_field("Drive_Mode") == 1  # from the file
            emu.set_present_positions({1: 1500, 2: 2500, 3: 2000, 4: 1000, 5: 3000})
            action = leader.get_action()
            assert list(action) == list(ACTION_NAMES)
            assert [action[n] for n in ACTION_NAMES[:5]] == pytest.approx([-50.0, 50.0, 0.0, -100.0, 100.0])
        finally:
            leader.disconnect()


def test_silent_servo_gives_bounded_retries_then_error_naming_it(koch):
    emu, arm = koch
    emu.servos[4].silent = True
    before = _sync_reads(emu)
    start = time.monotonic()
    with pytest.raises(ServoBusError) as err:
        arm.get_observation()
    elapsed = time.monotonic() - start
    assert err.value.motors == ["wrist_flex"]
    assert "wrist_flex (id 4)" in str(err.value) and "cable" in str(err.value)
    assert _sync_reads(emu) - before == 1 + arm.config.read_retries
    assert elapsed < 2.0  # 3 tries x ~35 ms SDK timeout + one diagnostic ping per servo


def test_silent_feetech_servo_is_named_too(so101):
    emu, arm = so101
    emu.servos[2].silent = True
    with pytest.raises(ServoBusError, match=r"shoulder_lift \(id 2\)"):
        arm.get_observation()


def test_corrupted_reply_is_recovered_by_a_retry(koch):
    emu, arm = koch
    arm.torque_off()
    emu.set_present_positions({i: 2500 for i in range(1, 7)})
    emu.corrupt_next_replies(1, servo_id=2)
    before = _sync_reads(emu)
    obs = arm.get_observation()
    assert obs["shoulder_pan.pos"] == pytest.approx(50.0)
    assert _sync_reads(emu) - before == 2


def test_corrupted_feetech_reply_is_recovered_by_a_retry(so101):
    emu, arm = so101
    emu.corrupt_next_replies(1, servo_id=1)
    before = _sync_reads(emu)  # Feetech's sync read is instruction 0x82 too
    assert set(arm.get_observation()) == set(ACTION_NAMES)
    assert _sync_reads(emu) - before == 2


def test_missing_calibration_is_a_clear_error_not_a_prompt(tmp_path):
    with koch_bus() as emu:
        arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="nobody", calibration_dir=tmp_path))
        with pytest.raises(CalibrationError) as err:
            arm.connect()
    assert "python -m tools.calibrate --robot.type=koch_follower" in str(err.value)
    assert "--robot.id=nobody" in str(err.value)
    assert not arm.is_connected


def test_malformed_calibration_fails_at_build_naming_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"gripper": 3}')
    with pytest.raises(CalibrationError, match="bad.json"):
        make_robot(robot_config_for("so101_follower", port="/dev/null", id="bad", calibration_dir=tmp_path))


def test_wrong_port_points_at_find_port(cal_dir):
    arm = make_robot(robot_config_for("koch_follower", port="/dev/ttyNOPE99", id="koch", calibration_dir=cal_dir))
    with pytest.raises(RobotError, match=r"python -m tools.find_port") as err:
        arm.connect()
    assert "/dev/ttyNOPE99" in str(err.value)


def test_port_with_no_servos_says_no_servo_answered_and_closes_it(cal_dir):
    with so_bus() as emu:
        for servo in emu.servos.values():
            servo.silent = True
        arm = make_robot(robot_config_for("so101_follower", port=emu.port, id="so", calibration_dir=cal_dir))
        with pytest.raises(RobotError, match="no servo answered") as err:
            arm.connect()
        assert "tools.find_port" in str(err.value)
        assert not arm.bus.port_handler.is_open


def test_torque_off_reaches_every_servo(koch):
    emu, arm = koch
    arm.torque_off()
    assert not any(emu.servos[i].torque_on for i in range(1, 7))


def test_hold_makes_present_the_goal(koch):
    emu, arm = koch
    emu.servos[1].max_speed = 2_000.0  # ~1 s for the 1876 counts to the goal
    arm.send_action({n: 90.0 for n in ACTION_NAMES})
    time.sleep(0.02)  # shafts are on their way
    held = arm.hold()

    def goals_are_held_positions():
        assert emu.goal_positions() == {arm.bus.motors[m].id: v for m, v in held.items()}

    _eventually(goals_are_held_positions)
    assert held["shoulder_pan"] < 2900  # not the commanded 90 (2900 counts): stopped where it was


def test_disconnect_with_a_dead_servo_closes_the_port_and_names_it(koch):
    emu, arm = koch
    emu.servos[5].silent = True
    with pytest.raises(RobotError, match=r"wrist_roll \(id 5\)"):
        arm.disconnect()
    assert not arm.bus.port_handler.is_open
    assert not any(emu.servos[i].torque_on for i in (1, 2, 3, 4, 6))


def test_concurrent_hold_and_observation_do_not_corrupt_each_other(koch):
    import threading

    emu, arm = koch
    errors: list[BaseException] = []

    def hammer(call) -> None:
        try:
            for _ in range(100):
                call()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(f,)) for f in (arm.get_observation, arm.hold)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_vanished_port_is_a_robot_error_suggesting_the_cable(cal_dir):
    emu = koch_bus().start()
    arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="koch", calibration_dir=cal_dir))
    arm.connect()
    emu.stop()  # both pty ends close: what the host sees when the USB adapter disappears
    with pytest.raises(RobotError, match="USB cable unplugged"):
        arm.get_observation()
    with pytest.raises(RobotError, match="serial port failed"):
        arm.disconnect()
    assert not arm.bus.port_handler.is_open


def test_one_silent_servo_at_connect_is_named(cal_dir):
    with koch_bus() as emu:
        emu.servos[3].silent = True
        arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="koch", calibration_dir=cal_dir))
        with pytest.raises(ServoBusError, match=r"elbow_flex \(id 3\)") as err:
            arm.connect()
        assert err.value.motors == ["elbow_flex"]
        assert not arm.bus.port_handler.is_open


def test_connecting_twice_is_a_robot_error_and_keeps_the_connection(koch):
    _, arm = koch
    with pytest.raises(RobotError, match="already connected"):
        arm.connect()
    assert arm.is_connected


def test_a_glitch_during_connect_is_retried(cal_dir):
    with koch_bus() as emu:
        emu.corrupt_next_replies(1, servo_id=4)  # LeRobot's connect would fail on this ping
        arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="koch", calibration_dir=cal_dir))
        arm.connect()
        try:
            assert arm.is_calibrated
        finally:
            arm.disconnect()


@pytest.mark.parametrize("robot_type", ["so100_follower", "so101_follower"])
def test_a_lerobot_calibrated_arm_works_as_is_from_lerobots_default_location(monkeypatch, tmp_path, robot_type):
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    lerobot_file = tmp_path / "robots" / "so_follower" / "blue.json"  # where lerobot-calibrate 0.6.1 writes it
    lerobot_file.parent.mkdir(parents=True)
    with open(lerobot_file, "w") as f, draccus.config_type("json"):
        draccus.dump(_calibration(SO_OFFSETS), f, indent=4)
    with so_bus() as emu:
        arm = make_robot(robot_config_for(robot_type, port=emu.port, id="blue"))
        assert arm.calibration_path == lerobot_file
        arm.connect()
        try:
            assert arm.is_calibrated
            assert [emu.servos[i].get_signed("Homing_Offset") for i in range(1, 7)] == SO_OFFSETS
        finally:
            arm.disconnect()


@dataclasses.dataclass
class _RobotCli:
    robot: RobotConfig | None = None


def test_opencv_cameras_parse_from_the_cli_into_observation_features(tmp_path):
    cfg = draccus.parse(config_class=_RobotCli, args=[
        "--robot.type=so101_follower", "--robot.port=/dev/null", f"--robot.calibration_dir={tmp_path}",
        "--robot.cameras={front: {type: opencv, index_or_path: 0, width: 64, height: 48, fps: 30}}",
    ])
    arm = make_robot(cfg.robot)
    assert arm.observation_features["front"] == (48, 64, 3)
    assert [k for k, v in arm.observation_features.items() if v is float] == list(ACTION_NAMES)
