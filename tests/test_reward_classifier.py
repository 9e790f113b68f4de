"""The learned success reward: trained on a small self-made LeRobotDataset, saved, loaded, exported to
ONNX, and the tool's one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from policy.config import ImageEncoderConfig
from policy.reward_classifier import RewardClassifier, RewardClassifierConfig
from policy.reward_training import (
    LabelledFrames,
    RewardTrainingConfig,
    at_frame_labels,
    evaluate,
    load_labelled_frames,
    probabilities,
    split_by_episode,
    train_classifier,
)
from robot.recording import DatasetRecorder

torch.set_num_threads(1)
SIDE = 16
FEATURES = {"a.pos": float, "b.pos": float, "front": (SIDE, SIDE, 3), "wrist": (SIDE, SIDE, 3)}
ACTIONS = ["a.pos", "b.pos"]
STATE_NAMES = ["a.pos", "b.pos"]


def tiny_model() -> RewardClassifierConfig:
    return RewardClassifierConfig(image_encoder=ImageEncoderConfig(channels=8, num_layers=2, latent_dim=16,
                                                                   random_shift_pad=1),
                                  hidden_dim=32, image_pool=1)


def scene(success: bool, rng: np.random.Generator) -> np.ndarray:
    """A dim noisy frame with a bright block: up in the image on a success, down otherwise (a cube lifted)."""
    img = rng.integers(0, 60, (SIDE, SIDE, 3), dtype=np.uint8)
    row = rng.integers(1, 5) if success else rng.integers(10, 14)
    col = rng.integers(2, 12)
    img[row:row + 3, col:col + 3] = 230
    return img


def make_dataset(root: Path, episodes: int = 8, steps: int = 20, seed: int = 0, successes: bool = True,
                 labels: bool = True) -> Path:
    """Episodes of `steps` frames; every other episode ends with 8 success frames (none if not `successes`)."""
    rng = np.random.default_rng(seed)
    features = FEATURES
    rec = DatasetRecorder(f"local/{root.name}", root, 30, features, ACTIONS, use_videos=False)
    for e in range(episodes):
        for t in range(steps):
            success = successes and e % 2 == 0 and t >= steps - 8
            frame = {"observation.state": rng.normal(0, 1, 2).astype(np.float32),
                     "observation.images.front": scene(success, rng), "observation.images.wrist": scene(success, rng)}
            rec.add_frame(frame, np.zeros(2, np.float32), reward=float(success), success=success and labels,
                          done=t == steps - 1, task="t")
        rec.save_episode()
    rec.close()
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "lift")


@pytest.fixture(scope="module")
def trained(dataset) -> tuple[RewardClassifier, LabelledFrames]:
    frames = load_labelled_frames([dataset])
    train, heldout = split_by_episode(frames, 0.25, seed=0)
    model = train_classifier(frames.subset(train), tiny_model(), RewardTrainingConfig(steps=120, batch_size=32, lr=3e-3))
    return model, frames.subset(heldout)


def test_the_classifier_separates_success_frames_on_held_out_episodes(trained):
    model, heldout = trained
    assert len(np.unique(heldout.episodes)) == 2 and heldout.labels.any() and not heldout.labels.all()
    metrics = evaluate(probabilities(model, heldout), heldout, threshold=0.5, consecutive_frames=2)
    assert metrics["precision"] >= 0.9 and metrics["recall"] >= 0.9, metrics
    assert metrics["episode_ends"]["ended_early"] == 0 and metrics["episode_ends"]["missed"] == 0


def test_at_frame_labels_give_each_frame_the_success_after_the_previous_frames_action():
    after_action = np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)
    episodes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(at_frame_labels(after_action, episodes), [0, 0, 1, 1, 0, 1, 1, 1])


def test_the_at_frame_label_is_the_recorded_label_one_frame_later(dataset):
    after = load_labelled_frames([dataset])
    at = load_labelled_frames([dataset], label="at_frame")
    first = np.r_[True, after.episodes[1:] != after.episodes[:-1]]
    assert not at.labels[first].any()
    np.testing.assert_array_equal(at.labels[1:][~first[1:]], after.labels[:-1][~first[1:]])
    assert at.labels.sum() == after.labels.sum() - after.labels[np.r_[first[1:], True]].sum()


def test_held_out_episodes_are_whole_and_include_both_kinds(dataset):
    frames = load_labelled_frames([dataset])
    train, heldout = split_by_episode(frames, 0.25, seed=3)
    assert not set(frames.episodes[train]) & set(frames.episodes[heldout])
    assert frames.labels[heldout].any() and not frames.labels[heldout].all()


def test_a_saved_classifier_loads_and_gives_the_same_probabilities(trained, tmp_path):
    model, heldout = trained
    model.save_pretrained(tmp_path / "reward", {"heldout": {"precision": 1.0}})
    loaded = RewardClassifier.from_pretrained(tmp_path / "reward")
    np.testing.assert_array_equal(probabilities(loaded, heldout), probabilities(model, heldout))
    assert loaded.state_names == model.state_names == heldout.state_names == STATE_NAMES   # the dataset's, kept
    assert json.loads((tmp_path / "reward" / "metrics.json").read_text())["heldout"]["precision"] == 1.0
    frame = {"observation.state": heldout.states[0], "observation.images.front": heldout.images["front"][0],
             "observation.images.wrist": heldout.images["wrist"][0]}
    assert loaded.predict_proba(frame) == pytest.approx(float(probabilities(model, heldout)[0]), abs=1e-6)


def test_the_onnx_export_matches_torch_on_onnxruntime(trained, tmp_path):
    from export.onnx_reward import OnnxRewardClassifier
    from export.reward_exporter import export_reward_classifier

    model, heldout = trained
    export_reward_classifier(model, tmp_path / "model.onnx")
    onnx = OnnxRewardClassifier(tmp_path / "model.onnx")
    feeds = {"observation.state": heldout.states,
             **{f"observation.images.{c}": x for c, x in heldout.images.items()}}
    np.testing.assert_allclose(onnx.probabilities(feeds), probabilities(model, heldout), atol=1e-5)
    assert (onnx.camera_names, onnx.state_dim, onnx.threshold) == (["front", "wrist"], 2, 0.5)
    assert onnx.state_names == STATE_NAMES


def test_the_tool_trains_saves_metrics_and_exports(dataset, tmp_path, capsys):
    from tools.train_reward import main

    out = tmp_path / "reward"
    main([f"--datasets=[{dataset}]", f"--output_dir={out}", "--training.steps=20", "--training.batch_size=16",
          "--model.image_pool=1", "--model.image_encoder.channels=8", "--model.image_encoder.num_layers=2",
          "--progress=false"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((out / "metrics.json").read_text())
    assert printed["precision"] == saved["heldout"]["precision"]
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "metrics.json", "model.onnx"}


@pytest.mark.parametrize("case, message", [
    ("missing", "no LeRobot dataset at"),
    ("no_positives", "no training frame is labelled a success"),
    ("none_given", "no dataset given"),
    ("bad_label", "--label=later is not a frame label"),
])
def test_bad_input_ends_the_tool_in_one_line(case, message, tmp_path, capsys):
    from tools.train_reward import main

    args = {"missing": [f"--datasets=[{tmp_path / 'nowhere'}]"],
            "no_positives": [f"--datasets=[{make_dataset(tmp_path / 'fails', episodes=4, successes=False)}]"],
            "none_given": [],
            "bad_label": [f"--datasets=[{tmp_path / 'nowhere'}]", "--label=later"]}[case]
    with pytest.raises(SystemExit) as exit_:
        main([*args, f"--output_dir={tmp_path / 'out'}", "--progress=false"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1 and len(err.splitlines()) == 1 and message in err, err


def test_a_dataset_without_camera_frames_is_refused(tmp_path):
    root = tmp_path / "joints"
    rec = DatasetRecorder("local/joints", root, 30, {"a.pos": float}, ["a.pos"], use_videos=False)
    rec.add_frame({"observation.state": np.zeros(1, np.float32)}, np.zeros(1, np.float32), reward=0.0,
                  success=False, done=True, task="t")
    rec.save_episode()
    rec.close()
    with pytest.raises(ValueError, match="no camera frames"):
        load_labelled_frames([root])
