"""Chunk windows worked by hand: returns, bootstraps and masks across episode ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy.replay import ChunkReplayBuffer, MixedSampler

G = 0.5  # discount that makes the hand sums exact


def frame(v: float, image: int | None = None) -> dict[str, np.ndarray]:
    f = {"observation.state": np.array([v], np.float32)}
    if image is not None:
        f["observation.images.cam"] = np.full((4, 5, 3), image, np.uint8)
    return f


def two_episodes(capacity: int = 32) -> ChunkReplayBuffer:
    """Episode A: 4 steps, rewards 1..4, terminates. Episode B: 3 steps, rewards 10,20,30, time limit.
    State value = 100*episode + step; action value = the same, so windows can be read off."""
    buf = ChunkReplayBuffer(capacity, state_dim=1, action_dim=1)
    for t, r in enumerate([1, 2, 3, 4]):
        buf.add(frame(t), [t], r, terminated=t == 3, truncated=False, next_observation=frame(4))
    for t, r in enumerate([10, 20, 30]):
        buf.add(frame(100 + t), [100 + t], r, terminated=False, truncated=t == 2, next_observation=frame(103))
    return buf


# slots: A0..A3 = 0..3, A_final = 4, B0..B2 = 5..7, B_final = 8
def window(buf, slot, h=3, n=3, history=1):
    return buf.gather(np.array([slot]), h, n, G, history)


def test_chunk_inside_episode_sums_h_rewards_and_bootstraps_with_gamma_h():
    w = window(two_episodes(), 0)
    assert w.discounted_return.item() == pytest.approx(1 + G * 2 + G**2 * 3)
    assert w.bootstrap_discount.item() == pytest.approx(G**3)
    assert w.next_state[0, -1, 0].item() == 3
    assert w.actions[0, :, 0].tolist() == [0, 1, 2]
    assert not w.truncated_early.item() and not w.terminated_early.item()


def test_chunk_cut_by_termination_stops_the_return_masks_the_bootstrap_pads_actions_and_is_flagged():
    w = window(two_episodes(), 2)
    assert w.discounted_return.item() == pytest.approx(3 + G * 4)
    assert w.bootstrap_discount.item() == 0.0
    assert w.actions[0, :, 0].tolist() == [2, 3, 3]
    assert w.terminated_early.item() and not w.truncated_early.item()
    assert w.next_state[0, -1, 0].item() == 4  # the stored final observation


def test_termination_on_the_chunks_last_step_is_a_full_chunk_with_no_bootstrap():
    w = window(two_episodes(), 1)
    assert w.discounted_return.item() == pytest.approx(2 + G * 3 + G**2 * 4)
    assert w.bootstrap_discount.item() == 0.0
    assert not w.terminated_early.item() and not w.truncated_early.item()


def test_last_step_before_termination_returns_its_reward_only():
    w = window(two_episodes(), 3)
    assert w.discounted_return.item() == pytest.approx(4)
    assert w.bootstrap_discount.item() == 0.0
    assert w.actions[0, :, 0].tolist() == [3, 3, 3]


def test_chunk_cut_by_time_limit_bootstraps_at_the_truncation_step_and_is_flagged():
    w = window(two_episodes(), 6)  # B1, B2 then the time limit
    assert w.discounted_return.item() == pytest.approx(20 + G * 30)
    assert w.bootstrap_discount.item() == pytest.approx(G**2)
    assert w.next_state[0, -1, 0].item() == 103
    assert w.truncated_early.item() and not w.terminated_early.item()
    assert w.n_step_used.item() == 2


def test_time_limit_on_the_chunks_last_step_is_an_ordinary_full_chunk():
    w = window(two_episodes(), 5)
    assert w.discounted_return.item() == pytest.approx(10 + G * 20 + G**2 * 30)
    assert w.bootstrap_discount.item() == pytest.approx(G**3)
    assert not w.truncated_early.item()


def test_rewards_of_the_next_episode_never_enter_the_return():
    w = window(two_episodes(), 3, h=5, n=5)
    assert w.discounted_return.item() == pytest.approx(4)


def test_n_step_horizon_shorter_than_the_chunk_bootstraps_after_n_steps():
    w = window(two_episodes(), 0, h=3, n=2)
    assert w.discounted_return.item() == pytest.approx(1 + G * 2)
    assert w.bootstrap_discount.item() == pytest.approx(G**2)
    assert w.next_state[0, -1, 0].item() == 2
    assert w.actions.shape == (1, 3, 1)


def test_history_repeats_the_first_frame_before_the_episode_start():
    w = window(two_episodes(), 6, history=3)  # B1: history B0, B0, B1
    assert w.state[0, :, 0].tolist() == [100, 100, 101]
    assert w.next_state[0, :, 0].tolist() == [101, 102, 103]


def test_sampling_never_starts_on_a_final_observation_or_an_unfinished_window():
    buf = two_episodes()
    # an open episode whose windows are not complete yet
    for t in range(2):
        buf.add(frame(200 + t), [200 + t], 0.0, False, False)
    b = buf.sample(512, 3, 3, G)
    starts = b.state[:, -1, 0].numpy()
    assert set(np.unique(starts)) <= {0, 1, 2, 3, 100, 101, 102}
    assert {0, 3, 102} <= set(np.unique(starts))


def test_ring_overwrite_invalidates_windows_that_reach_overwritten_slots():
    buf = ChunkReplayBuffer(6, 1, 1)
    for t in range(5):  # slots 0..4 and the final observation in slot 5
        buf.add(frame(t), [t], 1.0, False, t == 4, next_observation=frame(5))
    buf.add(frame(50), [50], 1.0, False, False)  # overwrites slot 0 with a new, open episode
    b = buf.sample(256, 2, 2, G)
    assert set(np.unique(b.state[:, -1, 0].numpy())) == {1, 2, 3, 4}


def test_images_are_stored_uint8_at_raw_size_and_returned_with_the_window():
    buf = ChunkReplayBuffer(16, 1, 1, {"cam": (4, 5, 3)})
    for t in range(3):
        buf.add(frame(t, image=t), [t], 0.0, False, t == 2, next_observation=frame(3, image=3))
    assert buf.image_bytes_per_frame == 4 * 5 * 3
    assert buf.images["cam"].dtype == torch.uint8
    w = buf.gather(np.array([1]), 2, 2, G)
    assert w.images["cam"].dtype == torch.uint8
    assert int(w.images["cam"][0, 0, 0, 0]) == 1 and int(w.next_images["cam"][0, 0, 0, 0]) == 3


def test_save_and_load_round_trip_gives_the_same_samples(tmp_path):
    buf = two_episodes()
    buf.save(tmp_path / "buf.npz")
    back = ChunkReplayBuffer.load(tmp_path / "buf.npz")
    a, b = buf.sample(64, 3, 3, G), back.sample(64, 3, 3, G)
    assert torch.equal(a.state, b.state) and torch.equal(a.discounted_return, b.discounted_return)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_saved_buffer_holds_only_its_written_frames_and_loads_back_at_full_capacity(tmp_path):
    small, big = ChunkReplayBuffer(16, 1, 1, {"cam": (4, 5, 3)}), ChunkReplayBuffer(4096, 1, 1, {"cam": (4, 5, 3)})
    for buf in (small, big):
        for t in range(3):
            buf.add(frame(t, image=t), [t], float(t), False, t == 2, next_observation=frame(3, image=3))
        buf.save(tmp_path / f"{buf.capacity}.npz")
    # the file grows with what was written, not with the capacity
    assert (tmp_path / "4096.npz").stat().st_size < 2 * (tmp_path / "16.npz").stat().st_size
    back = ChunkReplayBuffer.load(tmp_path / "4096.npz")
    assert back.capacity == 4096 and back.size == 4 and back.images["cam"].shape == (4096, 4, 5, 3)
    assert torch.equal(back.images["cam"][:4], big.images["cam"][:4])
    for t in range(3, 6):   # and it goes on filling where it stopped
        back.add(frame(t, image=t), [t], 0.0, False, t == 5, next_observation=frame(6, image=6))
    assert back.size == 8 and int(back.images["cam"][7, 0, 0, 0]) == 6


def test_a_wrapped_buffer_round_trips_every_slot(tmp_path):
    buf = ChunkReplayBuffer(6, 1, 1, {"cam": (4, 5, 3)})
    for t in range(9):
        buf.add(frame(t, image=t), [t], float(t), False, t == 8, next_observation=frame(9, image=9))
    assert buf.size == buf.capacity and buf.cursor != 0
    buf.save(tmp_path / "buf.npz")
    back = ChunkReplayBuffer.load(tmp_path / "buf.npz")
    assert back.cursor == buf.cursor and torch.equal(back.images["cam"], buf.images["cam"])
    assert torch.equal(back.state, buf.state) and torch.equal(back.step_in_episode, buf.step_in_episode)


def test_mixed_sampler_draws_half_offline_half_online():
    off = two_episodes()
    off.is_offline = True
    on = two_episodes()
    batch = MixedSampler(on, off, 0.5).sample(64, 3, 3, G)
    assert int(batch.is_offline.sum()) == 32 and len(batch.is_offline) == 64


def test_mixed_sampler_uses_offline_only_before_online_data_exists():
    off = two_episodes()
    off.is_offline = True
    empty = ChunkReplayBuffer(8, 1, 1)
    batch = MixedSampler(empty, off, 0.5).sample(16, 3, 3, G)
    assert bool(batch.is_offline.all())


def test_an_absorbing_step_inside_a_trajectory_masks_the_bootstrap_but_the_return_goes_on():
    buf = ChunkReplayBuffer(16, 1, 1)   # offline play data: the success state at step 1 does not end it
    buf.add_episode(np.arange(4.0)[:, None], np.arange(4.0)[:, None], np.array([-1.0, 0.0, -1.0, -1.0]),
                    False, np.array([4.0]), terminals=np.array([False, True, False, False]))
    w = buf.gather(np.array([0]), 3, 3, G)
    assert w.discounted_return.item() == pytest.approx(-1 + 0 - G**2)
    assert w.bootstrap_discount.item() == 0.0
    assert not w.terminated_early.item() and not w.truncated_early.item()
    w = buf.gather(np.array([2]), 2, 2, G)   # after the absorbing step: bootstraps again, then the time limit
    assert w.bootstrap_discount.item() == pytest.approx(G**2) and w.next_state[0, -1, 0].item() == 4


def test_closing_an_interrupted_episode_keeps_it_apart_from_the_next_one():
    buf = ChunkReplayBuffer(32, 1, 1)
    for t in range(4):  # an episode cut off by a crash: no end, no final observation
        buf.add(frame(t), [t], 1.0, False, False)
    buf.close_open_episode()
    for t in range(3):
        buf.add(frame(50 + t), [50 + t], 1.0, False, t == 2, next_observation=frame(53))
    w = buf.gather(np.array([2]), 3, 3, G)  # step 2 is now the last action, s_3 the final observation
    assert w.discounted_return.item() == pytest.approx(1.0) and w.bootstrap_discount.item() == pytest.approx(G)
    assert w.next_state[0, -1, 0].item() == 3 and w.truncated_early.item()
    starts = buf.sample(256, 3, 3, G).state[:, -1, 0].numpy()
    assert 3 not in set(np.unique(starts))


def test_moving_a_buffer_to_its_own_device_keeps_the_same_buffer():
    buf = two_episodes()
    assert buf.to("cpu") is buf


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_buffer_moved_to_cuda_gathers_the_windows_it_gathered_on_the_cpu():
    buf = two_episodes()
    moved = buf.to("cuda", seed=3)
    here, there = buf.gather(np.array([0, 2, 5]), 3, 3, G), moved.gather(torch.tensor([0, 2, 5], device="cuda"), 3, 3, G)
    for name in ("state", "actions", "discounted_return", "bootstrap_discount", "next_state", "terminated_early"):
        torch.testing.assert_close(getattr(there, name).cpu(), getattr(here, name), msg=name)
    moved.add(frame(7), [7], 1.0, terminated=True, truncated=False, next_observation=frame(8))
    assert len(moved) == len(buf) + 1 and moved.sample(4, 3, 3, G).state.device.type == "cuda"


def long_run(steps: int = 400, episode: int = 40) -> ChunkReplayBuffer:
    """Episodes of `episode` steps, state = slot-free step counter, then an open episode of 2 steps."""
    buf = ChunkReplayBuffer(1024, 1, 1, seed=1)
    for t in range(steps):
        end = t % episode == episode - 1
        buf.add(frame(t), [t], 0.0, False, end, next_observation=frame(-1))
    for t in range(2):
        buf.add(frame(1000 + t), [1000 + t], 0.0, False, False)
    return buf


def test_the_no_sync_sampler_draws_only_complete_windows_uniformly():
    buf = long_run()
    assert buf._complete_fraction_at_least(3, 1) >= 0.9
    starts = torch.cat([buf._starts_without_sync(128, 3, 1) for _ in range(200)])
    drawn = buf.state[starts, 0].numpy()
    assert set(np.unique(drawn)) == set(range(400))              # every complete start, no final or open slot
    counts = np.bincount(drawn.astype(int), minlength=400)
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.6 * counts.mean()


def test_a_buffer_with_few_complete_windows_keeps_the_exact_sampler():
    buf = two_episodes()
    for t in range(2):
        buf.add(frame(200 + t), [200 + t], 0.0, False, False)
    assert buf._complete_fraction_at_least(3, 1) < 0.9   # a GPU buffer this empty would check its draws
