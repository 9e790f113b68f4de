"""The study's OGBench play-data generator writes what OGBench's own loader reads, and the offline
buffer built from it follows the single-task env's reward and termination conventions."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ogbench")

from benchmarks.study.ogbench_data import (  # noqa: E402
    collect_play_episodes,
    generate_play_dataset,
    make_ogbench_env,
    offline_buffer_from_npz,
    save_npz_atomic,
    val_path,
)

NAME = "cube-single-play-singletask-task1-v0"
EPISODES, LENGTH = 2, 60


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("ogb") / "cube-single.npz"
    return generate_play_dataset(NAME, path, num_episodes=EPISODES, episode_length=LENGTH, seed=0, val_episodes=1)


def test_generated_files_hold_ogbench_layout(dataset):
    raw = np.load(dataset)
    assert set(raw.files) == {"observations", "actions", "terminals", "qpos", "qvel"}
    assert raw["observations"].shape == (EPISODES * LENGTH, 28)
    assert raw["actions"].shape == (EPISODES * LENGTH, 5)
    assert np.abs(raw["actions"]).max() <= 1.0
    # one terminal per play episode, on its last step
    assert np.flatnonzero(raw["terminals"]).tolist() == [LENGTH - 1, 2 * LENGTH - 1]
    assert raw["qpos"].shape[0] == raw["qvel"].shape[0] == EPISODES * LENGTH
    assert val_path(dataset).is_file()


def test_ogbench_loader_reads_generated_files_and_relabels_rewards(dataset):
    import ogbench

    env, train, val = ogbench.make_env_and_datasets(NAME, dataset_path=str(dataset), add_info=True)
    env.close()
    # OGBench drops each episode's last observation as a transition start
    assert train["observations"].shape == (EPISODES * (LENGTH - 1), 28)
    assert train["next_observations"].shape == train["observations"].shape
    assert val["observations"].shape == (LENGTH - 1, 28)
    assert {"rewards", "masks", "qpos", "qvel"} <= set(train)
    assert set(np.unique(train["rewards"])) <= {-1.0, 0.0}


def test_generator_is_deterministic_per_seed(dataset):
    again = collect_play_episodes("cube-single", num_episodes=EPISODES, episode_length=LENGTH, seed=0)
    np.testing.assert_array_equal(np.load(dataset)["actions"], again["actions"])


def test_buffer_reads_the_data_as_the_official_code_does(dataset, tmp_path):
    """Place the cube on task1's goal at step k of the data: OGBench's relabelling gives step k (the
    state s_k) reward 0 and mask 0; the play episode goes on from it (no trajectory end), so the step
    is absorbing for the bootstrap only, and the trajectory still ends with its play episode."""
    env = make_ogbench_env(NAME)
    env.reset(seed=0)
    goal = env.unwrapped._data.mocap_pos.copy()[0]
    raw = dict(np.load(dataset))
    k = 20
    raw["qpos"][k, 14:17] = goal
    path = tmp_path / "with_success.npz"
    save_npz_atomic(path, raw)
    save_npz_atomic(val_path(path), raw)

    buf = offline_buffer_from_npz(NAME, path, env=env)
    n = buf.size
    acted = buf.acted[:n].numpy()
    terminal = np.flatnonzero(buf.terminal[:n].numpy())
    assert len(terminal) == 1
    j = terminal[0]
    assert buf.step_in_episode[j] == k and not buf.last[j]        # s_k, and the play goes on
    rewards = buf.reward[:n].numpy()
    assert rewards[j] == 0.0 and np.all(rewards[acted & (np.arange(n) != j)] == -1.0)
    assert int(buf.last[:n].sum()) == EPISODES                     # one trajectory per play episode
    assert float(buf.action[:n].abs().max()) <= 1 - 1e-5
