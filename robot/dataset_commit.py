"""Each finished episode of a LeRobotDataset committed to disk, and a killed recording rolled back to it.

LeRobot 0.6.1 writes a session's episodes into one data parquet and one `meta/episodes` parquet that
get their footers only in `finalize()`: a process killed before it (SIGKILL, power cut, OOM) leaves
every episode of the session unreadable. Here, after each `save_episode()`:

1. `close_episode_files` closes both parquet files and makes the next episode start new ones, so a
   finished episode's files are complete and never opened again (the one reach into LeRobot's writer);
2. `write_commit` fsyncs the new files and the small metadata files LeRobot rewrites in place
   (`info.json`, `stats.json`, `tasks.parquet`), then replaces `meta/chunkbot_commit.json`
   atomically: it lists every data, video and episode-metadata file with its size and holds a copy
   of those small files. The recorder runs it beside the next episode's frames (fsync can take a
   good part of a second on a busy disk) and waits for it before that episode's own save.

Between two commits the dataset on disk is a complete LeRobotDataset that LeRobot reads as it is. A
kill inside a save (LeRobot rewrites `info.json` non-atomically, and the new parquet files have no
footer until closed) leaves an inconsistent one: `recover` finds that cheaply (parquet footers, row
counts against `info.json`) and rolls it back to the last commit: files the commit does not list are
the unfinished episode's and are deleted, the metadata files are restored from the commit's copy.
A consistent dataset the commit does not describe (appended by LeRobot's own tools) is adopted as it is.

A recorder holds `WriterLock` while it writes: recovery never touches a dataset that a live process
is recording (its unfinished episode is not a killed one), and two recorders cannot share one.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

log = logging.getLogger(__name__)

COMMIT_FILE = "meta/chunkbot_commit.json"
LOCK_FILE = ".chunkbot_writer.lock"
COMMIT_VERSION = 1
INFO = "meta/info.json"
STATS = "meta/stats.json"
TASKS = "meta/tasks.parquet"
_METADATA_FILES = (INFO, STATS, TASKS)
_EPISODES_DIR = "meta/episodes"
_TRACKED_DIRS = ("data", "videos", _EPISODES_DIR)
_STAGING_DIR = "images"  # LeRobot's per-frame camera files of the episode being recorded


class DatasetDamagedError(ValueError):
    """A dataset that is inconsistent beyond an unfinished episode and cannot be rolled back: bad input,
    which the tools report in one line like any other ValueError."""


class DatasetBusyError(ValueError):
    """Another live process is recording into the dataset."""


class WriterLock:
    """An exclusive lock on `<root>/.chunkbot_writer.lock` held while a recorder writes the dataset.

    It is an flock, which the kernel drops when its process dies: a lock that can be taken means no
    live writer (a SIGKILLed one included), so its leftovers are a killed recording's."""

    def __init__(self, root: Path) -> None:
        self._fd: int | None = os.open(Path(root) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise DatasetBusyError(f"{root} is being recorded by another process; wait for it to end, or record "
                                   "into another --dataset.root") from None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def being_written(root: Path) -> bool:
    """True while a live process holds the dataset's WriterLock."""
    path = Path(root) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ commit
def close_episode_files(dataset: Any) -> None:
    """Footer the parquet files of the episode just saved; start the next episode in new files.

    LeRobot has no public way to close its writers and keep recording (finalize() ends the dataset,
    and LeRobotDataset.resume() reloads every episode's metadata, which grows with the dataset). So
    this is the one place that touches its writer's state: both parquet writers are closed, and the
    writer is left as LeRobotDataset.resume() leaves it (no latest episode; the last one known from
    `meta.episodes[-1]`), which makes the next episode's data, video and metadata go to the files
    after it. `meta.episodes` then holds only the columns of the last episode that the writer reads:
    this object is for writing only (readers open the dataset anew, as `open_dataset` does).
    """
    writer, meta = dataset.writer, dataset.meta
    writer.close_writer()
    meta._close_writer()  # flushes the buffered episode row, then writes the footer
    where = ("episode_index", "dataset_from_index", "dataset_to_index", "data/", "videos/", "meta/episodes/")
    last = {k: (v[0] if isinstance(v, list) else v) for k, v in meta.latest_episode.items() if k.startswith(where)}
    meta.episodes = [last]
    meta.latest_episode = None
    writer._latest_episode = None


def write_commit(root: Path) -> dict[str, Any]:
    """Fsync what changed since the last commit, then atomically record the dataset as it is now."""
    root = Path(root)
    previous = read_commit(root)
    known = previous["files"] if previous else {}
    files = _tracked_files(root)
    changed = [root / rel for rel, size in files.items() if known.get(rel) != size]
    meta_texts: dict[str, str | None] = {}
    for rel in _METADATA_FILES:
        path = root / rel
        if path.exists():
            changed.append(path)
            data = path.read_bytes()
            meta_texts[rel] = base64.b64encode(data).decode() if rel == TASKS else data.decode()
        else:
            meta_texts[rel] = None
    for path in changed:
        _fsync_file(path)
    for directory in {p.parent for p in changed}:
        _fsync_dir(directory)
    info = json.loads(meta_texts[INFO] or "{}")
    record = {"version": COMMIT_VERSION, "episodes": int(info.get("total_episodes", 0)),
              "frames": int(info.get("total_frames", 0)), "files": files, "metadata": meta_texts}
    _atomic_write(root / COMMIT_FILE, json.dumps(record).encode())
    return record


def read_commit(root: Path) -> dict[str, Any] | None:
    """The last commit of the dataset at `root`, or None (never committed, or not written by chunkbot)."""
    try:
        record = json.loads((Path(root) / COMMIT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == COMMIT_VERSION else None


# ---------------------------------------------------------------------------------------- recovery
@dataclass
class Recovery:
    """What `recover` found and did."""

    episodes: int                                          # finished episodes the dataset holds now
    dropped: list[str] = field(default_factory=list)       # files of the unfinished episode, deleted
    restored: list[str] = field(default_factory=list)      # metadata files put back from the commit
    staged_frames: int = 0                                 # camera frames of the unfinished episode, deleted

    @property
    def changed(self) -> bool:
        return bool(self.dropped or self.restored or self.staged_frames)

    def summary(self, root: Path) -> str:
        what = []
        if self.staged_frames:
            what.append(f"{self.staged_frames} camera frame(s)")
        if self.dropped:
            what.append("partial files " + ", ".join(self.dropped))
        if self.restored:
            what.append("rolled back " + ", ".join(self.restored))
        return (f"{root}: kept {self.episodes} finished episode(s); dropped the unfinished episode "
                f"({'; '.join(what)})")


def recover(root: Path, adopt: bool = True) -> Recovery:
    """Make the dataset at `root` consistent again after a killed recording; see the module docstring.
    `adopt`: record a consistent dataset that the commit does not describe as the new commit.

    Raises DatasetDamagedError when it is inconsistent and no commit can restore it. Call it holding the
    dataset's WriterLock, or after `being_written(root)` said no: a live recording is not a killed one."""
    root = Path(root)
    for tmp in (root / "meta").glob(".*.tmp"):  # a commit cut short: the previous one stands
        tmp.unlink(missing_ok=True)
    result = Recovery(episodes=0, staged_frames=_drop_staging(root))
    problems = inconsistencies(root)
    commit = read_commit(root)
    if problems:
        if commit is None:
            raise DatasetDamagedError(
                f"the dataset at {root} is damaged ({'; '.join(problems[:3])}) and has no commit record "
                f"({COMMIT_FILE}: it was recorded before chunkbot kept one, or by another tool), so its episodes "
                "cannot be recovered automatically; record into a new --dataset.root")
        _roll_back(root, commit, result)
        problems = inconsistencies(root)
        if problems:
            raise DatasetDamagedError(f"the dataset at {root} is still inconsistent after rolling it back to its "
                                      f"last commit ({'; '.join(problems[:3])}); restore a copy or record anew")
    info = json.loads((root / INFO).read_text())
    result.episodes = int(info["total_episodes"])
    if adopt and (commit is None or commit["episodes"] != result.episodes or commit["files"] != _tracked_files(root)):
        write_commit(root)  # the dataset as it is: the next recovery rolls back to this state
    return result


def inconsistencies(root: Path) -> list[str]:
    """Why LeRobot would fail to read the dataset at `root`, or read it wrong (empty: it is consistent)."""
    root = Path(root)
    try:
        info = json.loads((root / INFO).read_text())
        episodes, frames = int(info["total_episodes"]), int(info["total_frames"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{INFO} is unreadable ({type(e).__name__})"]
    problems: list[str] = []
    rows: dict[str, int] = {}
    for directory in ("data", _EPISODES_DIR):
        rows[directory] = 0
        for path in sorted((root / directory).glob("*/*.parquet")):
            try:
                rows[directory] += pq.read_metadata(path).num_rows
            except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a truncated file
                problems.append(f"{path.relative_to(root)} is incomplete ({type(e).__name__})")
    if not problems:
        if rows[_EPISODES_DIR] != episodes:
            problems.append(f"{_EPISODES_DIR} holds {rows[_EPISODES_DIR]} episode(s), {INFO} says {episodes}")
        if rows["data"] != frames:
            problems.append(f"data/ holds {rows['data']} frame(s), {INFO} says {frames}")
    if episodes > 0:
        try:
            json.loads((root / STATS).read_text())
        except (OSError, ValueError) as e:
            problems.append(f"{STATS} is unreadable ({type(e).__name__})")
        try:
            pq.read_metadata(root / TASKS)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{TASKS} is unreadable ({type(e).__name__})")
    return problems


def _roll_back(root: Path, commit: dict[str, Any], result: Recovery) -> None:
    files: dict[str, int] = commit["files"]
    for rel, size in files.items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != size:
            raise DatasetDamagedError(
                f"the dataset at {root} is damaged beyond the unfinished episode: {rel}, a file of a finished "
                f"episode, is {'missing' if not path.is_file() else 'changed'}; restore a copy of the dataset")
    for rel in sorted(set(_tracked_files(root)) - set(files)):
        (root / rel).unlink()
        result.dropped.append(rel)
    for tmp_dir in root.glob("tmp*"):  # LeRobot encodes an episode's video in a temp dir under the root
        if tmp_dir.is_dir() and all(p.suffix == ".mp4" for p in tmp_dir.rglob("*") if p.is_file()):
            shutil.rmtree(tmp_dir)
    for rel, text in commit["metadata"].items():
        path = root / rel
        if text is None:
            if path.exists():
                path.unlink()
                result.restored.append(rel)
            continue
        data = base64.b64decode(text) if rel == TASKS else text.encode()
        if not path.exists() or path.read_bytes() != data:
            _atomic_write(path, data)
            result.restored.append(rel)


def _drop_staging(root: Path) -> int:
    """Delete the camera frames of an episode that was being recorded; returns how many there were."""
    staging = root / _STAGING_DIR
    if not staging.is_dir():
        return 0
    frames = max((sum(1 for p in d.iterdir() if p.is_file()) for d in staging.glob("*/episode-*") if d.is_dir()),
                 default=0)
    shutil.rmtree(staging)
    return frames


# ----------------------------------------------------------------------------------------- helpers
def _tracked_files(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for directory in _TRACKED_DIRS:
        base = root / directory
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    out[path.relative_to(root).as_posix()] = path.stat().st_size
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory; the rename is still atomic there
        pass
    finally:
        os.close(fd)
