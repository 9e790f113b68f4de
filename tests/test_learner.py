"""The learner's math on hand-built cases: targets, strategies, entropy target, chunk = 1 is SAC."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from policy.config import QChunkSACConfig
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer

G = 0.5


def frame(v: float) -> dict[str, np.ndarray]:
    return {"observation.state": np.array([v], np.float32)}


def episodes_buffer() -> ChunkReplayBuffer:
    """A: rewards 1,2,3,4 then termination (slots 0..3, final 4); B: 10,20,30 then time limit (5..7, final 8)."""
    buf = ChunkReplayBuffer(32, 1, 1)
    for t, r in enumerate([1, 2, 3, 4]):
        buf.add(frame(t), [0.1 * t], r, t == 3, False, next_observation=frame(4))
    for t, r in enumerate([10, 20, 30]):
        buf.add(frame(10 + t), [-0.1 * t], r, False, t == 2, next_observation=frame(13))
    return buf


def make_learner(seed: int = 0, **kw) -> QChunkSACLearner:
    torch.manual_seed(seed)
    base = dict(act_chunk_size=3, num_critics=3, critic_hidden_dims=[16, 16], actor_hidden_dims=[16], discount=G,
                batch_size=8, temperature_init=0.5)
    cfg = QChunkSACConfig(**{**base, **kw}).with_features(1, ["j"], {}, 10.0)
    pol = QChunkSACPolicy(cfg)
    pol.normalizer.fit(np.arange(14, dtype=np.float32)[:, None], [-1.0], [1.0])
    return QChunkSACLearner(pol, torch.Generator().manual_seed(seed))


def constant_target_critics(learner: QChunkSACLearner, values: list[float]) -> None:
    """Make target critic k output values[k] whatever its input (zero last layer, bias = value)."""
    with torch.no_grad():
        learner.critic_target.weights[-1].zero_()
        learner.critic_target.biases[-1].copy_(torch.tensor(values).view(-1, 1, 1))


def test_chunked_target_is_the_chunk_return_plus_gamma_h_times_the_mean_target_q():
    lrn = make_learner()  # paper mode: mean over critics, no entropy in the backup
    constant_target_critics(lrn, [1.0, 2.0, 6.0])
    batch = episodes_buffer().gather(np.array([0, 2, 5]), 3, 3, G)
    y = lrn.td_target(batch, torch.tensor(0.5))
    expected = [1 + G * 2 + G**2 * 3 + G**3 * 3.0,   # full chunk, bootstrap mean(1, 2, 6) = 3
                3 + G * 4,                          # terminated inside: no bootstrap
                10 + G * 20 + G**2 * 30 + G**3 * 3.0]  # time limit on the last step: bootstrap
    torch.testing.assert_close(y, torch.tensor(expected))


def test_first_action_target_is_the_n_step_return_plus_min_q_minus_alpha_joint_log_prob():
    lrn = make_learner(q_chunking_strategy="standard", n_step=2)  # first_action: min, entropy in backup
    constant_target_critics(lrn, [1.0, 2.0, 6.0])
    batch = episodes_buffer().gather(np.array([0, 6]), 3, 2, G)
    # replay the learner's draw of a' ~ pi(.|s') to get log pi(a'_{0:h}|s')
    state = copy.deepcopy(lrn.generator.get_state())
    y = lrn.td_target(batch, torch.tensor(0.5))
    lrn.generator.set_state(state)
    with torch.no_grad():
        _, logp = lrn.policy.sample(lrn.policy.features(batch.next_state, []), batch.next_state, lrn.generator)
    expected = torch.tensor([1 + G * 2, 20 + G * 30]) + G**2 * (1.0 - 0.5 * logp)
    torch.testing.assert_close(y, expected)


def loop_scores(lrn: QChunkSACLearner, feat: torch.Tensor, chunk: torch.Tensor, horizon: int) -> torch.Tensor:
    """The seed's formulation: a python loop scoring Q(s, a_t) action by action, min over critics."""
    a = lrn.config.action_dim
    return torch.stack([lrn.critic(torch.cat([feat, chunk[:, t * a:(t + 1) * a]], -1)).min(0).values
                        for t in range(horizon)])


def test_conservative_strategy_takes_the_min_over_the_first_horizon_actions():
    lrn = make_learner(q_chunking_strategy="conservative", q_chunking_horizon=2, act_chunk_size=4)
    feat, chunk = torch.randn(5, 1), torch.rand(5, 4) * 2 - 1
    expected = loop_scores(lrn, feat, chunk, 2).min(0).values
    torch.testing.assert_close(lrn._actor_q(feat, chunk), expected)


def test_temporal_weighted_strategy_weights_actions_by_normalised_decay():
    lrn = make_learner(q_chunking_strategy="temporal_weighted", q_chunking_horizon=3, q_chunking_decay=0.9)
    torch.testing.assert_close(lrn.strategy_weights, torch.tensor([1.0, 0.9, 0.81]) / 2.71)
    feat, chunk = torch.randn(5, 1), torch.rand(5, 3) * 2 - 1
    q = loop_scores(lrn, feat, chunk, 3)
    torch.testing.assert_close(lrn._actor_q(feat, chunk), (q[0] + 0.9 * q[1] + 0.81 * q[2]) / 2.71)


def test_standard_strategy_scores_the_first_action_only():
    lrn = make_learner(q_chunking_strategy="standard")
    feat, chunk = torch.randn(5, 1), torch.rand(5, 3) * 2 - 1
    changed_tail = chunk.clone()
    changed_tail[:, 1:] = 0.0
    torch.testing.assert_close(lrn._actor_q(feat, chunk), lrn._actor_q(feat, changed_tail))
    torch.testing.assert_close(lrn._actor_q(feat, chunk), loop_scores(lrn, feat, chunk, 1)[0])


def test_chunked_critic_scores_the_whole_chunk():
    lrn = make_learner()
    feat, chunk = torch.randn(5, 1), torch.rand(5, 3) * 2 - 1
    changed_tail = chunk.clone()
    changed_tail[:, 2] = -chunk[:, 2]
    assert not torch.allclose(lrn._actor_q(feat, chunk), lrn._actor_q(feat, changed_tail))


@pytest.mark.parametrize("scaling, expected", [("linear", -0.5 * 3), ("sqrt", -0.5 * 3**0.5), ("none", -0.5)])
def test_temperature_is_trained_towards_the_chunk_scaled_entropy_target(scaling, expected):
    lrn = make_learner(q_chunking_entropy_scaling=scaling)
    assert lrn.target_entropy == pytest.approx(expected)
    metrics = lrn.update([episodes_buffer().sample(8, 3, 3, G)])
    assert metrics["q_chunking/adjusted_entropy"] == pytest.approx(expected)
    # d loss / d log_alpha = -alpha (log pi + target): alpha falls while the entropy is above the target
    assert (metrics["entropy"] > expected) == (lrn.log_alpha.exp().item() < 0.5)


def test_chunked_critic_ignores_chunks_cut_by_a_time_limit_and_first_action_keeps_them():
    batch = episodes_buffer().gather(np.array([0, 6]), 3, 3, G)  # slot 6: B1, B2, time limit
    assert batch.truncated_early.tolist() == [False, True]
    assert make_learner().update([batch])["critic_valid_fraction"] == 0.5
    assert make_learner(q_chunking_strategy="standard").update([batch])["critic_valid_fraction"] == 1.0


def test_chunk_of_one_gives_the_same_update_in_both_critic_modes():
    """h = 1: [f(s), a_{0:1}] = [f(s), a_0] and R, d are one-step: both modes are the same SAC."""
    common = dict(act_chunk_size=1, critic_aggregation="min", backup_entropy=True)
    a, b = make_learner(critic_mode="chunked", **common), make_learner(critic_mode="first_action", **common)
    buf_a, buf_b = episodes_buffer(), episodes_buffer()
    for _ in range(3):
        ma = a.update([buf_a.sample(8, 1, a.config.td_horizon, G)])
        mb = b.update([buf_b.sample(8, 1, b.config.td_horizon, G)])
        assert {k: float(v) for k, v in ma.items()} == pytest.approx({k: float(v) for k, v in mb.items()})
    for pa, pb in zip(a.critic.parameters(), b.critic.parameters()):
        torch.testing.assert_close(pa, pb)


def test_chunk_of_one_target_is_the_sac_target():
    lrn = make_learner(act_chunk_size=1, critic_aggregation="min", backup_entropy=True)
    constant_target_critics(lrn, [4.0, 2.0, 3.0])
    buf = episodes_buffer()
    batch = buf.gather(np.array([1, 3, 7]), 1, 1, G)
    state = copy.deepcopy(lrn.generator.get_state())
    y = lrn.td_target(batch, torch.tensor(0.5))
    lrn.generator.set_state(state)
    with torch.no_grad():
        _, logp = lrn.policy.sample(lrn.policy.features(batch.next_state, []), batch.next_state, lrn.generator)
    r, done = torch.tensor([2.0, 4.0, 30.0]), torch.tensor([0.0, 1.0, 0.0])  # slot 7 ends on time: not done
    torch.testing.assert_close(y, r + G * (1 - done) * (2.0 - 0.5 * logp))


def test_update_with_utd_makes_one_whole_update_per_batch_as_the_official_batch_update():
    lrn = make_learner(utd_ratio=3)
    buf = episodes_buffer()
    lrn.update([buf.sample(8, 3, 3, G) for _ in range(3)])
    assert lrn.optimizers["critic"].state[lrn.critic_params[0]]["step"].item() == 3
    assert lrn.optimizers["actor"].state[lrn.actor_params[0]]["step"].item() == 3
    assert lrn.step == 3


def test_update_reports_the_seed_documents_metric_names():
    metrics = make_learner().update([episodes_buffer().sample(8, 3, 3, G)])
    for name in ("q_chunking/joint_log_prob", "q_chunking/chunk_size", "q_chunking/n_step_returns",
                 "q_chunking/adjusted_entropy", "loss_critic", "loss_actor", "loss_temperature", "alpha", "q_mean"):
        assert torch.isfinite(metrics[name]), name
    assert metrics["q_chunking/chunk_size"] == 3.0


def image_buffer(cams: dict) -> ChunkReplayBuffer:
    rng = np.random.default_rng(0)
    buf = ChunkReplayBuffer(64, 1, 1, cams)
    for t in range(12):
        f = {"observation.state": np.array([t], np.float32),
             "observation.images.cam": rng.integers(0, 256, cams["cam"], dtype=np.uint8)}
        buf.add(f, [0.0], 1.0, False, t == 11, next_observation=f)
    return buf


def test_the_image_encoder_learns_from_the_critic_loss_only():
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=2, num_critics=2, critic_hidden_dims=[16], actor_hidden_dims=[16],
                          use_images=True, discount=G).with_features(1, ["j"], {"cam": (24, 24, 3)}, 10.0)
    pol = QChunkSACPolicy(cfg)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    batch = image_buffer({"cam": (24, 24, 3)}).sample(8, 2, 2, G)
    assert batch.images["cam"].dtype == torch.uint8  # uint8 until the network
    conv = pol.encoder.cameras["cam"].convs[0].weight
    before = conv.detach().clone()
    lrn.update([batch])
    assert not torch.equal(conv, before)  # the critic's optimiser moved the shared CNN
    # the actor loss leaves it alone: its gradient reaches the actor only
    feat = pol.features(batch.state, [batch.images["cam"]]).detach()
    mean, log_std = pol.distribution(feat, batch.state)
    conv.grad = None
    (mean.sum() + log_std.sum()).backward()
    assert conv.grad is None


def test_the_first_action_presets_act_actor_with_observation_history_trains():
    from policy.config import preset

    torch.manual_seed(0)
    cfg = preset("first_action", act_chunk_size=4, obs_history_length=3, num_critics=2, critic_hidden_dims=[16],
                 discount=G).with_features(1, ["j"], {}, 10.0)
    pol = QChunkSACPolicy(cfg)
    lrn = QChunkSACLearner(pol, torch.Generator().manual_seed(0))
    buf = episodes_buffer()
    before = [p.detach().clone() for p in pol.actor.parameters()]
    metrics = lrn.update([buf.sample(8, 4, 4, G, history=3)])
    assert all(torch.isfinite(v) for v in metrics.values())
    assert metrics["q_chunking/chunk_size"] == 4.0 and cfg.critic_mode == "first_action"
    assert any(not torch.equal(b, p) for b, p in zip(before, pol.actor.parameters()))


def test_td_target_bounds_clip_the_target_to_the_returns_the_task_can_pay():
    buf = ChunkReplayBuffer(64, 2, 2, seed=0)
    for t in range(20):
        f = {"observation.state": np.array([t, -t], np.float32)}
        buf.add(f, [0.1, -0.1], float(t == 19), t == 19, False, next_observation=f)
    batch = buf.sample(32, 2, 2, 0.9)
    targets = {}
    for bounds in (None, [0.0, 1.0]):
        torch.manual_seed(0)
        cfg = QChunkSACConfig(act_chunk_size=2, critic_hidden_dims=[16], actor_hidden_dims=[16], discount=0.9,
                              td_target_bounds=bounds).with_features(2, ["a", "b"], {}, 10.0)
        lrn = QChunkSACLearner(QChunkSACPolicy(cfg), torch.Generator().manual_seed(0))
        with torch.no_grad():
            for p in lrn.critic_target.parameters():
                p.add_(3.0)    # an overestimating target critic
        lrn.generator.manual_seed(1)
        targets[str(bounds)] = lrn.td_target(batch, torch.tensor(0.0))
    free, clipped = targets["None"], targets["[0.0, 1.0]"]
    assert free.max() > 1.0
    torch.testing.assert_close(clipped, free.clamp(0.0, 1.0))
