"""chunkbot and LeRobot share their robot registries: LeRobot's own tools record on chunkbot's sim arm
(through the `lerobot_robot_chunkbot` plugin that ./setup.sh installs), and chunkbot's tools drive any
robot type LeRobot knows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import draccus
import numpy as np

from contract import ACTION_NAMES
from emulators.dynamixel import DynamixelBusEmulator, DynamixelXServo
from robot.config import adopt_lerobot_types, register_for_cli, robot_config_for
from robot.recording import open_dataset
from robot.safety import SafetyConfig

LEROBOT_RECORD = Path(sys.executable).parent / "lerobot-record"


def test_lerobot_record_records_an_episode_on_the_sim_arm_driven_by_the_scripted_teleoperator(tmp_path):
    root = tmp_path / "dataset"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", MUJOCO_GL="egl")
    out = subprocess.run(
        [str(LEROBOT_RECORD), "--robot.type=sim_so101", "--teleop.type=scripted", "--dataset.repo_id=local/x",
         f"--dataset.root={root}", "--dataset.num_episodes=1", "--dataset.episode_time_s=1",
         "--dataset.reset_time_s=0", "--dataset.single_task=lift", "--dataset.video=false",
         "--dataset.push_to_hub=false", "--play_sounds=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # not the repo: the plugin is installed
    assert out.returncode == 0, out.stderr[-3000:]
    dataset = open_dataset("local/x", root)
    assert dataset.num_episodes == 1 and dataset.num_frames > 0
    assert dataset.meta.robot_type == "sim_so101"
    assert dataset.features["action"]["names"] == list(ACTION_NAMES)
    assert dataset.features["observation.state"]["names"][:6] == list(ACTION_NAMES)
    actions = np.stack([dataset[i]["action"].numpy() for i in range(dataset.num_frames)])
    assert np.ptp(actions[:, :5], axis=0).max() > 0.5  # the scripted expert moved the arm


def test_a_type_only_lerobot_knows_resolves_to_lerobots_config_and_chunkbots_own_keep_theirs():
    from lerobot.robots.lekiwi import LeKiwiConfig

    adopt_lerobot_types()
    assert type(robot_config_for("lekiwi")) is LeKiwiConfig
    koch = robot_config_for("koch_follower", port="/dev/null")
    assert type(koch).__module__ == "robot.hardware.koch" and koch.read_retries == 2


def _omx_bus(ids: range, models: tuple[str, ...]) -> DynamixelBusEmulator:
    return DynamixelBusEmulator([DynamixelXServo(i, model, max_speed=20_000.0) for i, model in zip(ids, models)])


def test_chunkbots_teleoperate_drives_lerobots_own_omx_arm_from_its_omx_leader(tmp_path):
    from tools.teleoperate import TeleoperateConfig, teleoperate

    follower = _omx_bus(range(11, 17), ("xl430-w250",) * 3 + ("xl330-m288",) * 3)
    leader = _omx_bus(range(1, 7), ("xl330-m288",) * 5 + ("xl330-m077",))
    limits = {n: (-100.0, 100.0) for n in ACTION_NAMES[:5]} | {ACTION_NAMES[5]: (0.0, 100.0)}
    with follower, leader:
        args = ["--robot.type=omx_follower", f"--robot.port={follower.port}", "--robot.id=arm",
                f"--robot.calibration_dir={tmp_path}", "--teleop.type=omx_leader", f"--teleop.port={leader.port}",
                "--teleop.id=leader", f"--teleop.calibration_dir={tmp_path}", "--fps=50", "--duration_s=1.0"]
        register_for_cli(args)
        cfg = draccus.parse(TeleoperateConfig, args=args)
        cfg.safety = SafetyConfig(joint_limits=limits, max_delta_per_step=10.0, max_start_jump=1e6)
        assert type(cfg.robot).__module__.startswith("lerobot.robots.omx_follower")
        leader.set_present_positions({i: 3072 for i in range(1, 6)})  # +50 in LeRobot's [-100, 100] over 0..4095
        steps = teleoperate(cfg)
        goals = [follower.servos[i].goal_position() for i in range(11, 16)]
    assert steps >= 20
    np.testing.assert_allclose(goals, [3072] * 5, atol=25)
