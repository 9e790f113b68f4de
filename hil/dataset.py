"""Session steps -> a LeRobotDataset, so every session is also a demonstration dataset.

The columns of `robot.features.dataset_features` (what tools.record writes) plus, per frame:

    complementary_info.is_intervention     bool   the person drove this step (action = what was sent)
    complementary_info.chunk_index         int64  policy chunk the action came from (-1: the person's)
    complementary_info.chunk_step          int64  index of the action inside its chunk (-1: the person's)
    complementary_info.chunk_interrupted   bool   this step's chunk was cut short by a takeover

An episode is written when it ends (its flags are final only then: a chunk is known to be cut
only when the takeover comes). The writer is tools.record's (`robot.recording.DatasetRecorder`):
each episode is committed to disk as it is written, so a killed session keeps every finished one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot.recording import DatasetRecorder

EXTRA_FEATURES: dict[str, dict] = {
    "complementary_info.is_intervention": {"dtype": "bool", "shape": (1,), "names": None},
    "complementary_info.chunk_index": {"dtype": "int64", "shape": (1,), "names": None},
    "complementary_info.chunk_step": {"dtype": "int64", "shape": (1,), "names": None},
    "complementary_info.chunk_interrupted": {"dtype": "bool", "shape": (1,), "names": None},
}


class SessionDataset(DatasetRecorder):
    def __init__(self, repo_id: str, root: Path | str, fps: int, observation_features: dict[str, Any],
                 action_names: tuple[str, ...] | list[str], robot_type: str | None = None,
                 use_videos: bool = False, resume: bool = False) -> None:
        super().__init__(repo_id, root, fps, observation_features, action_names, robot_type=robot_type,
                         use_videos=use_videos, resume=resume, extra_features=EXTRA_FEATURES,
                         exists_hint="Pass --resume=true to continue the session, or choose another --output_dir.")

    def write_episode(self, frames: list[dict[str, np.ndarray]], actions: np.ndarray, rewards: np.ndarray,
                      success: bool, terminated: bool, intervention: np.ndarray, chunk_index: np.ndarray,
                      chunk_step: np.ndarray, chunk_interrupted: np.ndarray, task: str) -> None:
        # the whole episode or none of it: the learner already has it, so a Ctrl-C here must not leave it
        # half in the buffer and out of the dataset
        last = len(frames) - 1
        self.add_episode(
            self.row(frames[i], actions[i], rewards[i], success and i == last, terminated and i == last, task,
                     {"complementary_info.is_intervention": intervention[i],
                      "complementary_info.chunk_index": chunk_index[i],
                      "complementary_info.chunk_step": chunk_step[i],
                      "complementary_info.chunk_interrupted": chunk_interrupted[i]})
            for i in range(len(frames)))
