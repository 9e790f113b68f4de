"""The success classifier's forward kinematics: the torch chain equals the sim arm's MuJoCo FK, and a
classifier that reads the gripper's position saves, loads (without MuJoCo) and exports to ONNX with the
same outputs; a classifier saved before the option existed still loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from policy.config import ImageEncoderConfig
from policy.kinematics import ForwardKinematics
from policy.reward_classifier import CONFIG_NAME, RewardClassifier, RewardClassifierConfig
from policy.reward_training import LabelledFrames, RewardTrainingConfig, probabilities, train_classifier
from robot.sim.arm import SimArm
from robot.sim.mjcf import ARM_SPECS
from robot.sim.units import JointUnits

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
SIDE = 16


def units_of(arm: str, use_degrees: bool) -> JointUnits:
    spec = ARM_SPECS[arm]
    return JointUnits(low=spec.joint_low, high=spec.joint_high, gripper_closed=spec.gripper_closed,
                      gripper_open=spec.gripper_open, use_degrees=use_degrees)


def random_joints(arm: str, n: int, seed: int) -> np.ndarray:
    """(n, 6) joint angles in radians, uniform over the arm's joint ranges."""
    spec = ARM_SPECS[arm]
    return np.random.default_rng(seed).uniform(spec.joint_low, spec.joint_high, (n, 6))


@pytest.mark.parametrize("arm", sorted(ARM_SPECS))
@pytest.mark.parametrize("use_degrees", [True, False])
def test_the_torch_chain_gives_mujocos_tcp_on_random_joint_readings(arm, use_degrees):
    fk = ForwardKinematics.from_sim_arm(arm, use_degrees)
    q = random_joints(arm, 200, seed=1)
    units = units_of(arm, use_degrees)
    readings = np.stack([units.to_units(x) for x in q]).astype(np.float32)
    sim = SimArm(arm)
    expected = sim.fk_batch(q)
    sim.close()
    got = fk(torch.from_numpy(readings)).double().numpy()
    assert np.abs(got - expected).max() < 1e-5


def frames_of(arm: str, n: int = 64, seed: int = 0) -> LabelledFrames:
    """Random camera frames and joint readings (the arm's default units) labelled by the TCP's height: a
    rule the classifier can only learn through the kinematics."""
    rng = np.random.default_rng(seed)
    spec = ARM_SPECS[arm]
    units = units_of(arm, spec.use_degrees_default)
    q = random_joints(arm, n, seed)
    sim = SimArm(arm)
    height = sim.fk_batch(q)[:, 2]
    sim.close()
    states = np.stack([units.to_units(x) for x in q]).astype(np.float32)
    images = {c: rng.integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return LabelledFrames(states, images, height > np.median(height), np.arange(n) // 8)


def tiny_model(**kw) -> RewardClassifierConfig:
    return RewardClassifierConfig(image_encoder=ImageEncoderConfig(channels=8, num_layers=2, latent_dim=16,
                                                                   random_shift_pad=1),
                                  hidden_dim=32, image_pool=1, **kw)


@pytest.fixture(scope="module")
def trained() -> tuple[RewardClassifier, LabelledFrames]:
    frames = frames_of("so101")
    model = train_classifier(frames, tiny_model(kinematics="so101"), RewardTrainingConfig(steps=10, batch_size=16))
    return model, frames


def test_a_classifier_with_kinematics_normalises_the_tcp_of_its_training_frames(trained):
    model, frames = trained
    tcp = model.kinematics(torch.from_numpy(frames.states))
    np.testing.assert_allclose(model.tcp_mean.numpy(), tcp.mean(0).numpy(), atol=1e-6)
    assert model.head[0].in_features == 2 * 16 + 6 + 3


def test_a_saved_classifier_with_kinematics_loads_with_the_same_probabilities(trained, tmp_path):
    model, frames = trained
    model.save_pretrained(tmp_path / "reward")
    loaded = RewardClassifier.from_pretrained(tmp_path / "reward")
    assert loaded.config.kinematics == "so101"
    np.testing.assert_array_equal(probabilities(loaded, frames), probabilities(model, frames))


def test_loading_a_classifier_with_kinematics_does_not_import_mujoco(trained, tmp_path):
    model, frames = trained
    model.save_pretrained(tmp_path / "reward")
    np.save(tmp_path / "states.npy", frames.states[:4])
    code = ("import sys, numpy as np, torch\n"
            "from policy.reward_classifier import RewardClassifier\n"
            f"m = RewardClassifier.from_pretrained({str(tmp_path / 'reward')!r})\n"
            f"tcp = m.kinematics(torch.from_numpy(np.load({str(tmp_path / 'states.npy')!r})))\n"
            "print(int('mujoco' in sys.modules), *tcp.flatten().tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    mujoco_loaded, *tcp = out.stdout.split()
    assert mujoco_loaded == "0"
    np.testing.assert_allclose(np.array(tcp, float).reshape(4, 3),
                               model.kinematics(torch.from_numpy(frames.states[:4])).numpy(), atol=1e-6)


def test_the_onnx_export_of_a_classifier_with_kinematics_matches_torch(trained, tmp_path):
    from export.onnx_reward import OnnxRewardClassifier
    from export.reward_exporter import export_reward_classifier

    model, frames = trained
    feeds = {"observation.state": frames.states, **{f"observation.images.{c}": x for c, x in frames.images.items()}}
    export_reward_classifier(model, tmp_path / "model.onnx", feeds)
    got = OnnxRewardClassifier(tmp_path / "model.onnx").probabilities(feeds)
    np.testing.assert_allclose(got, probabilities(model, frames), atol=1e-5)


def test_a_classifier_saved_before_the_kinematics_option_still_loads(tmp_path):
    frames = frames_of("so101", n=16)
    model = train_classifier(frames, tiny_model(), RewardTrainingConfig(steps=2, batch_size=8))
    model.save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / CONFIG_NAME).read_text())
    for key in ("kinematics", "kinematics_degrees"):      # what an older chunkbot wrote
        del config[key]
    (tmp_path / "old" / CONFIG_NAME).write_text(json.dumps(config))
    loaded = RewardClassifier.from_pretrained(tmp_path / "old")
    assert loaded.config.kinematics is None
    np.testing.assert_array_equal(probabilities(loaded, frames), probabilities(model, frames))


def test_kinematics_without_the_arms_joints_is_refused():
    config = tiny_model(kinematics="so101")
    config.cameras, config.state_dim = {"front": [SIDE, SIDE, 3]}, 2
    with pytest.raises(ValueError, match="needs the arm's joints in the state"):
        RewardClassifier(config)


def test_the_tool_refuses_an_arm_without_a_kinematic_model_in_one_line(tmp_path, capsys):
    from tools.train_reward import main

    with pytest.raises(SystemExit):
        main([f"--datasets=[{tmp_path / 'none'}]", f"--output_dir={tmp_path / 'out'}", "--model.kinematics=ur5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model.kinematics=ur5 is no arm with a kinematic model" in err[0]
