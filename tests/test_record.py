"""tools.record writes LeRobotDatasets that read back, and keeps finished episodes on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robot.config import RobotConfig, TeleoperatorConfig
from robot.recording import DatasetRecorder, open_dataset
from tests.signals import ctrl_c_live
from tools.record import DatasetRecordConfig, RecordConfig, record

REPO = Path(__file__).resolve().parents[1]


def _config(root: Path, episodes: int, **dataset) -> RecordConfig:
    return RecordConfig(
        robot=RobotConfig.get_choice_class("sim_so101")(task="lift"),
        teleop=TeleoperatorConfig.get_choice_class("scripted")(),
        dataset=DatasetRecordConfig(repo_id="local/test_lift", root=root, num_episodes=episodes, **dataset),
        progress=False,
    )


def test_recorded_dataset_reads_back_with_features_and_episode_count(tmp_path):
    root = record(_config(tmp_path / "ds", episodes=2))
    ds = open_dataset("local/test_lift", root)
    assert ds.num_episodes == 2
    assert ds.features["observation.state"]["names"][:6] == [
        "shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]
    assert ds.features["action"]["shape"] == (6,)
    last = ds[ds.num_frames - 1]
    # the scripted expert lifts the cube: the episode ends on the success frame, flagged done
    assert bool(last["next.success"].item()) and bool(last["next.done"].item())
    assert float(last["next.reward"].item()) == 1.0
    first = ds[0]
    assert not bool(first["next.done"].item())


def test_steps_after_success_keep_recording_past_a_success_each_frame_labelled(tmp_path):
    root = record(_config(tmp_path / "ds", episodes=1, steps_after_success=6))
    ds = open_dataset("local/test_lift", root)
    cols = ds.hf_dataset.select_columns(["next.success", "next.done"]).with_format("numpy")[:]
    success = np.asarray(cols["next.success"]).reshape(-1).astype(bool)
    done = np.asarray(cols["next.done"]).reshape(-1).astype(bool)
    first = int(np.argmax(success))
    assert success.any() and len(success) == first + 7          # the success frame and the 6 after it
    assert success[first:].sum() >= 5                           # the expert keeps the cube up
    assert done.tolist() == [False] * (len(done) - 1) + [True]  # done only on the episode's last frame


def test_resume_appends_episodes_and_refuses_to_overwrite_silently(tmp_path):
    root = tmp_path / "ds"
    record(_config(root, episodes=1))
    with pytest.raises(FileExistsError, match="resume"):
        record(_config(root, episodes=1))
    record(_config(root, episodes=1, resume=True))
    assert open_dataset("local/test_lift", root).num_episodes == 2


def test_camera_frames_are_stored_as_uint8_images(tmp_path):
    cfg = _config(tmp_path / "ds", episodes=1)
    cfg.robot.cameras = ["front"]
    cfg.robot.image_height = cfg.robot.image_width = 32
    root = record(cfg)
    ds = open_dataset("local/test_lift", root)
    assert ds.features["observation.images.front"]["shape"] == (32, 32, 3)
    img = ds[0]["observation.images.front"]  # LeRobot returns C x H x W floats in [0, 1]
    assert tuple(img.shape) == (3, 32, 32) and float(img.max()) > 0.05


def test_missing_dataset_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools.record"):
        open_dataset("local/none", tmp_path / "nothing")


def test_recorder_rejects_resuming_with_other_features(tmp_path):
    feats = {"a.pos": float}
    with DatasetRecorder("local/x", tmp_path / "d", 30, feats, ["a.pos"]) as rec:
        rec.add_frame({"observation.state": np.zeros(1, np.float32)}, np.zeros(1), 0.0, False, False, "t")
        rec.save_episode()
    with pytest.raises(ValueError, match="new --dataset.root"):
        DatasetRecorder("local/x", tmp_path / "d", 30, {"a.pos": float, "b.pos": float}, ["a.pos"], resume=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_or_sigterm_mid_episode_keeps_every_finished_episode(tmp_path, sig):
    root = tmp_path / "ds"
    cmd = [sys.executable, "-m", "tools.record", "--robot.type=sim_so101", "--robot.task=lift",
           "--teleop.type=scripted", "--dataset.repo_id=local/test_lift", f"--dataset.root={root}",
           "--dataset.num_episodes=100", "--realtime=true"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env,
                            preexec_fn=ctrl_c_live)
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read(1), b"")],
                              daemon=True)
    reader.start()
    deadline = time.time() + 180
    while b"2/100" not in bytes(seen) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert b"2/100" in bytes(seen), bytes(seen)[-2000:].decode(errors="replace")
    time.sleep(0.3)  # into the third episode (real time: ~1 s per episode)
    proc.send_signal(sig)
    assert proc.wait(timeout=240) == 0
    reader.join(timeout=5)
    ds = open_dataset("local/test_lift", root)
    assert ds.num_episodes >= 2
    # the episode cut by Ctrl-C is not stored half-way: every stored episode ends in success
    ends = [int(i) for i in ds.meta.episodes["dataset_to_index"]]
    assert all(bool(ds[e - 1]["next.success"].item()) for e in ends)
