"""A session with a learned success reward (--reward.path): the classifier's success ends the episode with
no key press, and a session key pressed on the same step overrides it and is what the dataset records."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hil.config import HILConfig, RewardConfig
from hil.learner import HILLearner, HILLearnerConfig
from hil.link import LocalLink
from hil.scene import REWARD_MODEL_END
from hil.session import HILSession
from policy.config import ImageEncoderConfig
from policy.reward_classifier import RewardClassifier, RewardClassifierConfig
from robot.config import robot_config_for
from robot.keyboard import KeyHub
from tests.test_hil_session import person_at_leader, read_frames, tiny_policy

torch.set_num_threads(1)
SIDE = 24


JOINTS = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos",
          "gripper.pos"]


def constant_classifier(out: Path, logit: float, onnx: bool = False, state_names: list[str] | None = None) -> Path:
    """A real classifier whose head ignores its features and answers sigmoid(logit) on every frame."""
    model = RewardClassifier(RewardClassifierConfig(cameras={"front": [SIDE, SIDE, 3], "wrist": [SIDE, SIDE, 3]},
                                                    state_dim=6, state_names=list(state_names or []),
                                                    image_pool=1, hidden_dim=8,
                                                    image_encoder=ImageEncoderConfig(channels=4, num_layers=1,
                                                                                     latent_dim=4)))
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.fill_(logit)
    model.save_pretrained(out)
    if onnx:
        from export.reward_exporter import export_reward_classifier

        export_reward_classifier(model, out / "model.onnx")
        return out / "model.onnx"
    return out


def run_session(tmp_path: Path, reward: RewardConfig, keys_at: dict[int, str], episodes: int = 1,
                obs_mode: str = "pixels"):
    hub = KeyHub()
    person = person_at_leader({n: (lambda k=k: hub.press(k)) for n, k in keys_at.items()})
    # state mode: the policy reads the sim's privileged state, the cameras render for the classifier only
    cams = {"obs_mode": "pixels"} if obs_mode == "pixels" else {"cameras": ["front", "wrist"]}
    robot_cfg = robot_config_for("sim_so101", task="lift", seed=0, image_height=SIDE, image_width=SIDE, **cams)
    cfg = HILConfig(robot=robot_cfg, policy=tiny_policy(), output_dir=tmp_path / "session", episodes=episodes,
                    progress=False, checkpoint_every=0, reward=reward)
    robot = robot_cfg.build()
    robot.connect()
    try:
        learner = HILLearner(tiny_policy(), HILLearnerConfig(learning_starts=10_000))   # the person drives
        return HILSession(cfg, robot, person, LocalLink(learner, background=False), hub).run()
    finally:
        robot.disconnect()


@pytest.mark.parametrize("onnx", [False, True], ids=["torch", "onnx"])
def test_the_classifiers_success_ends_the_episode_without_a_key_press(tmp_path, onnx):
    path = constant_classifier(tmp_path / "reward", logit=6.0, onnx=onnx)
    results = run_session(tmp_path, RewardConfig(path=path, consecutive_frames=3), keys_at={})
    assert [(r.end, r.steps, r.success) for r in results] == [(REWARD_MODEL_END, 3, True)]
    assert results[0].task_success is False          # the sim says the cube is still down: the classifier was wrong
    frames = read_frames(tmp_path / "session")
    assert frames["next.done"].astype(bool).tolist() == [False, False, True]


def test_a_failure_key_on_the_classifiers_success_step_overrides_it(tmp_path):
    path = constant_classifier(tmp_path / "reward", logit=6.0)
    results = run_session(tmp_path, RewardConfig(path=path, consecutive_frames=4), keys_at={4: "l"})
    assert [(r.end, r.steps, r.success) for r in results] == [("failure_key", 4, False)]
    assert not read_frames(tmp_path / "session")["next.done"].astype(bool).any()


def test_a_success_key_ends_the_episode_when_the_classifier_does_not(tmp_path):
    path = constant_classifier(tmp_path / "reward", logit=-6.0)
    results = run_session(tmp_path, RewardConfig(path=path), keys_at={5: "o"})
    assert [(r.end, r.steps, r.success) for r in results] == [("success", 5, True)]
    assert read_frames(tmp_path / "session")["next.done"].astype(bool).tolist() == [False] * 4 + [True]


@pytest.mark.parametrize("tool", ["hil_session", "actor"])
def test_the_session_tools_take_the_reward_options(tool):
    from tools._policy_cli import parse_cli

    cfg = parse_cli(HILConfig, ["--reward.path=outputs/reward/lift", "--reward.threshold=0.8",
                                "--reward.consecutive_frames=3"], tool=tool)
    assert (str(cfg.reward.path), cfg.reward.threshold, cfg.reward.consecutive_frames) == ("outputs/reward/lift", 0.8, 3)


def test_a_missing_reward_model_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no reward classifier at"):
        run_session(tmp_path, RewardConfig(path=tmp_path / "nowhere"), keys_at={})


@pytest.mark.parametrize("onnx", [False, True], ids=["torch", "onnx"])
def test_a_classifier_of_the_joints_judges_a_state_policys_session_by_joint_name(tmp_path, onnx):
    path = constant_classifier(tmp_path / "reward", logit=6.0, onnx=onnx, state_names=JOINTS)
    results = run_session(tmp_path, RewardConfig(path=path, consecutive_frames=2), keys_at={}, obs_mode="state")
    assert [(r.end, r.steps) for r in results] == [(REWARD_MODEL_END, 2)]   # 19 state values, its 6 picked


def test_a_classifier_without_joint_names_on_a_wider_state_says_to_retrain(tmp_path):
    path = constant_classifier(tmp_path / "reward", logit=6.0)
    with pytest.raises(ValueError, match="reads 6 joint values but the robot gives 19"):
        run_session(tmp_path, RewardConfig(path=path), keys_at={}, obs_mode="state")


def test_joint_selection_picks_by_name_and_names_a_joint_the_robot_lacks():
    from hil.reward import joint_selection

    assert joint_selection(JOINTS, JOINTS) is None
    assert joint_selection(["b", "a"], ["a", "x", "b"]).tolist() == [2, 0]
    with pytest.raises(ValueError, match=r"reads \['c'\], which the robot does not report"):
        joint_selection(["a", "c"], ["a", "b"])
