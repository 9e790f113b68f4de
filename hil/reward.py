"""A learned success reward in a session: a success classifier (tools.train_reward) judges every frame,
and `consecutive_frames` frames in a row at or above `threshold` end the episode as a success.

    detector = LearnedSuccess.load(cfg.reward)       # None when --reward.path is not given
    detector.reset()                                  # at the start of every episode
    if detector.update(frame): ...                    # after every step: the task is done

The classifier is the torch model (`--reward.path=<tools.train_reward output_dir>`) or its ONNX export
(`--reward.path=.../model.onnx`, onnxruntime only); both answer `predict_proba(frame)`. The scene asks
it only when the person pressed no session key on that step: a key press overrides it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from contract.features import STATE_KEY


class SuccessClassifier(Protocol):
    threshold: float
    state_names: list[str]          # the joint values it reads, by name ([]: unnamed, read by count)

    def predict_proba(self, frame: dict[str, np.ndarray]) -> float: ...


def load_classifier(path: str | Path) -> SuccessClassifier:
    """A folder tools.train_reward wrote (torch) or its model.onnx (onnxruntime)."""
    path = Path(path)
    if path.suffix == ".onnx":
        from export.onnx_reward import OnnxRewardClassifier

        return OnnxRewardClassifier(path)
    from policy.reward_classifier import RewardClassifier

    return RewardClassifier.from_pretrained(path)


def joint_selection(wanted: list[str], given: list[str] | None) -> np.ndarray | None:
    """Where the classifier's joints sit in the robot's state: None when the robot reports exactly them (or
    either side is unnamed: then the classifier checks the count itself); a joint the robot lacks is an error."""
    if not wanted or not given or list(wanted) == list(given):
        return None
    missing = [n for n in wanted if n not in given]
    if missing:
        raise ValueError(f"the reward classifier reads {missing}, which the robot does not report (it gives "
                         f"{list(given)}): train it on this robot's recordings")
    return np.array([list(given).index(n) for n in wanted])


class LearnedSuccess:
    def __init__(self, classifier: SuccessClassifier, threshold: float | None = None,
                 consecutive_frames: int = 2, robot_state_names: list[str] | None = None) -> None:
        if consecutive_frames < 1:
            raise ValueError(f"--reward.consecutive_frames must be >= 1, got {consecutive_frames}")
        self.classifier = classifier
        self.threshold = float(classifier.threshold if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--reward.threshold must be between 0 and 1, got {self.threshold}")
        self.consecutive_frames = consecutive_frames
        # a robot reporting more than the classifier's joints (the sim arm's privileged state, where the
        # policy reads the state and the classifier the cameras and joints) gives it its joints by name
        self.select = joint_selection(classifier.state_names, robot_state_names)
        self.run = 0
        self.probability = 0.0

    @classmethod
    def load(cls, cfg, robot_state_names: list[str] | None = None) -> "LearnedSuccess | None":
        """From a session's RewardConfig; None when it names no classifier."""
        if cfg.path is None:
            return None
        return cls(load_classifier(cfg.path), cfg.threshold, cfg.consecutive_frames, robot_state_names)

    def reset(self) -> None:
        self.run = 0
        self.probability = 0.0

    def update(self, frame: dict[str, np.ndarray]) -> bool:
        """Judge the frame after a step; True once `consecutive_frames` frames in a row reached the threshold."""
        if self.select is not None:
            frame = {**frame, STATE_KEY: np.asarray(frame[STATE_KEY])[..., self.select]}
        self.probability = self.classifier.predict_proba(frame)
        self.run = self.run + 1 if self.probability >= self.threshold else 0
        return self.run >= self.consecutive_frames
