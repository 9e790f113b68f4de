"""Write robot episodes to a LeRobotDataset so that nothing finished is ever lost.

`DatasetRecorder` is the one writer of recorded episodes (tools.record, the HIL sessions). Each
saved episode is committed (robot.dataset_commit): its parquet files are closed and fsynced and a
commit record is replaced atomically, so a SIGKILL or a power cut loses at most the episode in
progress, and the dataset stays one that `LeRobotDataset(repo_id, root=...)` reads. Resuming (and
`open_dataset`) first rolls a killed recording back to its last commit and says what it dropped.
Ctrl-C and SIGTERM (`terminate_as_interrupt`) end the recording through `close()` as well.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from robot.dataset_commit import DatasetDamagedError, commit_episode, recover, write_commit
from robot.features import ACTION_KEY, dataset_features

log = logging.getLogger(__name__)

# LeRobot falls back to pyav after printing a long traceback when torchcodec cannot find the
# system FFmpeg libraries; asking for pyav up front keeps the output clean and works everywhere.
VIDEO_BACKEND = "pyav"


class DatasetRecorder:
    """Append (observation, action, reward, success, done[, extra columns]) frames episode by episode."""

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
        extra_features: dict[str, dict] | None = None,
        exists_hint: str = "Pass --dataset.resume=true to append episodes, or choose another --dataset.root.",
    ) -> None:
        import datasets
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        datasets.disable_progress_bars()  # one bar per saved episode drowns the recording's own bar
        self.root = Path(root)
        self.features = {**dataset_features(observation_features, action_names, use_videos=use_videos),
                         **(extra_features or {})}
        holds_data = self.root.exists() and any(self.root.iterdir())
        if holds_data and resume and not _has_episode_files(self.root) and not (self.root / "meta" / "info.json").exists():
            shutil.rmtree(self.root)  # killed while the dataset was being created: nothing to keep
            holds_data = False
        if holds_data and resume:
            recovery = recover(self.root)
            if recovery.changed:
                log.warning("resuming %s", recovery.summary(self.root))
            else:
                log.info("resuming %s after its %d finished episode(s)", self.root, recovery.episodes)
            self.dataset = LeRobotDataset.resume(repo_id, root=self.root, video_backend=VIDEO_BACKEND)
            theirs = {k: tuple(v["shape"]) for k, v in self.dataset.features.items() if k in self.features}
            ours = {k: tuple(v["shape"]) for k, v in self.features.items()}
            if theirs != ours:
                raise ValueError(
                    f"cannot resume {self.root}: it was recorded with features {theirs}, this robot "
                    f"gives {ours}. Record into a new --dataset.root instead."
                )
        else:
            if holds_data:
                if not overwrite:
                    raise FileExistsError(f"{self.root} already holds data. {exists_hint}")
                shutil.rmtree(self.root)
            self.dataset = LeRobotDataset.create(
                repo_id, fps, self.features, root=self.root, robot_type=robot_type,
                use_videos=use_videos, video_backend=VIDEO_BACKEND,
            )
            write_commit(self.root)  # the empty dataset: a kill before the first episode resumes from it
        self.episodes_saved = 0
        self._closed = False

    @property
    def num_episodes(self) -> int:
        return self.dataset.meta.total_episodes

    def row(self, frame: dict[str, np.ndarray], action: np.ndarray, reward: float, success: bool, done: bool,
            task: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """One LeRobot frame: the policy frame, the action sent, the RL columns and any extra columns."""
        row = dict(frame)
        row[ACTION_KEY] = np.asarray(action, dtype=np.float32)
        row["next.reward"] = np.asarray([reward], dtype=np.float32)
        row["next.success"] = np.asarray([success], dtype=bool)
        row["next.done"] = np.asarray([done], dtype=bool)
        for key, value in (extra or {}).items():
            row[key] = np.asarray([value], dtype=self.features[key]["dtype"])
        row["task"] = task
        return row

    def add_frame(self, frame: dict[str, np.ndarray], action: np.ndarray, reward: float, success: bool,
                  done: bool, task: str, extra: dict[str, Any] | None = None) -> None:
        self.dataset.add_frame(self.row(frame, action, reward, success, done, task, extra))

    def save_episode(self) -> None:
        """Write the frames added since the last save as one episode and commit it to disk."""
        if self.dataset.has_pending_frames():
            # Ctrl-C during the write must not leave half an episode; a SIGKILL is rolled back on resume
            with signals_deferred():
                self.dataset.save_episode()
                commit_episode(self.dataset)
                self.episodes_saved += 1

    def add_episode(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add and save a whole episode (rows from `row()`), or nothing of it if Ctrl-C comes meanwhile."""
        with signals_deferred():
            for row in rows:
                self.dataset.add_frame(row)
            self.save_episode()

    def discard_episode(self) -> None:
        if self.dataset.has_pending_frames():
            self.dataset.clear_episode_buffer()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.discard_episode()
        with signals_deferred():
            self.dataset.finalize()  # every episode is committed already: this only releases the writers

    def __enter__(self) -> "DatasetRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_episode_files(root: Path) -> bool:
    return any(p.is_file() for d in ("data", "videos", "meta/episodes") for p in (root / d).rglob("*"))


class signals_deferred:
    """Hold SIGINT/SIGTERM until the block ends (main thread only), then raise KeyboardInterrupt.
    A block nested in another raises when it ends, so end the outer block with it."""

    def __enter__(self) -> "signals_deferred":
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
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def open_dataset(repo_id: str, root: Path | str):
    """Read a recorded dataset; a killed recording is first rolled back to its last finished episode."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    if not (root / "meta" / "info.json").exists():
        raise FileNotFoundError(
            f"no LeRobot dataset at {root} (meta/info.json is missing). Record one with "
            f"`python -m tools.record --dataset.root={root} ...`."
        )
    try:
        recovery = recover(root)
    except DatasetDamagedError as e:
        raise RuntimeError(str(e)) from None
    if recovery.changed:
        log.warning("%s", recovery.summary(root))
    try:
        return LeRobotDataset(repo_id, root=root, video_backend=VIDEO_BACKEND)
    except Exception as e:  # pyarrow / datasets raise many types for damaged files
        raise RuntimeError(
            f"the dataset at {root} cannot be read ({type(e).__name__}: {e}). A file of a finished episode is "
            f"damaged (a bad copy or disk); restore a copy of the dataset or record it again."
        ) from e
