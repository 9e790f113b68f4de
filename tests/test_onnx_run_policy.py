"""tools.run_policy: an exported actor (and a torch checkpoint) driving the simulated SO-101 through
the chunk executor and its safety layer."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from export.exporter import export_policy
from testing.sample_policies import make_policy, save_training_checkpoint
from tools.run_policy import main

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def actor(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_policy")
    checkpoint = save_training_checkpoint(make_policy("mlp", seed=7), root / "train")
    return checkpoint, export_policy(checkpoint, root / "actor.onnx", dynamo=False).path


RUN_WITHOUT_TORCH = """
import runpy, sys
sys.argv = ["run_policy", *sys.argv[1:]]
try:
    runpy.run_module("tools.run_policy", run_name="__main__", alter_sys=True)
finally:
    print("TORCH_IMPORTED=" + str("torch" in sys.modules))
"""


def test_onnx_actor_runs_sim_episodes_in_a_process_without_torch(actor):
    _, onnx_path = actor
    proc = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TORCH, "--robot.type=sim_so101", "--robot.task=lift",
         f"--policy.path={onnx_path}", "--execution.mode=receding", "--episodes=2", "--max_steps=12",
         "--realtime=false"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.strip().splitlines()[-1] == "TORCH_IMPORTED=False"
    summary = json.loads(out[out.index("{"): out.rindex("}") + 1])
    assert [e["steps"] for e in summary["episodes"]] == [12, 12]
    assert all(isinstance(e["success"], bool) for e in summary["episodes"])
    assert summary["success_rate"] == 0.0  # an untrained actor does not lift the cube
    assert summary["robot"] == "sim_so101"


def test_torch_checkpoint_runs_through_the_same_command(actor, capsys):
    checkpoint, _ = actor
    main(["--robot.type=sim_so101", "--robot.task=lift", f"--policy.path={checkpoint}", "--episodes=1",
          "--max_steps=8", "--realtime=false", "--execution.mode=open_loop"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"][0]["steps"] == 8


def test_real_time_run_keeps_the_control_rate(actor, capsys):
    _, onnx_path = actor
    main(["--robot.type=sim_so101", "--robot.task=lift", f"--policy.path={onnx_path}", "--episodes=1",
          "--max_steps=15"])
    episode = json.loads(capsys.readouterr().out)["episodes"][0]
    assert episode["steps"] == 15
    assert episode["wall_s"] == pytest.approx(15 / 30.0, abs=0.25)
    assert episode["inference_latency_p50_ms"] < 20.0


def test_actor_for_another_robot_type_is_refused_with_a_hint(actor, capsys):
    _, onnx_path = actor
    with pytest.raises(SystemExit) as exit_info:
        main(["--robot.type=sim_koch", "--robot.task=lift", f"--policy.path={onnx_path}", "--realtime=false"])
    assert exit_info.value.code == 2
    assert "--allow_other_robot_type=true" in capsys.readouterr().err


def test_same_command_runs_a_real_arm_type_on_the_emulated_feetech_bus(tmp_path, capsys):
    """so101_follower through LeRobot's driver, the servo bus emulated on a pseudo-terminal."""
    import numpy as np
    from lerobot.motors import MotorCalibration

    from calibration import save_calibration
    from emulators import so_bus
    from robot.interface import ACTION_NAMES, MOTOR_NAMES

    save_calibration({m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
                      for i, m in enumerate(MOTOR_NAMES)}, tmp_path / "arm.json")
    low, high = np.array([-80.0] * 5 + [0.0]), np.array([80.0] * 5 + [100.0])
    policy = make_policy("mlp", seed=2, features=(list(ACTION_NAMES), list(ACTION_NAMES), low, high))
    onnx_path = export_policy(save_training_checkpoint(policy, tmp_path / "train"), tmp_path / "arm.onnx",
                              robot_type="so101_follower", dynamo=False).path
    with so_bus(max_speed=20_000.0) as emu:
        emu.set_present_positions({i: 2000 for i in range(1, 7)})
        main(["--robot.type=so101_follower", f"--robot.port={emu.port}", "--robot.id=arm",
              f"--robot.calibration_dir={tmp_path}", f"--policy.path={onnx_path}", "--episodes=1", "--max_steps=12"])
        goals = emu.goal_positions()
    episode = json.loads(capsys.readouterr().out)["episodes"][0]
    assert episode["steps"] == 12
    assert "success" not in episode  # a real arm has no task oracle
    assert not any(k.startswith("bus") for k in episode["safety_events"])
    assert any(goal != 2000 for goal in goals.values())  # the policy's targets reached the servos
