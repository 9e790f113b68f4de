"""Relative joint actions (policy/normalize.py): a chunk is motions from the observed joints, action i
within (i + 1) steps of the demonstrations' largest per-step motion."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from contract import STATE_KEY
from policy.config import QChunkSACConfig
from policy.normalize import STEP_MARGIN, Normalizer, max_action_step
from policy.qchunk_sac import QChunkSACPolicy
from policy.training import check_joint_state

LOW, HIGH = np.array([-100.0, -50.0]), np.array([100.0, 50.0])


def relative(chunk_size: int = 3, step=(2.0, 1.0)) -> Normalizer:
    return Normalizer(4, 2, relative_actions=True, chunk_size=chunk_size).fit(
        np.zeros((5, 4)), LOW, HIGH, action_step=np.asarray(step) / STEP_MARGIN)


def test_unit_zero_holds_the_observed_joints():
    q = torch.tensor([[10.0, -5.0]])
    a = relative().action_from_unit(torch.zeros(1, 3, 2), q)
    torch.testing.assert_close(a, q[:, None].expand(1, 3, 2))


def test_action_i_reaches_i_plus_one_steps_from_the_joints_at_unit_one():
    q = torch.tensor([[10.0, -5.0]])
    a = relative(step=(2.0, 1.0)).action_from_unit(torch.ones(1, 3, 2), q)
    torch.testing.assert_close(a[0], torch.tensor([[12.0, -4.0], [14.0, -3.0], [16.0, -2.0]]))


def test_to_unit_inverts_from_unit_inside_the_bounds():
    norm, q = relative(), torch.tensor([[3.0, 7.0], [-20.0, 0.5]])
    u = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(norm.action_to_unit(norm.action_from_unit(u, q), q), u)


def test_targets_are_clipped_to_the_joint_bounds():
    a = relative(step=(50.0, 50.0)).action_from_unit(torch.ones(1, 3, 2), torch.tensor([[90.0, 40.0]]))
    assert (a <= torch.as_tensor(HIGH, dtype=torch.float32)).all() and a[0, -1].tolist() == [100.0, 50.0]


def test_max_action_step_is_the_largest_motion_per_step_and_joint():
    joints = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    actions = torch.tensor([[[1.0, 0.5], [4.0, -1.0]],      # per step: (1, .5), (2, .5)
                            [[1.0, 1.0], [1.0, 4.0]]])      # per step: (0, 0), (0, 1.5)
    np.testing.assert_allclose(max_action_step(actions, joints), [2.0, 1.5])


def test_without_demonstrations_the_step_is_a_fraction_of_the_joint_range():
    norm = Normalizer(4, 2, relative_actions=True, chunk_size=2).fit(None, LOW, HIGH)
    assert norm.action_step.tolist() == pytest.approx((0.05 * (HIGH - LOW)).tolist())


def _policy() -> QChunkSACPolicy:
    torch.manual_seed(0)
    cfg = QChunkSACConfig(relative_actions=True, actor_hidden_dims=[16], critic_hidden_dims=[16]).with_features(
        4, ["a.pos", "b.pos"], {}, 30.0)
    policy = QChunkSACPolicy(cfg)
    policy.normalizer.fit(np.zeros((2, 4)), LOW, HIGH, action_step=np.array([1.0, 1.0]))
    return policy


def test_a_relative_policy_plans_around_the_joints_it_observes():
    policy = _policy()
    for q in ([50.0, 20.0], [-60.0, -30.0]):
        chunk = policy.predict_chunk({STATE_KEY: np.array([*q, 0.0, 0.0], np.float32)})
        reach = STEP_MARGIN * np.arange(1, policy.chunk_size + 1)[:, None]
        assert np.all(np.abs(chunk - np.array(q)) <= reach + 1e-4)


def test_warm_up_random_chunks_are_local_motions_from_the_present_joints():
    policy = _policy()
    frame = {STATE_KEY: np.array([50.0, 20.0, 0.0, 0.0], np.float32)}
    chunks = torch.stack([policy.random_chunk(frame, torch.Generator().manual_seed(i)) for i in range(20)]).numpy()
    reach = STEP_MARGIN * np.arange(1, policy.chunk_size + 1)[:, None]
    assert np.all(np.abs(chunks - np.array([50.0, 20.0])) <= reach + 1e-4) and chunks.std() > 0.1


def test_saved_relative_policy_reloads_its_step_sizes(tmp_path):
    policy = _policy()
    policy.save_pretrained(tmp_path)
    again = QChunkSACPolicy.from_pretrained(tmp_path)
    torch.testing.assert_close(again.normalizer.action_step, policy.normalizer.action_step)
    frame = {STATE_KEY: np.array([5.0, 1.0, 0.0, 0.0], np.float32)}
    np.testing.assert_allclose(again.predict_chunk(frame), policy.predict_chunk(frame))


def test_relative_actions_accept_the_sim_arm_and_refuse_a_state_that_does_not_start_with_the_joints():
    from robot.sim import tasks  # noqa: F401  (registers the sim envs)

    env = gym.make("chunkbot/SO101Lift-v0")
    names = list(env.unwrapped.state_names)
    check_joint_state(env, QChunkSACConfig(relative_actions=True).with_features(len(names), names[:6], {}, 30.0))
    shuffled = names[1:6] + names[:1]
    with pytest.raises(ValueError, match="relative_actions=false"):
        check_joint_state(env, QChunkSACConfig(relative_actions=True).with_features(len(names), shuffled, {}, 30.0))
