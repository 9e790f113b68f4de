"""The critic's layout has one owner, the learner: a checkpoint's critic loads back as the learner's online
critic, and the exported graph's chunk value is the learner's own Q of the mean chunk, for both critic modes
(the chunked critic with the mean over critics, the first-action critic with the min)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.graph import ChunkActorGraph
from policy.checkpoint import load_critic, save_checkpoint
from policy.config import QChunkSACConfig
from policy.learner import QChunkSACLearner, critic_input_dim
from policy.qchunk_sac import QChunkSACPolicy

MODES = {"chunked": {}, "first_action": {"q_chunking_strategy": "standard"}}


def trained_learner(mode: str) -> QChunkSACLearner:
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=3, num_critics=3, critic_hidden_dims=[16, 16], actor_hidden_dims=[16],
                          **MODES[mode]).with_features(4, ["a", "b"], {}, 10.0)
    policy = QChunkSACPolicy(cfg)
    policy.normalizer.fit(np.random.default_rng(0).normal(size=(64, 4)), [-1.0, -2.0], [1.0, 2.0])
    learner = QChunkSACLearner(policy)
    with torch.no_grad():  # weights unlike a fresh critic's, so a critic built anew could not pass
        for p in learner.critic.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return learner


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_checkpoints_critic_loads_back_as_the_learners_online_critic(tmp_path, mode):
    learner = trained_learner(mode)
    checkpoint = save_checkpoint(tmp_path, 7, learner.policy, learner)
    critic = load_critic(learner.policy, checkpoint)
    x = torch.randn(5, critic_input_dim(learner.policy))
    with torch.no_grad():
        torch.testing.assert_close(critic(x), learner.critic(x), rtol=0, atol=0)
    assert not critic.training


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_exported_chunk_value_is_the_learners_q_of_the_mean_chunk(mode):
    learner = trained_learner(mode)
    policy = learner.policy.eval()
    graph = ChunkActorGraph(policy, learner.critic, fuse_images=False)
    state = torch.randn(6, 4)
    _, q, value = graph(state)
    with torch.no_grad():
        states = state.unsqueeze(1)
        features = policy.features(states, [])
        mean, _ = policy.distribution(features, states)
        expected = learner._actor_q(features, torch.tanh(mean))
    assert q.shape == (6, 3)
    torch.testing.assert_close(value, expected)


def test_loading_the_critic_of_a_bare_policy_says_to_point_at_a_training_checkpoint(tmp_path):
    learner = trained_learner("chunked")
    learner.policy.save_pretrained(tmp_path / "pretrained_model")
    with pytest.raises(FileNotFoundError, match="point at a training checkpoint"):
        load_critic(learner.policy, tmp_path)
