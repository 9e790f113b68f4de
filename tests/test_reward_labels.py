"""benchmarks.reward_labels: its replay of a sim Lift recording reproduces the recorded success labels (what
its diagnosis rests on), and it names why a frame after a success is negative."""

from __future__ import annotations

import numpy as np

from benchmarks.reward_labels import replay, why_negative
from robot.config import RobotConfig, TeleoperatorConfig
from robot.recording import open_dataset
from tools.record import DatasetRecordConfig, RecordConfig, record


def test_the_replay_reproduces_a_recordings_success_labels_frame_by_frame(tmp_path):
    cfg = RecordConfig(
        robot=RobotConfig.get_choice_class("sim_so101")(task="lift", obs_mode="pixels", image_height=64,
                                                        image_width=64),
        teleop=TeleoperatorConfig.get_choice_class("scripted")(noise=0.03, seed=3),
        dataset=DatasetRecordConfig(repo_id="local/labels", root=tmp_path / "ds", num_episodes=1,
                                    steps_after_success=8),
        seed=3, progress=False,
    )
    root = record(cfg)
    cols = open_dataset("local/labels", root).hf_dataset.select_columns(["next.success"]).with_format("numpy")[:]
    recorded = np.asarray(cols["next.success"]).reshape(-1).astype(bool)
    (rows,) = replay(noise=0.03, seed=3, episodes=1, steps_after_success=8)
    assert recorded.any()
    assert rows[:, 3].astype(bool).tolist() == recorded.tolist()
    held_up = (rows[:, 0] >= 0.05) & (rows[:, 1] > 0) & (rows[:, 2] > 0)
    assert held_up.tolist() == recorded.tolist()     # the label is the cube held 5 cm up, nothing else


def test_a_negative_frame_is_named_by_height_and_contact():
    assert why_negative(0.045, True, True) == "held, below 5 cm"
    assert why_negative(0.06, True, False) == "up, a pad off it (contact flicker)"
    assert why_negative(0.01, False, False) == "dropped or let go, below 5 cm"
