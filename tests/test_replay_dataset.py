"""Offline buffer from a LeRobotDataset with chunkbot's RL features (written here, read back offline)."""

from __future__ import annotations

import numpy as np
import pytest

from robot.features import dataset_features

OBS_FEATURES = {"shoulder_pan.pos": float, "gripper.pos": float, "cam": (8, 8, 3)}
ACTION_NAMES = ("shoulder_pan.pos", "gripper.pos")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path_factory.mktemp("ds") / "demo"
    ds = LeRobotDataset.create("local/qc_test", 10, dataset_features(OBS_FEATURES, ACTION_NAMES), root=root,
                               use_videos=False)
    # episode 0: 4 frames, terminates (success) on the last; episode 1: 3 frames, ends on time
    for ep, (length, terminated) in enumerate([(4, True), (3, False)]):
        for t in range(length):
            last = t == length - 1
            ds.add_frame({"observation.state": np.array([100 * ep + t, 0], np.float32),
                          "observation.images.cam": np.full((8, 8, 3), 10 * ep + t, np.uint8),
                          "action": np.array([100 * ep + t, -t], np.float32),
                          "next.reward": np.array([1.0 if (last and terminated) else 0.0], np.float32),
                          "next.success": np.array([last and terminated]), "next.done": np.array([last and terminated]),
                          "task": "lift"})
        ds.save_episode()
    ds.finalize()
    return LeRobotDataset("local/qc_test", root=root)


@pytest.mark.slow  # importing lerobot.datasets alone takes 10-30 s on a shared 2-core machine
def test_dataset_loads_into_an_offline_buffer_with_episode_ends_done_right(dataset):
    from policy.replay import offline_buffer_from_dataset

    buf = offline_buffer_from_dataset(dataset, ["cam"])
    # the terminated episode keeps all 4 actions; the time-limited one gives its last action up to
    # provide the observation to bootstrap from
    assert len(buf) == 4 + 2 and buf.is_offline
    w = buf.gather(np.array([3]), 2, 2, 0.9)                   # episode 0, last step: success
    assert w.discounted_return.item() == pytest.approx(1.0) and w.bootstrap_discount.item() == 0.0
    w = buf.gather(np.array([5 + 1]), 2, 2, 0.9)               # episode 1, step 1: ends on time after it
    assert w.bootstrap_discount.item() == pytest.approx(0.9)
    assert w.next_state[0, -1, 0].item() == 102                # the dataset's last frame as s_T
    assert w.truncated_early.item()
    assert int(w.images["cam"][0, 0, 0, 0]) == 11 and int(w.next_images["cam"][0, 0, 0, 0]) == 12
