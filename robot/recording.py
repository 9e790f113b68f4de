"""Write robot episodes to a LeRobotDataset so that nothing finished is ever lost.

LeRobot only makes a dataset readable after `finalize()` (parquet footers); an interrupted
process that never calls it leaves every episode unreadable. `DatasetRecorder` is a context
manager that finalizes on any exit (Ctrl-C and SIGTERM included), drops only the episode that
was in progress, and can resume appending to an existing dataset.
"""

from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np

from robot.features import ACTION_KEY, dataset_features

log = logging.getLogger(__name__)

# LeRobot falls back to pyav after printing a long traceback when torchcodec cannot find the
# system FFmpeg libraries; asking for pyav up front keeps the output clean and works everywhere.
VIDEO_BACKEND = "pyav"


class DatasetRecorder:
    """Append (observation, action, reward, success, done) frames episode by episode."""

    def __init__(
        self,
        repo_id: str,
        root: Path | str,
        fps: int,
        observation_features: dict[str, Any],
        action_names: tuple[str, ...] | list[str],
        robot_type: str | None = None,
        use_videos: bool = False,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        import datasets
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        datasets.disable_progress_bars()  # one bar per saved episode drowns the recording's own bar
        self.root = Path(root)
        self.features = dataset_features(observation_features, action_names, use_videos=use_videos)
        info = self.root / "meta" / "info.json"
        if info.exists() and resume:
            self.dataset = LeRobotDataset.resume(repo_id, root=self.root, video_backend=VIDEO_BACKEND)
            theirs = {k: tuple(v["shape"]) for k, v in self.dataset.features.items() if k in self.features}
            ours = {k: tuple(v["shape"]) for k, v in self.features.items()}
            if theirs != ours:
                raise ValueError(
                    f"cannot resume {self.root}: it was recorded with features {theirs}, this robot "
                    f"gives {ours}. Record into a new --dataset.root instead."
                )
        else:
            if self.root.exists() and any(self.root.iterdir()):
                if not overwrite:
                    raise FileExistsError(
                        f"{self.root} already holds data. Pass --dataset.resume=true to append episodes, "
                        f"or choose another --dataset.root."
                    )
                shutil.rmtree(self.root)
            self.dataset = LeRobotDataset.create(
                repo_id, fps, self.features, root=self.root, robot_type=robot_type,
                use_videos=use_videos, video_backend=VIDEO_BACKEND,
            )
        self.episodes_saved = 0
        self._closed = False

    @property
    def num_episodes(self) -> int:
        return self.dataset.meta.total_episodes

    def add_frame(self, frame: dict[str, np.ndarray], action: np.ndarray, reward: float, success: bool,
                  done: bool, task: str) -> None:
        row = dict(frame)
        row[ACTION_KEY] = np.asarray(action, dtype=np.float32)
        row["next.reward"] = np.asarray([reward], dtype=np.float32)
        row["next.success"] = np.asarray([success], dtype=bool)
        row["next.done"] = np.asarray([done], dtype=bool)
        row["task"] = task
        self.dataset.add_frame(row)

    def save_episode(self) -> None:
        if self.dataset.has_pending_frames():
            # A Ctrl-C during the write itself must not leave half an episode in the files.
            with _signals_deferred():
                self.dataset.save_episode()
            self.episodes_saved += 1

    def discard_episode(self) -> None:
        if self.dataset.has_pending_frames():
            self.dataset.clear_episode_buffer()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.discard_episode()
        with _signals_deferred():
            self.dataset.finalize()

    def __enter__(self) -> "DatasetRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _signals_deferred:
    """Hold SIGINT/SIGTERM until the block ends (main thread only), then re-raise them."""

    def __enter__(self):
        import threading

        self._pending: list[int] = []
        self._old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, lambda s, _f: self._pending.append(s))
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._pending:
            raise KeyboardInterrupt


def terminate_as_interrupt() -> None:
    """Treat SIGTERM like Ctrl-C so `finally` blocks finalize datasets and checkpoints."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def open_dataset(repo_id: str, root: Path | str):
    """Read a recorded dataset with a clear error when it is missing or was never finalized."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    if not (root / "meta" / "info.json").exists():
        raise FileNotFoundError(
            f"no LeRobot dataset at {root} (meta/info.json is missing). Record one with "
            f"`python -m tools.record --dataset.root={root} ...`."
        )
    try:
        return LeRobotDataset(repo_id, root=root, video_backend=VIDEO_BACKEND)
    except Exception as e:  # pyarrow / datasets raise many types for damaged files
        raise RuntimeError(
            f"the dataset at {root} cannot be read ({type(e).__name__}: {e}). It may be truncated or "
            f"was never finalized (a killed recording); re-record the damaged episodes or restore a copy."
        ) from e
