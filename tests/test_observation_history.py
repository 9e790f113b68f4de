"""robot.history.ObservationHistory: the window of an episode's last L frames that the caller keeps
(policies keep none), and one policy serving several episodes, each through its own history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy.config import QChunkSACConfig
from policy.qchunk_sac import QChunkSACPolicy
from robot.history import ObservationHistory


def state(v: float) -> dict[str, np.ndarray]:
    return {"observation.state": np.array([v, -v], np.float32)}


def test_an_episodes_first_frame_fills_the_window_and_later_frames_shift_it_oldest_first():
    history = ObservationHistory(3)
    history.push(state(1.0))
    np.testing.assert_array_equal(history.frame()["state_history"], [[1.0, -1.0], [1.0, -1.0]])
    history.push(state(2.0))
    history.push(state(3.0))
    history.push(state(4.0))
    frame = history.frame()
    np.testing.assert_array_equal(frame["state_history"], [[2.0, -2.0], [3.0, -3.0]])
    np.testing.assert_array_equal(frame["observation.state"], [4.0, -4.0])


def test_an_episode_start_forgets_the_previous_episode():
    history = ObservationHistory(2)
    history.push(state(1.0))
    history.push(state(2.0))
    history.push(state(5.0), episode_start=True)
    np.testing.assert_array_equal(history.frame()["state_history"], [[5.0, -5.0]])
    history.clear()
    with pytest.raises(RuntimeError, match="empty"):
        history.frame()


def test_the_window_keeps_the_newest_frames_images_and_a_copy_of_each_state():
    history = ObservationHistory(1)
    image = np.zeros((4, 4, 3), np.uint8)
    reading = np.array([1.0, 2.0], np.float32)
    history.push({"observation.state": reading, "observation.images.front": image})
    reading[0] = 9.0   # a driver reusing its buffer does not rewrite the past
    frame = history.frame()
    assert frame["observation.images.front"] is image and "state_history" not in frame
    np.testing.assert_array_equal(frame["observation.state"], [1.0, 2.0])


def test_two_interleaved_episodes_through_one_policy_get_the_chunks_each_gets_alone():
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=2, obs_history_length=3, use_act_actor=True, actor_hidden_dims=[16],
                          critic_hidden_dims=[16]).with_features(2, ["a"])
    policy = QChunkSACPolicy(cfg)
    rng = np.random.default_rng(0)
    episodes = [[{"observation.state": rng.normal(0, 3, 2).astype(np.float32)} for _ in range(5)] for _ in range(2)]

    def alone(frames: list[dict[str, np.ndarray]]) -> np.ndarray:
        history, chunks = ObservationHistory(policy.history_length), []
        for frame in frames:
            history.push(frame)
            chunks.append(policy.predict_chunk(history.frame()))
        return np.stack(chunks)

    histories = [ObservationHistory(policy.history_length) for _ in episodes]
    interleaved: list[list[np.ndarray]] = [[], []]
    for t in range(5):
        for i in (1, 0):
            histories[i].push(episodes[i][t])
            interleaved[i].append(policy.predict_chunk(histories[i].frame()))
    for i in (0, 1):
        np.testing.assert_array_equal(np.stack(interleaved[i]), alone(episodes[i]))
    assert np.abs(interleaved[0][4] - interleaved[1][4]).max() > 1e-4   # the two episodes' chunks do differ
