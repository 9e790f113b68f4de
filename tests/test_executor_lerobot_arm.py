"""The executor driving LeRobot's own Koch follower driver (through robot.hardware) on the
emulated Dynamixel bus: real packets, real LeRobot failure modes."""

import numpy as np
import pytest

pytest.importorskip("robot.hardware")

from lerobot.motors import MotorCalibration  # noqa: E402

from calibration import save_calibration  # noqa: E402
from emulators import koch_bus  # noqa: E402
from robot.config import make_robot, robot_config_for  # noqa: E402
from robot.executor import ChunkExecutor, ExecutionConfig  # noqa: E402
from robot.interface import MOTOR_NAMES  # noqa: E402
from robot.safety import BusFaultError, SafetyConfig  # noqa: E402
from robot.timing import RealClock  # noqa: E402
from tests.executor_doubles import ScriptedChunkPolicy, reach_chunk  # noqa: E402

FPS = 30.0


@pytest.fixture
def koch(tmp_path):
    cal = {m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
           for i, m in enumerate(MOTOR_NAMES)}
    save_calibration(cal, tmp_path / "koch.json")
    with koch_bus(max_speed=20_000.0) as emu:
        arm = make_robot(robot_config_for("koch_follower", port=emu.port, id="koch", calibration_dir=tmp_path))
        arm.connect()
        yield emu, arm
        for servo in emu.servos.values():
            servo.silent = False
        if arm.is_connected:
            arm.disconnect()


def test_executor_moves_the_emulated_koch_arm_within_its_calibrated_limits(koch):
    emu, arm = koch
    goal = np.array([20.0, -20.0, 10.0, 0.0, 0.0, 50.0])  # Koch bodies in [-100, 100], gripper [0, 100]
    policy = ScriptedChunkPolicy(10, FPS, chunk_fn=reach_chunk(goal, 10, step=2.0))
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="receding"), clock=RealClock(),
                       safety=SafetyConfig(max_delta_per_step=3.0))  # limits from the arm's calibration
    with ex:
        ex.run(max_steps=45)
    np.testing.assert_allclose(ex.safety.last_target, goal, atol=0.5)
    assert set(ex.safety.counts) <= {"rate_limited"}
    assert ex.safety.upper.tolist() == [100.0] * 6 and ex.safety.lower[-1] == 0.0


def test_an_unplugged_servo_holds_then_disables_torque_and_names_the_fault(koch):
    emu, arm = koch
    policy = ScriptedChunkPolicy(10, FPS, chunk_fn=reach_chunk(np.zeros(6), 10, step=1.0))
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="receding"), clock=RealClock(),
                       safety=SafetyConfig(read_retries=0, max_fault_periods=2))
    with ex:
        ex.run(max_steps=5)
        emu.servos[4].silent = True
        with pytest.raises(BusFaultError) as err:
            ex.run(max_steps=10)
    message = str(err.value)
    assert "get_observation() failed in 2 consecutive control periods" in message
    assert "wrist_flex" in message  # the adapter names the silent servo
    assert ex.timing.rows()["source"][-1] == 2  # the first faulty period held (SOURCE_HOLD)
    assert not any(emu.servos[i].torque_on for i in (1, 2, 3, 5, 6))  # every live servo is limp
