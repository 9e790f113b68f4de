"""Nothing an actor sends can wedge or poison the HIL learner: every batch is checked before any
buffer is touched, a bad one is refused whole, a non-finite loss stops learning without publishing,
and the actor keeps its policy when weights are unsound."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hil.batch import robot_features
from hil.learner import HILLearner, HILLearnerConfig
from hil.weights import ActorPolicy
from link import BatchRejected
from policy.config import QChunkSACConfig
from policy.replay import ChunkReplayBuffer

torch.set_num_threads(1)
D, A, H = 6, 6, 5
NAMES = [f"j{i}.pos" for i in range(A)]


def features() -> dict:
    return robot_features(D, NAMES, {}, 30.0, np.full(A, -100.0), np.full(A, 100.0))


def episode(t: int = 20, seed: int = 0, **change) -> tuple[dict, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    arrays = {"state": rng.normal(size=(t, D)).astype(np.float32), "action": rng.normal(size=(t, A)).astype(np.float32),
              "reward": np.zeros(t, np.float32), "intervention": np.arange(t) < t // 2,
              "final_state": rng.normal(size=(1, D)).astype(np.float32)}
    arrays.update(change)
    return {"terminated": False, "features": features(), "episode": 0, "end": "time_limit"}, arrays


def policy_config() -> QChunkSACConfig:
    return QChunkSACConfig(num_critics=2, critic_hidden_dims=[32, 32], actor_hidden_dims=[32, 32], batch_size=16,
                           act_chunk_size=H)


def learner(**kw) -> HILLearner:
    return HILLearner(policy_config(), HILLearnerConfig(**{"learning_starts": 10_000, **kw}))


def test_an_episode_whose_state_is_wider_than_its_features_say_is_rejected_and_the_next_one_is_taken():
    hil = learner()
    hil.add_episode(*episode(seed=1))
    with pytest.raises(BatchRejected, match="state"):
        hil.add_episode(*episode(state=np.zeros((20, D + 1), np.float32)))
    assert hil.add_episode(*episode(seed=2)) == 20                     # not wedged
    assert hil.env_steps == 40 and len(hil.online) == 40 and len(hil.demos) == 20


@pytest.mark.parametrize("change", [
    {"state": np.full((20, D), np.nan, np.float32)},
    {"reward": np.full(20, np.inf, np.float32)},
    {"action": np.full((20, A), -np.inf, np.float32)},
    {"final_state": np.full((1, D), np.nan, np.float32)},
], ids=["nan_state", "inf_reward", "inf_action", "nan_final_state"])
def test_non_finite_values_are_rejected_before_any_buffer_is_touched(change):
    hil = learner()
    hil.add_episode(*episode(seed=1))
    state_before = hil.online.state.clone()
    with pytest.raises(BatchRejected, match="NaN or infinite"):
        hil.add_episode(*episode(**change))
    assert hil.env_steps == 20 and torch.equal(hil.online.state, state_before)


@pytest.mark.parametrize("change, message", [
    ({"state": np.zeros((20, D), np.float64)}, "float64"),
    ({"reward": np.zeros(19, np.float32)}, "reward"),
    ({"intervention": np.zeros(20, np.uint8)}, "intervention"),
    ({"extra": np.zeros(3, np.float32)}, "arrays"),
    ({"action": np.zeros((0, A), np.float32)}, "steps"),
], ids=["dtype", "length", "flag_dtype", "unknown_array", "empty"])
def test_a_batch_that_is_not_exactly_an_episode_is_rejected(change, message):
    with pytest.raises(BatchRejected, match=message):
        learner().add_episode(*episode(**change))


def test_an_episode_from_another_robot_is_rejected():
    hil = learner()
    hil.add_episode(*episode())
    meta, arrays = episode()
    meta["features"] = robot_features(D, [f"k{i}" for i in range(A)], {}, 30.0, np.full(A, -1.0), np.full(A, 1.0))
    with pytest.raises(BatchRejected, match="new --output_dir"):
        hil.add_episode(meta, arrays)


def test_the_replay_buffer_refuses_a_wider_state_whole_and_stays_open_for_the_next_episode():
    buf = ChunkReplayBuffer(100, D, A)
    good = lambda t: (np.zeros((t, D), np.float32), np.zeros((t, A), np.float32), np.zeros(t, np.float32))  # noqa: E731
    with pytest.raises(ValueError, match="refused an episode"):
        buf.add_episode(np.zeros((5, D + 1), np.float32), *good(5)[1:], False, np.zeros(D, np.float32))
    assert buf.size == 0 and buf.num_episodes == 0
    buf.add_episode(*good(5), False, np.zeros(D, np.float32))
    assert len(buf) == 5


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_non_finite_loss_stops_learning_publishes_nothing_more_and_writes_no_checkpoint(tmp_path):
    hil = learner(learning_starts=20, initial_updates=1, publish_every=1)
    hil.add_episode(*episode(40, seed=1))
    hil.update()
    assert hil.diverged is None and hil.version == 1
    big = np.full(40, np.finfo(np.float32).max, np.float32)      # finite rewards whose returns overflow
    hil.add_episode(*episode(40, seed=2, reward=big))
    versions = []
    for _ in range(50):
        if hil.diverged:
            break
        versions.append(hil.version)
        hil.update()
    assert hil.diverged and "non-finite" in hil.diverged
    published = hil.weights()
    assert published[0] == hil.version == versions[-1]             # nothing published after the bad update
    assert ActorPolicy(H, tuple(NAMES), 30.0).load(*published)    # what is out is sound
    assert hil.updates_due() == 0 and hil.run_due_updates() == 0
    assert hil.save(tmp_path) is None


def test_the_actor_keeps_its_policy_when_new_weights_are_not_finite_or_of_another_shape():
    from hil.weights import policy_to_bytes
    from policy.qchunk_sac import QChunkSACPolicy

    config = policy_config().with_features(D, NAMES, {}, 30.0)
    good = QChunkSACPolicy(config)
    actor = ActorPolicy(H, tuple(NAMES), 30.0)
    assert actor.load(1, policy_to_bytes(good, 1)) and actor.version == 1
    poisoned = QChunkSACPolicy(config)
    with torch.no_grad():
        next(poisoned.parameters()).fill_(float("nan"))
    assert not actor.load(2, policy_to_bytes(poisoned, 2))
    wider = QChunkSACPolicy(QChunkSACConfig(num_critics=2, critic_hidden_dims=[32, 32], actor_hidden_dims=[64, 64],
                                            batch_size=16, act_chunk_size=H).with_features(D, NAMES, {}, 30.0))
    assert not actor.load(3, policy_to_bytes(wider, 3))
    assert not actor.load(4, b"not safetensors at all")
    assert actor.version == 1 and actor.policy is not None
    assert all(torch.isfinite(p).all() for p in actor.policy.parameters())


def test_relative_actions_take_their_scale_from_the_persons_largest_step():
    import dataclasses

    hil = HILLearner(dataclasses.replace(policy_config(), relative_actions=True),
                     HILLearnerConfig(learning_starts=20, initial_updates=0))
    t = 20
    joints = np.zeros((t, D), np.float32)
    actions = np.zeros((t, A), np.float32)
    actions[3, 2] = 1.5                       # the person moves joint 2 by 1.5 in one step, once
    hil.add_episode(*episode(t, state=joints, action=actions, intervention=np.ones(t, bool)))
    hil.update()
    step = hil.policy.normalizer.action_step.numpy()
    assert step[2] == pytest.approx(1.5 * 1.25) and step[0] < step[2]   # STEP_MARGIN: the largest step sits at 0.8


@pytest.mark.parametrize("utd", [1, 3])
def test_each_env_step_is_owed_utd_ratio_updates(utd):
    import dataclasses

    hil = HILLearner(dataclasses.replace(policy_config(), utd_ratio=utd),
                     HILLearnerConfig(learning_starts=20, initial_updates=6))
    hil.add_episode(*episode(20, seed=1))
    hil.run_due_updates()
    assert hil.learner.step == -(-7 // utd) * utd      # initial_updates + 1, in whole steps of utd updates
    first = hil.learner.step
    hil.add_episode(*episode(20, seed=2))        # 20 more env steps: 20 * utd updates more
    hil.run_due_updates()
    assert hil.learner.step - first == pytest.approx(20 * utd, abs=utd)
