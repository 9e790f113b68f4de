"""Actor distribution, critic ensemble and target update against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from policy.config import QChunkSACConfig
from policy.critic import CriticEnsemble, polyak_update
from policy.distributions import sample_tanh_gaussian, tanh_gaussian_log_prob
from policy.encoder import random_shift
from policy.qchunk_sac import QChunkSACPolicy


def reference_log_prob(action, mean, log_std):
    dist = TransformedDistribution(Independent(Normal(mean, log_std.exp()), 1), [TanhTransform()])
    return dist.log_prob(action)


def test_joint_log_prob_of_a_sample_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(4, 6, generator=g) * 0.5, torch.randn(4, 6, generator=g) * 0.3 - 0.5
    action, log_prob = sample_tanh_gaussian(mean, log_std, torch.Generator().manual_seed(1))
    torch.testing.assert_close(log_prob, reference_log_prob(action, mean, log_std), rtol=1e-4, atol=1e-4)


def test_log_prob_of_given_actions_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mean, log_std = torch.randn(3, 10, generator=g), torch.full((3, 10), -0.3)
    action = torch.rand(3, 10, generator=g) * 1.8 - 0.9
    torch.testing.assert_close(tanh_gaussian_log_prob(action, mean, log_std),
                               reference_log_prob(action, mean, log_std), rtol=1e-4, atol=1e-4)


def test_joint_log_prob_is_the_sum_over_the_chunks_actions():
    """log pi(a_{0:h}) of a diagonal Gaussian chunk = sum of the per-action log-probs."""
    g = torch.Generator().manual_seed(3)
    mean, log_std = torch.randn(2, 5 * 3, generator=g), torch.randn(2, 5 * 3, generator=g) * 0.2
    action = torch.tanh(torch.randn(2, 15, generator=g))
    per_action = sum(tanh_gaussian_log_prob(action[:, 3 * i:3 * i + 3], mean[:, 3 * i:3 * i + 3],
                                            log_std[:, 3 * i:3 * i + 3]) for i in range(5))
    torch.testing.assert_close(tanh_gaussian_log_prob(action, mean, log_std), per_action)


def separate_critic(ens: CriticEnsemble, k: int) -> nn.Sequential:
    """Critic k of the ensemble rebuilt from nn.Linear / nn.LayerNorm / nn.ReLU modules."""
    layers: list[nn.Module] = []
    n_hidden = len(ens.ln_weights)
    for i in range(n_hidden + 1):
        w, b = (ens.weights[i][:, k] if i == 0 else ens.weights[i][k]), ens.biases[i][k, 0]
        lin = nn.Linear(*w.shape)
        lin.weight.data.copy_(w.T)
        lin.bias.data.copy_(b)
        layers.append(lin)
        if i < n_hidden:
            ln = nn.LayerNorm(w.shape[1], eps=1e-6)
            ln.weight.data.copy_(ens.ln_weights[i][k, 0])
            ln.bias.data.copy_(ens.ln_biases[i][k, 0])
            layers += [ln, nn.ReLU()]
    return nn.Sequential(*layers)


def test_batched_ensemble_equals_k_separate_critics():
    torch.manual_seed(0)
    ens = CriticEnsemble(in_dim=7, hidden_dims=[16, 8, 12], num_critics=4)
    with torch.no_grad():  # distinct LayerNorm affines per critic, so a mix-up would show
        for p in list(ens.ln_weights) + list(ens.ln_biases):
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(5, 7)
    expected = torch.stack([separate_critic(ens, k)(x).squeeze(-1) for k in range(4)])
    torch.testing.assert_close(ens(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ens(x[:, :5], x[:, 5:]), expected, rtol=1e-5, atol=1e-5)  # [features, actions] apart


def test_ensemble_gradients_reach_every_critic_separately():
    torch.manual_seed(1)
    ens = CriticEnsemble(3, [8, 8], 3)
    ens(torch.randn(4, 3))[1].sum().backward()  # only critic 1's output
    grad = ens.weights[1].grad
    assert grad[1].abs().sum() > 0 and grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0


def test_polyak_update_moves_targets_tau_of_the_way():
    target, online = [torch.zeros(3), torch.ones(2, 2)], [torch.ones(3) * 4, torch.ones(2, 2) * 3]
    polyak_update(target, online, 0.25)
    torch.testing.assert_close(target[0], torch.ones(3))
    torch.testing.assert_close(target[1], torch.ones(2, 2) * 1.5)  # 0.75 * 1 + 0.25 * 3


def test_random_shift_keeps_dtype_and_shape_and_moves_content_by_at_most_pad():
    img = torch.zeros(1, 9, 9, 3, dtype=torch.uint8)
    img[0, 4, 4] = 255
    out = random_shift(img.repeat(64, 1, 1, 1), pad=2, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == (64, 9, 9, 3)
    ys, xs = np.nonzero(out[..., 0].numpy().max(0))
    assert ys.min() >= 2 and ys.max() <= 6 and xs.min() >= 2 and xs.max() <= 6
    assert len(set(zip(ys.tolist(), xs.tolist()))) > 5  # the shift varies across the batch


@pytest.mark.parametrize("pad", [1, 4])
def test_random_shift_is_a_crop_of_the_replicate_padded_image_at_the_drawn_offset(pad):
    images = torch.randint(0, 256, (6, 11, 7, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = random_shift(images, pad, torch.Generator().manual_seed(0))

    draws = torch.Generator().manual_seed(0)     # the same draws, in the same order: dy for all, then dx
    dy, dx = (torch.randint(0, 2 * pad + 1, (6,), generator=draws) for _ in range(2))
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="replicate")
    for k in range(6):
        crop = padded[k, :, dy[k]:dy[k] + 11, dx[k]:dx[k] + 7].permute(1, 2, 0).to(torch.uint8)
        assert torch.equal(out[k], crop)
    assert out.permute(0, 3, 1, 2).is_contiguous()   # channels-first memory: the convolutions' rounding as before


@pytest.mark.parametrize("use_act_actor, use_images", [(False, False), (True, True)])
def test_policy_predicts_a_chunk_in_robot_units_within_bounds(use_act_actor, use_images):
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=4, use_act_actor=use_act_actor, use_images=use_images, obs_history_length=2,
                          actor_hidden_dims=[32], critic_hidden_dims=[32]).with_features(
        3, ["j0", "j1"], {"cam": (16, 16, 3)}, 30.0)
    pol = QChunkSACPolicy(cfg)
    pol.normalizer.fit(np.random.default_rng(0).normal(size=(50, 3)), [0.0, -100.0], [100.0, 100.0])
    frame = {"observation.state": np.ones(3, np.float32), "observation.images.cam": np.zeros((16, 16, 3), np.uint8),
             "state_history": np.zeros((1, 3), np.float32)}
    chunk = pol.predict_chunk(frame)
    assert chunk.shape == (4, 2) and chunk.dtype == np.float32
    assert (chunk[:, 0] >= 0).all() and (chunk[:, 0] <= 100).all() and (np.abs(chunk[:, 1]) <= 100).all()


def test_ensemble_without_autograd_gives_the_same_q_as_with_it():
    torch.manual_seed(2)
    ens = CriticEnsemble(6, [16, 16, 16], 3)
    with torch.no_grad():
        for p in list(ens.ln_weights) + list(ens.ln_biases):
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(4, 6)
    with torch.no_grad():
        fast = ens(x[:, :4], x[:, 4:])
    torch.testing.assert_close(fast, ens(x))


def test_images_too_small_for_the_cnn_are_a_clear_error():
    cfg = QChunkSACConfig(use_images=True).with_features(2, ["a"], {"cam": (8, 8, 3)})
    with pytest.raises(ValueError, match="too small"):
        QChunkSACPolicy(cfg)


def history_policy() -> QChunkSACPolicy:
    """An ACT-actor policy reading the last 3 states of 2."""
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=2, obs_history_length=3, use_act_actor=True, actor_hidden_dims=[16],
                          critic_hidden_dims=[16]).with_features(2, ["a"])
    return QChunkSACPolicy(cfg)


def test_a_frames_state_history_is_read_as_the_l_steps_before_its_state():
    pol = history_policy()
    past = np.array([[1.0, 1.0], [2.0, 2.0]], np.float32)
    frame = {"observation.state": np.array([3.0, 3.0], np.float32), "state_history": past}
    expected = pol.deterministic_chunk(torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]]))[0]
    torch.testing.assert_close(torch.from_numpy(pol.predict_chunk(frame)), expected)
    assert pol.history_length == 3


def test_a_history_policy_refuses_a_frame_without_its_state_history_saying_what_to_keep():
    with pytest.raises(ValueError, match=r"no 'state_history' \(\(2, 2\) float32.*ObservationHistory\(3\)"):
        history_policy().predict_chunk({"observation.state": np.zeros(2, np.float32)})


def test_exploration_chunk_moves_the_given_fraction_from_the_mean_to_a_sample():
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=3, actor_hidden_dims=[16], critic_hidden_dims=[16]).with_features(2, ["a"])
    pol = QChunkSACPolicy(cfg)
    frame = {"observation.state": np.array([0.3, -0.2], np.float32)}
    mean = pol.action_chunk(frame, True)
    torch.manual_seed(7)
    sample = pol.action_chunk(frame, False)
    torch.manual_seed(7)
    torch.testing.assert_close(pol.exploration_chunk(frame, 0.2), mean + 0.2 * (sample - mean))
    torch.manual_seed(7)
    torch.testing.assert_close(pol.exploration_chunk(frame, 1.0), sample)
    torch.testing.assert_close(pol.exploration_chunk(frame, 0.0), mean)
    assert not torch.allclose(sample, mean)
