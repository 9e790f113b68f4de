"""obs_mode=pixels: the sim tasks observe what a real follower with two cameras gives, and a policy
trained on it exports for that arm and runs on it (LeRobot's so101_follower driver, the servo bus
emulated, stand-in cameras) without --allow_other_robot_type."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import emulators.camera  # noqa: F401  (registers the stand_in camera type for --robot.cameras)
import robot.sim  # noqa: F401  (registers the envs)
from contract import ACTION_NAMES, IMAGE_PREFIX, MOTOR_NAMES, STATE_KEY
from emulators.camera import StandInCameraConfig
from export.exporter import export_policy
from export.onnx_policy import OnnxChunkPolicy
from policy.config import QChunkSACConfig
from policy.qchunk_sac import QChunkSACPolicy
from robot.config import make_robot, robot_config_for
from testing.sample_policies import save_training_checkpoint

torch.set_num_threads(1)
SIZE = 24
CAMERA_CLI = ("{front: {type: stand_in, width: %d, height: %d, fps: 30}, "
              "wrist: {type: stand_in, width: %d, height: %d, fps: 30, seed: 1}}") % ((SIZE,) * 4)


def _follower_features(robot_type: str) -> dict:
    """LeRobot's dataset features (`observation.*`) of a real follower with cameras front and wrist."""
    from lerobot.utils.feature_utils import hw_to_dataset_features

    cameras = {c: StandInCameraConfig(width=SIZE, height=SIZE) for c in ("front", "wrist")}
    follower = make_robot(robot_config_for(robot_type, port="/dev/null", id="arm", cameras=cameras))
    return hw_to_dataset_features(follower.observation_features, "observation")


@pytest.mark.parametrize("env_id, real_type", [("chunkbot/SO101Lift-v0", "so101_follower"),
                                                ("chunkbot/KochLift-v0", "koch_follower")])
def test_pixels_observation_has_exactly_the_features_of_the_real_follower_with_two_cameras(env_id, real_type):
    expected = _follower_features(real_type)
    env = gym.make(env_id, obs_mode="pixels", image_height=SIZE, image_width=SIZE)
    try:
        obs, _ = env.reset(seed=0)
        assert set(obs) == set(expected) == {STATE_KEY, IMAGE_PREFIX + "front", IMAGE_PREFIX + "wrist"}
        assert env.unwrapped.state_names == list(expected[STATE_KEY]["names"]) == list(ACTION_NAMES)
        assert obs[STATE_KEY].shape == tuple(expected[STATE_KEY]["shape"]) and obs[STATE_KEY].dtype == np.float32
        for cam in ("front", "wrist"):
            key = IMAGE_PREFIX + cam
            assert obs[key].shape == tuple(expected[key]["shape"]) and obs[key].dtype == np.uint8
            assert env.observation_space[key].shape == obs[key].shape
        assert obs[IMAGE_PREFIX + "front"].std() > 0  # a rendered scene, not a blank frame
    finally:
        env.close()


def test_state_mode_stays_the_default_privileged_state():
    env = gym.make("chunkbot/SO101Lift-v0")
    try:
        obs, _ = env.reset(seed=0)
        assert set(obs) == {STATE_KEY} and obs[STATE_KEY].shape == (19,)
    finally:
        env.close()


def test_unknown_obs_mode_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="state, pixels"):
        gym.make("chunkbot/SO101Lift-v0", obs_mode="depth")


def _pixel_policy(seed: int = 0) -> QChunkSACPolicy:
    """An untrained pixels-mode policy for the sim SO-101 (its real features), weights at a scale where
    the chunk depends on the images."""
    env = gym.make("chunkbot/SO101Lift-v0", obs_mode="pixels", image_height=SIZE, image_width=SIZE)
    low, high = env.action_space.low, env.action_space.high
    env.close()
    cfg = QChunkSACConfig.from_dict({"use_images": True, "actor_hidden_dims": [32], "critic_hidden_dims": [32],
                                     "image_encoder": {"channels": 4, "num_layers": 2, "latent_dim": 8}})
    cfg = cfg.with_features(len(ACTION_NAMES), ACTION_NAMES, {c: [SIZE, SIZE, 3] for c in ("front", "wrist")}, 30.0)
    torch.manual_seed(seed)
    policy = QChunkSACPolicy(cfg)
    rng = np.random.default_rng(seed)
    policy.normalizer.fit(rng.normal(0, 20, (64, len(ACTION_NAMES))), low, high)
    return policy.eval()


@pytest.fixture(scope="module")
def pixel_actor(tmp_path_factory):
    root = tmp_path_factory.mktemp("pixels")
    checkpoint = save_training_checkpoint(_pixel_policy(), root / "train", obs_mode="pixels")
    return export_policy(checkpoint, root / "actor.onnx", dynamo=False)


def test_pixel_policy_exports_with_the_inputs_of_a_so101_follower_with_two_cameras(pixel_actor):
    expected = _follower_features("so101_follower")
    meta = OnnxChunkPolicy(pixel_actor.path).metadata
    assert meta.robot_type == "so101_follower"
    assert set(meta.inputs) == set(expected)
    assert meta.observations[STATE_KEY].names == tuple(expected[STATE_KEY]["names"])
    for cam in ("front", "wrist"):
        key = IMAGE_PREFIX + cam
        assert meta.observations[key].shape == tuple(expected[key]["shape"]) and meta.observations[key].dtype == "uint8"
    assert pixel_actor.parity.passed


def test_run_policy_plays_the_pixel_actor_on_the_emulated_so101_with_stand_in_cameras(pixel_actor, tmp_path, capsys):
    from lerobot.motors import MotorCalibration

    from calibration import save_calibration
    from emulators import so_bus
    from tools.run_policy import main

    save_calibration({m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
                      for i, m in enumerate(MOTOR_NAMES)}, tmp_path / "arm.json")
    with so_bus(max_speed=20_000.0) as emu:
        emu.set_present_positions({i: 2000 for i in range(1, 7)})
        main(["--robot.type=so101_follower", f"--robot.port={emu.port}", "--robot.id=arm",
              f"--robot.calibration_dir={tmp_path}", f"--robot.cameras={CAMERA_CLI}",
              f"--policy.path={pixel_actor.path}", "--episodes=1", "--max_steps=10"])
        goals = emu.goal_positions()
    episode = json.loads(capsys.readouterr().out)["episodes"][0]
    assert episode["steps"] == 10
    assert any(goal != 2000 for goal in goals.values())  # the policy's targets reached the servos


def test_pixel_actor_on_a_follower_without_its_cameras_is_refused(pixel_actor):
    follower = make_robot(robot_config_for("so101_follower", port="/dev/null", id="arm"))
    with pytest.raises(Exception, match="needs camera"):
        OnnxChunkPolicy(pixel_actor.path).check_robot(follower.observation_features, tuple(follower.action_features),
                                                      "so101_follower")


@pytest.mark.slow
def test_train_in_pixels_mode_runs_end_to_end_and_its_checkpoint_loads_and_exports_for_the_real_arm(tmp_path):
    """`tools.train --obs_mode=pixels`: camera demos, a few hundred steps of the image learner (bf16
    autocast on), an evaluated checkpoint that loads as a two-camera policy and exports for so101_follower."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.train", "--obs_mode=pixels", "--image_size=16",
         "--env-name=chunkbot/SO101Reach-v0", "--num_demos=1", "--steps=200", "--warmup_steps=100",
         "--eval_episodes=1", "--eval_every=0", "--save_every=0", "--log_every=50", "--num_threads=1",
         "--progress_bar=false", "--policy.batch_size=16", "--policy.actor_hidden_dims=[32]",
         "--policy.critic_hidden_dims=[32]", "--policy.image_encoder.channels=4",
         "--policy.image_encoder.num_layers=2", "--policy.image_encoder.latent_dim=8", "--policy.bf16=true",
         f"--output_dir={out}"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_critic"] for r in lines if "loss_critic" in r]
    assert len(losses) == 3 and all(np.isfinite(losses))   # updates from step 100, logged at 100, 150 and 200
    policy = QChunkSACPolicy.from_pretrained(out)
    assert policy.camera_names == ["front", "wrist"] and policy.config.state_dim == len(ACTION_NAMES)
    result = export_policy(out, tmp_path / "pixels.onnx", dynamo=False)
    assert result.metadata.robot_type == "so101_follower" and result.parity.passed
    assert set(result.metadata.inputs) == {STATE_KEY, IMAGE_PREFIX + "front", IMAGE_PREFIX + "wrist"}
