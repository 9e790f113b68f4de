"""Several envs stepping in worker processes (tools.train --num_envs=N): each env's steps form their own
well-formed episodes in the online replay, the update schedule counts every env's steps, and a run resumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy.checkpoint import last_checkpoint, load_checkpoint
from policy.config import preset
from policy.envs import make_env
from policy.replay import ChunkReplayBuffer, ReplayStreams
from policy.runner import ChunkRunner
from policy.training import TrainConfig, train
from policy.vector_runner import ENV_SEED_STRIDE, VectorChunkRunner

TOY = "chunkbot/PointReach-v0"
LIFT = "chunkbot/SO101Lift-v0"


def tiny_job(out, steps=120, **kw) -> TrainConfig:
    policy = preset("qc", num_critics=2, critic_hidden_dims=[16], actor_hidden_dims=[16], batch_size=16)
    base = dict(env_name=TOY, policy=policy, num_demos=2, steps=steps, warmup_steps=40, eval_every=60,
                eval_episodes=2, save_every=60, output_dir=str(out), progress_bar=False, num_threads=1, num_envs=2)
    return TrainConfig(**{**base, **kw})


def episodes(buf: ChunkReplayBuffer) -> list[dict[str, np.ndarray]]:
    """The buffer's episodes in slot order (it never wrapped): acted states and the final observation."""
    acted, last = buf.acted[: buf.size].numpy(), buf.last[: buf.size].numpy()
    states, steps = buf.state[: buf.size].numpy(), buf.step_in_episode[: buf.size].numpy()
    out, start = [], 0
    for j in range(buf.size):
        if not acted[j]:                      # the observation after an episode's last action
            assert j > start and last[j - 1], f"slot {j}: an observation-only slot that ends no episode"
            assert list(steps[start: j + 1]) == list(range(j + 1 - start)), "step counter restarts only at an episode"
            out.append({"states": states[start:j], "final": states[j]})
            start = j + 1
    return out


def first_observations(env_name: str, seed: int, count: int, **env_kwargs) -> np.ndarray:
    env = make_env(env_name, **env_kwargs)
    return np.stack([env.reset(seed=seed + k)[0]["observation.state"] for k in range(count)])


def test_each_envs_stream_is_what_a_chunk_runner_on_that_env_alone_writes():
    rng = np.random.default_rng(0)
    chunks = rng.uniform(-1, 1, (30, 2, 5, 2)).astype(np.float32)
    buffers = [ChunkReplayBuffer(500, 4, 2) for _ in range(2)]
    seen: list[list[tuple[np.ndarray, bool]]] = [[], []]
    observers = [lambda o, start, i=i: seen[i].append((o["observation.state"], start)) for i in range(2)]
    with VectorChunkRunner(TOY, {}, 2, buffers, seed=3, observers=observers) as vector:
        for round_chunks in chunks:
            vector.run_chunks(list(round_chunks))
    for i in range(2):
        alone, alone_seen = ChunkReplayBuffer(500, 4, 2), []
        runner = ChunkRunner(make_env(TOY), alone, 3 + i * ENV_SEED_STRIDE,
                             lambda o, start: alone_seen.append((o["observation.state"], start)))  # noqa: B023
        for chunk in chunks[:, i]:
            runner.run_chunk(chunk)
        for name in ("state", "action", "reward", "terminal", "last", "acted", "step_in_episode"):
            assert torch.equal(getattr(buffers[i], name), getattr(alone, name)), (i, name)
        assert len(seen[i]) == len(alone_seen)
        assert all(np.array_equal(a, b) and s == t for (a, s), (b, t) in zip(seen[i], alone_seen))


def test_training_with_two_envs_fills_one_well_formed_stream_per_env(tmp_path):
    train(tiny_job(tmp_path, steps=150))
    _, learner, buffers, extra = load_checkpoint(last_checkpoint(tmp_path))
    assert extra["env_step"] == 150 and extra["num_envs"] == 2
    assert learner.step == 150 - 40 + 1                  # utd_ratio (1) updates per env step, both envs counted
    assert set(buffers) == {"offline", "online_0", "online_1"}
    assert len(buffers["online_0"]) + len(buffers["online_1"]) == 150
    for i in range(2):
        eps = episodes(buffers[f"online_{i}"])
        assert len(eps) >= 2
        starts = first_observations(TOY, i * ENV_SEED_STRIDE, len(eps))
        for ep, start in zip(eps, starts):
            assert np.array_equal(ep["states"][0], start)     # env i's episode k starts at its reset(seed_i + k)
            assert 1 <= len(ep["states"]) <= 30               # the toy env's time limit
            goal = ep["states"][:, 2:]                        # the goal never changes inside one env's episode
            assert np.array_equal(goal, np.broadcast_to(goal[0], goal.shape))
            assert np.array_equal(ep["final"][2:], goal[0])


def test_a_sim_task_in_state_mode_trains_with_two_envs(tmp_path):
    policy = preset("qc", num_critics=2, critic_hidden_dims=[16], actor_hidden_dims=[16], batch_size=16)
    train(TrainConfig(env_name=LIFT, policy=policy, num_demos=0, steps=60, warmup_steps=30, max_episode_steps=12,
                      eval_every=0, eval_episodes=1, save_every=0, output_dir=str(tmp_path), progress_bar=False,
                      num_threads=1, num_envs=2))
    _, learner, buffers, extra = load_checkpoint(last_checkpoint(tmp_path))
    assert extra["env_step"] == 60 and learner.step == 60 - 30 + 1
    assert len(buffers["online_0"]) + len(buffers["online_1"]) == 60
    for i in range(2):
        eps = episodes(buffers[f"online_{i}"])
        assert len(eps) >= 2 and all(len(ep["states"]) <= 12 for ep in eps)
        starts = first_observations(LIFT, i * ENV_SEED_STRIDE, len(eps), max_episode_steps=12)
        for ep, start in zip(eps, starts):
            assert np.array_equal(ep["states"][0], start)     # env i's episode k starts at its reset(seed_i + k)


def test_resume_with_two_envs_continues_the_step_count_and_both_streams(tmp_path):
    train(tiny_job(tmp_path, steps=60, eval_every=0))
    _, _, before, _ = load_checkpoint(last_checkpoint(tmp_path))
    train(tiny_job(tmp_path, steps=100, eval_every=0, resume=True))
    _, learner, after, extra = load_checkpoint(last_checkpoint(tmp_path))
    assert extra["env_step"] == 100 and learner.step == 100 - 40 + 1
    assert len(after["online_0"]) + len(after["online_1"]) == 100
    for i in range(2):
        old, new = before[f"online_{i}"], after[f"online_{i}"]
        assert torch.equal(new.state[: old.size], old.state[: old.size])   # kept; the new steps follow it
        assert not new._open_episode or new.size > old.size
        episodes(new)   # the interrupted episode was closed: every episode still ends where it should


def test_resuming_with_another_number_of_envs_is_refused_naming_the_right_one(tmp_path):
    train(tiny_job(tmp_path, steps=60, eval_every=0))
    with pytest.raises(ValueError, match="--num_envs=2"):
        train(tiny_job(tmp_path, steps=100, eval_every=0, resume=True, num_envs=1))


def test_fewer_than_one_env_is_refused():
    with pytest.raises(ValueError, match="--num_envs=0"):
        TrainConfig(num_envs=0)


def test_a_worker_whose_env_cannot_be_made_reports_why():
    with pytest.raises(RuntimeError, match="env worker 0 failed.*cannot make env 'chunkbot/NoSuchEnv-v0'"):
        VectorChunkRunner("chunkbot/NoSuchEnv-v0", {}, 1)


def test_streams_are_sampled_in_proportion_to_their_steps_and_never_mixed():
    streams = []
    for sign, episodes_count in ((1.0, 30), (-1.0, 10)):   # stream 0: positive states, stream 1: negative
        buf = ChunkReplayBuffer(2_000, 1, 1, seed=int(sign > 0))
        for _ in range(episodes_count):
            buf.add_episode(sign * np.arange(1, 11, dtype=np.float32)[:, None], np.zeros((10, 1)), np.ones(10),
                            False, np.array([sign * 11.0]))
        streams.append(buf)
    batch = ReplayStreams(streams, seed=0).sample(4_000, 5, 5, 0.9)
    from_first = (batch.state[:, -1, 0] > 0).float().mean().item()
    assert 0.72 < from_first < 0.78                             # 300 of 400 steps
    assert torch.equal(batch.state[:, -1, 0] > 0, batch.next_state[:, -1, 0] > 0)   # a window stays in its stream
