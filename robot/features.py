"""Robot observations <-> policy frames, the way LeRobot builds dataset frames.

A robot declares float features (`shoulder_pan.pos`, ..., and in simulation also velocities and
the cube pose) and camera features (`(H, W, 3)` tuples). A policy frame gathers every float
feature, in declared order, into one `observation.state` vector and keeps each camera as
`observation.images.<camera>` (uint8, H x W x 3). Datasets, the learner, the ONNX actor and the
runtime all use this one mapping, so a policy trained on a dataset reads the live robot the same
way. The key names themselves are `contract.features`'.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from contract import ACTION_KEY, IMAGE_PREFIX, STATE_HISTORY_KEY, STATE_KEY

__all__ = ["ACTION_KEY", "IMAGE_PREFIX", "STATE_HISTORY_KEY", "STATE_KEY", "camera_shapes", "dataset_features",
           "state_names", "to_policy_frame"]


def state_names(observation_features: dict[str, Any]) -> list[str]:
    return [k for k, v in observation_features.items() if v is float]


def camera_shapes(observation_features: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {k: tuple(v) for k, v in observation_features.items() if isinstance(v, tuple)}


def to_policy_frame(observation: dict[str, Any], observation_features: dict[str, Any]) -> dict[str, np.ndarray]:
    """Robot observation dict -> `{"observation.state": (D,) float32, "observation.images.<cam>": uint8}`."""
    names = state_names(observation_features)
    missing = [n for n in names if n not in observation]
    if missing:
        raise KeyError(f"robot observation lacks {missing}; it has {sorted(observation)}")
    frame: dict[str, np.ndarray] = {STATE_KEY: np.asarray([observation[n] for n in names], dtype=np.float32)}
    for cam in camera_shapes(observation_features):
        frame[IMAGE_PREFIX + cam] = np.asarray(observation[cam], dtype=np.uint8)
    return frame


def dataset_features(observation_features: dict[str, Any], action_names: tuple[str, ...] | list[str],
                     use_videos: bool = False) -> dict[str, dict]:
    """LeRobotDataset `features` for a robot plus the RL columns (reward, success, done)."""
    names = state_names(observation_features)
    feats: dict[str, dict] = {
        STATE_KEY: {"dtype": "float32", "shape": (len(names),), "names": names},
        ACTION_KEY: {"dtype": "float32", "shape": (len(action_names),), "names": list(action_names)},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.success": {"dtype": "bool", "shape": (1,), "names": None},
        # terminated (task success / failure state), as opposed to the episode merely ending on time
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
    }
    for cam, shape in camera_shapes(observation_features).items():
        feats[IMAGE_PREFIX + cam] = {
            "dtype": "video" if use_videos else "image",
            "shape": shape,
            "names": ["height", "width", "channels"],
        }
    return feats
