"""Write robot episodes to a LeRobotDataset so that nothing finished is ever lost.

`DatasetRecorder` is the one writer of recorded episodes (tools.record, the HIL sessions). Each
saved episode is committed (robot.dataset_commit): its parquet files are closed, then fsynced and
recorded in a commit record replaced atomically. A SIGKILL loses at most the episode in progress; a
power cut that too, or an episode saved less than a flush ago (its files are fsynced while the next
one records). The dataset stays one that `LeRobotDataset(repo_id, root=...)` reads. Resuming (and
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

from robot.dataset_commit import (
    DatasetDamagedError,
    WriterLock,
    being_written,
    close_episode_files,
    recover,
    write_commit,
)
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

        datasets.disable_progress_bars()  # one bar per saved episode drowns the recording's own bar
        self.root = Path(root)
        self.features = {**dataset_features(observation_features, action_names, use_videos=use_videos),
                         **(extra_features or {})}
        self._lock: WriterLock | None = None
        self._committer: _Committer | None = None
        try:
            self.dataset = self._open(repo_id, fps, robot_type, use_videos, resume, overwrite, exists_hint)
        except BaseException:
            self._release_lock()
            raise
        self.episodes_saved = 0
        self._closed = False

    def _open(self, repo_id: str, fps: int, robot_type: str | None, use_videos: bool, resume: bool,
              overwrite: bool, exists_hint: str):
        """The LeRobotDataset to write, holding the WriterLock: resumed (after recovering a killed
        recording) or created."""
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        root = self.root
        holds_data = root.exists() and any(root.iterdir())
        if holds_data and (resume or overwrite):
            self._lock = WriterLock(root)
        if holds_data and resume and not _has_episode_files(root) and not (root / "meta" / "info.json").exists():
            holds_data = False  # killed while the dataset was being created: nothing to keep
        if holds_data and resume:
            recovery = recover(root)
            if recovery.changed:
                log.warning("resuming %s", recovery.summary(root))
            else:
                log.info("resuming %s after its %d finished episode(s)", root, recovery.episodes)
            dataset = LeRobotDataset.resume(repo_id, root=root, video_backend=VIDEO_BACKEND)
            theirs = {k: tuple(v["shape"]) for k, v in dataset.features.items() if k in self.features}
            ours = {k: tuple(v["shape"]) for k, v in self.features.items()}
            if theirs != ours:
                raise ValueError(f"cannot resume {root}: it was recorded with features {theirs}, this robot "
                                 f"gives {ours}. Record into a new --dataset.root instead.")
            return dataset
        if holds_data and not overwrite:
            raise FileExistsError(f"{root} already holds data. {exists_hint}")
        self._release_lock()
        shutil.rmtree(root, ignore_errors=True)  # LeRobot creates the folder itself
        dataset = LeRobotDataset.create(repo_id, fps, self.features, root=root, robot_type=robot_type,
                                        use_videos=use_videos, video_backend=VIDEO_BACKEND)
        self._lock = WriterLock(root)
        write_commit(root)  # the empty dataset: a kill before the first episode resumes from it
        return dataset

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
                self._wait_for_commit()  # commits stay in order: a rollback never drops a finished episode
                self.dataset.save_episode()
                close_episode_files(self.dataset)  # from here a SIGKILL keeps this episode
                self._committer = _Committer(self.root)  # fsync + commit record, while the next episode records
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
        try:
            self.discard_episode()
            with signals_deferred():
                self._wait_for_commit()
                self.dataset.finalize()  # every episode is committed already: this only releases the writers
        finally:
            self._release_lock()

    def _wait_for_commit(self) -> None:
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.wait()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "DatasetRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Committer:
    """`write_commit(root)` in a thread; `wait()` re-raises what it raised (a full disk stops the recording)."""

    def __init__(self, root: Path) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(root,), name="dataset-commit", daemon=True)
        self._thread.start()

    def _run(self, root: Path) -> None:
        try:
            write_commit(root)
        except BaseException as e:  # noqa: BLE001 - handed to the recording thread
            self._error = e

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _has_episode_files(root: Path) -> bool:
    return any(p.is_file() for d in ("data", "videos", "meta/episodes") for p in (root / d).rglob("*"))


class signals_deferred:  # noqa: N801
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
    if not being_written(root):  # a live recording's unfinished episode is not a killed one: leave it
        try:
            recovery = recover(root, adopt=False)
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
