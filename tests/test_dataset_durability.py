"""A SIGKILL loses at most the episode in progress: recordings killed in a subprocess (tools.record,
the HIL session's dataset, a kill inside an episode's save) read back with LeRobot's own
LeRobotDataset, and resume keeps every finished episode and says what it dropped."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robot.config import RobotConfig, TeleoperatorConfig
from robot.dataset_commit import DatasetDamagedError
from robot.recording import VIDEO_BACKEND, DatasetRecorder, open_dataset
from tools.record import DatasetRecordConfig, RecordConfig, record

REPO = Path(__file__).resolve().parents[1]
# a small robot for the recorder-level tests: two joints and one camera
FEATURES = {"a.pos": float, "b.pos": float, "front": (24, 24, 3)}
ACTIONS = ["a.pos", "b.pos"]


def lerobot_dataset(root: Path, repo_id: str):
    """LeRobot's own reader, with no chunkbot code between it and the files."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id, root=root, video_backend=VIDEO_BACKEND)


# Each variant records into its root and is cut by a SIGKILL at the point its name says. One interpreter
# imports LeRobot once and forks a child per variant (the import costs seconds; the kills are real).
# The recorder variants: episode e has 4 + e frames and every value in it is e (state, action, image), so
# a frame read back names its episode; the fourth episode is the one cut.
KILL_HARNESS = """
import os, signal, sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from hil.dataset import SessionDataset
from robot.features import dataset_features
from robot.recording import DatasetRecorder


def recorder(root, kill_at):
    rec = DatasetRecorder("local/killed", root, 30, {"a.pos": float, "b.pos": float, "front": (24, 24, 3)},
                          ["a.pos", "b.pos"])
    for e in range(4):
        for i in range(4 + e):
            frame = {"observation.state": np.full(2, e, np.float32),
                     "observation.images.front": np.full((24, 24, 3), 10 * e, np.uint8)}
            rec.add_frame(frame, np.full(2, e, np.float32), reward=0.0, success=False, done=False, task="t")
        if e < 3:
            rec.save_episode()
    if kill_at == "while_recording":
        die()
    rec._wait_for_commit()  # as save_episode does first: the third episode's commit is on disk
    rec.dataset.save_episode()  # LeRobot has written the episode; chunkbot has not committed it yet
    if kill_at == "while_info_json_is_rewritten":
        info = os.path.join(root, "meta", "info.json")
        text = open(info).read()
        open(info, "w").write(text[: len(text) // 2])
    die()


def hil_session(root):
    ds = SessionDataset("local/hil_lift", root, 30, {"a.pos": float, "b.pos": float}, ["a.pos", "b.pos"])
    for e in range(2):
        n = 5
        frames = [{"observation.state": np.full(2, e, np.float32)} for _ in range(n)]
        human = np.arange(n) >= 3  # the person took over at step 3
        ds.write_episode(frames, np.zeros((n, 2), np.float32), np.zeros(n, np.float32), success=e == 1,
                         terminated=e == 1, intervention=human, chunk_index=np.where(human, -1, 0),
                         chunk_step=np.where(human, -1, np.arange(n)), chunk_interrupted=~human & (e == 0),
                         task="lift")
    die()


def lerobot_alone(root):  # LeRobot's writer by itself, as chunkbot recorded before it committed episodes
    feats = dataset_features({"a.pos": float, "b.pos": float}, ["a.pos", "b.pos"])
    ds = LeRobotDataset.create("local/old", 30, feats, root=root, use_videos=False)
    for e in range(3):
        for _ in range(4):
            ds.add_frame({"observation.state": np.zeros(2, np.float32), "action": np.zeros(2, np.float32),
                          "next.reward": np.zeros(1, np.float32), "next.success": np.zeros(1, bool),
                          "next.done": np.zeros(1, bool), "task": "t"})
        ds.save_episode()
    die()


def die():  # inside the variant: its objects must not be collected (LeRobot's __del__ finalizes)
    os.kill(os.getpid(), signal.SIGKILL)


for name, root in zip(sys.argv[1::2], sys.argv[2::2]):
    pid = os.fork()
    if pid == 0:
        try:
            if name.startswith("recorder:"):
                recorder(root, name.split(":")[1])
            else:
                globals()[name](root)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    print(name, os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exit%d" % os.WEXITSTATUS(status))
"""
KILL_POINTS = ("while_recording", "after_lerobot_wrote_the_episode", "while_info_json_is_rewritten")


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict[str, Path]:
    """{variant: dataset root} of recordings SIGKILLed in a subprocess (see KILL_HARNESS)."""
    base = tmp_path_factory.mktemp("killed")
    names = [f"recorder:{k}" for k in KILL_POINTS] + ["hil_session", "lerobot_alone"]
    roots = {name: base / name.replace(":", "_") for name in names}
    args = [str(x) for name, root in roots.items() for x in (name, root)]
    proc = subprocess.run([sys.executable, "-c", KILL_HARNESS, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [x for name in names for x in (name, "9")], proc.stdout + proc.stderr[-3000:]
    return roots


def _config(root: Path, episodes: int, **dataset) -> RecordConfig:
    robot = RobotConfig.get_choice_class("sim_so101")(task="lift")
    robot.cameras, robot.image_height, robot.image_width = ["front"], 32, 32
    return RecordConfig(robot=robot, teleop=TeleoperatorConfig.get_choice_class("scripted")(),
                        dataset=DatasetRecordConfig(repo_id="local/test_lift", root=root, num_episodes=episodes,
                                                    **dataset), progress=False)


@pytest.mark.slow
def test_tools_record_sigkilled_after_11_of_30_episodes_keeps_all_11_and_resume_continues(tmp_path, caplog):
    root = tmp_path / "ds"
    cmd = [sys.executable, "-m", "tools.record", "--robot.type=sim_so101", "--robot.task=lift",
           "--robot.cameras=[front]", "--robot.image_height=32", "--robot.image_width=32", "--teleop.type=scripted",
           "--dataset.repo_id=local/test_lift", f"--dataset.root={root}", "--dataset.num_episodes=30",
           "--realtime=true"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read(1), b"")],
                              daemon=True)
    reader.start()
    deadline = time.time() + 240
    while b"11/30" not in bytes(seen) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert b"11/30" in bytes(seen), bytes(seen)[-2000:].decode(errors="replace")
    time.sleep(0.3)  # into the 12th episode (real time: ~0.9 s of frames each)
    proc.kill()
    proc.wait(timeout=30)
    reader.join(timeout=5)

    ds = lerobot_dataset(root, "local/test_lift")
    assert ds.num_episodes == 11 and len(ds) == ds.meta.total_frames
    ends = [int(i) for i in ds.meta.episodes["dataset_to_index"]]
    assert all(bool(ds[e - 1]["next.success"].item()) for e in ends)  # every kept episode is whole
    assert tuple(ds[ends[-1] - 1]["observation.images.front"].shape) == (3, 32, 32)

    with caplog.at_level(logging.INFO, logger="robot.recording"):
        record(_config(root, episodes=2, resume=True))
    dropped = [r.getMessage() for r in caplog.records if "dropped the unfinished episode" in r.getMessage()]
    assert len(dropped) == 1 and "camera frame(s)" in dropped[0], caplog.text
    assert lerobot_dataset(root, "local/test_lift").num_episodes == 13


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_recording_killed_mid_episode_reads_back_its_finished_episodes_and_resumes(killed, kill_at, caplog):
    root = killed[f"recorder:{kill_at}"]
    if kill_at == "while_recording":  # between two saves the files on disk are a whole dataset
        assert lerobot_dataset(root, "local/killed").num_episodes == 3
    else:  # inside a save they are not: a footerless parquet file, or a half-written info.json
        with pytest.raises(Exception):  # noqa: B017
            lerobot_dataset(root, "local/killed")
    with caplog.at_level(logging.WARNING, logger="robot.recording"):
        ds = open_dataset("local/killed", root)  # rolls a kill inside the save back to the last commit
    assert ds.num_episodes == 3 and ds.num_frames == 4 + 5 + 6
    if kill_at == "while_recording":
        assert "dropped the unfinished episode (7 camera frame(s))" in caplog.text
    else:
        assert "dropped the unfinished episode" in caplog.text and "data/chunk-000/file-003.parquet" in caplog.text
    with DatasetRecorder("local/killed", root, 30, FEATURES, ACTIONS, resume=True) as rec:
        for _ in range(3):
            rec.add_frame({"observation.state": np.full(2, 7, np.float32),
                           "observation.images.front": np.full((24, 24, 3), 70, np.uint8)},
                          np.full(2, 7, np.float32), reward=1.0, success=True, done=True, task="t")
        rec.save_episode()
    ds = lerobot_dataset(root, "local/killed")
    states = np.stack([ds[i]["observation.state"].numpy() for i in range(len(ds))])[:, 0]
    assert states.tolist() == [0] * 4 + [1] * 5 + [2] * 6 + [7] * 3
    assert ds[len(ds) - 1]["episode_index"].item() == 3
    assert abs(float(ds[len(ds) - 1]["observation.images.front"].mean()) - 70 / 255) < 0.01


def test_a_hil_session_dataset_keeps_its_finished_episodes_and_flags_through_a_sigkill(killed):
    ds = lerobot_dataset(killed["hil_session"], "local/hil_lift")
    assert ds.num_episodes == 2
    cols = ds.hf_dataset.with_format("numpy")[:]
    assert np.asarray(cols["complementary_info.is_intervention"]).ravel().tolist() == [False] * 3 + [True] * 2 + \
        [False] * 3 + [True] * 2
    assert np.asarray(cols["complementary_info.chunk_step"]).ravel().tolist()[:5] == [0, 1, 2, -1, -1]
    assert np.asarray(cols["next.success"]).ravel().tolist() == [False] * 9 + [True]


def test_resuming_a_killed_dataset_without_a_commit_record_says_what_to_do(killed):
    root = killed["lerobot_alone"]
    with pytest.raises(DatasetDamagedError, match="cannot be recovered automatically; record into a new"):
        DatasetRecorder("local/old", root, 30, {"a.pos": float, "b.pos": float}, ACTIONS, resume=True)
    with pytest.raises(RuntimeError, match="is damaged"):
        open_dataset("local/old", root)


def test_tools_record_reports_an_unrecoverable_dataset_in_one_line(tmp_path, monkeypatch, capsys):
    from tools.record import main

    root = tmp_path / "ds"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text('{"total_episodes": 3, "total_fra')  # cut short, no commit record
    (root / "data" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000" / "file-000.parquet").write_bytes(b"PAR1" + b"\0" * 100)
    monkeypatch.setattr(sys, "argv", ["record", "--robot.type=sim_so101", "--robot.task=lift", "--teleop.type=scripted",
                                      f"--dataset.root={root}", "--dataset.resume=true", "--progress=false"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the dataset at") and "record into a new --dataset.root" in err[-1]


def test_a_live_recording_is_neither_rolled_back_by_a_reader_nor_shared_with_a_second_recorder(tmp_path):
    from robot.dataset_commit import DatasetBusyError

    root = tmp_path / "ds"
    frame = {"observation.state": np.zeros(2, np.float32), "observation.images.front": np.zeros((24, 24, 3), np.uint8)}
    with DatasetRecorder("local/live", root, 30, FEATURES, ACTIONS) as live:
        for _ in range(2):
            live.add_frame(frame, np.zeros(2), reward=0.0, success=False, done=False, task="t")
        live.save_episode()
        live.add_frame(frame, np.zeros(2), reward=0.0, success=False, done=False, task="t")  # episode in progress
        staged = sorted((root / "images").rglob("*.png"))
        assert len(staged) == 1
        assert open_dataset("local/live", root).num_episodes == 1  # reads the finished episode...
        assert sorted((root / "images").rglob("*.png")) == staged  # ...and leaves the live one's frames alone
        with pytest.raises(DatasetBusyError, match="being recorded by another process"):
            DatasetRecorder("local/live", root, 30, FEATURES, ACTIONS, resume=True)
        live.add_frame(frame, np.zeros(2), reward=0.0, success=False, done=False, task="t")
        live.save_episode()
    with DatasetRecorder("local/live", root, 30, FEATURES, ACTIONS, resume=True) as again:  # the lock went with it
        assert again.num_episodes == 2
