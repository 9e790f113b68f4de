"""Session steps -> a LeRobotDataset, so every session is also a demonstration dataset.

The columns of `robot.features.dataset_features` (what tools.record writes) plus, per frame:

    complementary_info.is_intervention     bool   the person drove this step (action = what was sent)
    complementary_info.chunk_index         int64  policy chunk the action came from (-1: the person's)
    complementary_info.chunk_step          int64  index of the action inside its chunk (-1: the person's)
    complementary_info.chunk_interrupted   bool   this step's chunk was cut short by a takeover

An episode is written when it ends (its flags are final only then: a chunk is known to be cut
only when the takeover comes). The dataset is finalized on close, Ctrl-C included.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from robot.features import ACTION_KEY, dataset_features
from robot.recording import VIDEO_BACKEND, _signals_deferred

EXTRA_FEATURES: dict[str, dict] = {
    "complementary_info.is_intervention": {"dtype": "bool", "shape": (1,), "names": None},
    "complementary_info.chunk_index": {"dtype": "int64", "shape": (1,), "names": None},
    "complementary_info.chunk_step": {"dtype": "int64", "shape": (1,), "names": None},
    "complementary_info.chunk_interrupted": {"dtype": "bool", "shape": (1,), "names": None},
}


class SessionDataset:
    def __init__(self, repo_id: str, root: Path | str, fps: int, observation_features: dict[str, Any],
                 action_names: tuple[str, ...] | list[str], robot_type: str | None = None,
                 use_videos: bool = False, resume: bool = False) -> None:
        import datasets
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        datasets.disable_progress_bars()
        self.root = Path(root)
        self.features = {**dataset_features(observation_features, action_names, use_videos), **EXTRA_FEATURES}
        if resume and (self.root / "meta" / "info.json").exists():
            self.dataset = LeRobotDataset.resume(repo_id, root=self.root, video_backend=VIDEO_BACKEND)
        else:
            if self.root.exists() and any(self.root.iterdir()):
                if resume:  # a session interrupted before its first episode was written
                    shutil.rmtree(self.root)
                else:
                    raise FileExistsError(f"{self.root} already holds data: pass --resume=true to continue the "
                                          "session, or choose another --output_dir")
            self.dataset = LeRobotDataset.create(repo_id, fps, self.features, root=self.root, robot_type=robot_type,
                                                 use_videos=use_videos, video_backend=VIDEO_BACKEND)
        self._closed = False

    @property
    def num_episodes(self) -> int:
        return self.dataset.meta.total_episodes

    def write_episode(self, frames: list[dict[str, np.ndarray]], actions: np.ndarray, rewards: np.ndarray,
                      success: bool, terminated: bool, intervention: np.ndarray, chunk_index: np.ndarray,
                      chunk_step: np.ndarray, chunk_interrupted: np.ndarray, task: str) -> None:
        # the whole episode or none of it: the learner already has it, so a Ctrl-C here must not leave it
        # half in the buffer and out of the dataset
        with _signals_deferred():
            t = len(frames)
            for i in range(t):
                last = i == t - 1
                row = dict(frames[i])
                row[ACTION_KEY] = np.asarray(actions[i], np.float32)
                row["next.reward"] = np.asarray([rewards[i]], np.float32)
                row["next.success"] = np.asarray([success and last], bool)
                row["next.done"] = np.asarray([terminated and last], bool)
                row["complementary_info.is_intervention"] = np.asarray([intervention[i]], bool)
                row["complementary_info.chunk_index"] = np.asarray([chunk_index[i]], np.int64)
                row["complementary_info.chunk_step"] = np.asarray([chunk_step[i]], np.int64)
                row["complementary_info.chunk_interrupted"] = np.asarray([chunk_interrupted[i]], bool)
                row["task"] = task
                self.dataset.add_frame(row)
            self.dataset.save_episode()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.dataset.has_pending_frames():
            self.dataset.clear_episode_buffer()
        with _signals_deferred():
            self.dataset.finalize()
