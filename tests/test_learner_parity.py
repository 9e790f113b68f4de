"""chunkbot's learner against the official Q-chunking code (QC-RLPD, JAX), without JAX.

tests/fixtures/qc_official_*.npz hold what the official code computed for a fixed small dataset, fixed
initial weights and three consecutive updates (benchmarks/parity/qc_reference.py made them, in the
official code's own environment). Here chunkbot starts from the same weights, is fed the same batches
and the same normal noise behind every policy sample, and must reproduce the official numbers: the
sampled sequences, the TD targets, Q values, log-probs, losses, gradients, and every weight after each
of the three updates (Adam moments, the temperature and the Polyak-averaged targets included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from policy.config import QChunkSACConfig
from policy.distributions import tanh_gaussian_from_noise
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkBatch, offline_buffer_from_transitions

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = ["qc_h4", "rlpd_h1"]
CRITIC = "modules_critic/VmapStateActionValue_0/"
TARGET = "modules_target_critic/VmapStateActionValue_0/"
ACTOR = "modules_actor/"


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"qc_official_{name}.npz") as z:
        return {k: z[k] for k in z.files}


class ReplayedNoise(QChunkSACLearner):
    """The learner with the official code's noise: its `_sample` draws are replaced, in order, by the
    standard-normal draws behind the official agent's `dist.sample` calls."""

    noise: list[torch.Tensor]

    def _sample(self, mean, log_std):
        return tanh_gaussian_from_noise(mean, log_std, self.noise.pop(0))


def official_config(ref: dict[str, np.ndarray]) -> QChunkSACConfig:
    h, k, bc, temp, discount = ref["config/h_K_bc_temp_discount"]
    obs_dim, action_dim = ref["data/observations"].shape[1], ref["data/actions"].shape[1]
    hidden = [int(ref[f"init/{ACTOR}MLP_0/Dense_0/kernel"].shape[1])] * 2
    cfg = QChunkSACConfig(act_chunk_size=int(h), num_critics=int(k), critic_hidden_dims=hidden,
                          actor_hidden_dims=hidden, bc_weight=float(bc), temperature_init=float(temp),
                          discount=float(discount), normalize_state=False)
    return cfg.with_features(obs_dim, [f"a{i}" for i in range(action_dim)])


def critic_params(ref: dict[str, np.ndarray], prefix: str, key: str) -> dict[str, torch.Tensor]:
    """chunkbot CriticEnsemble state dict from the official flax Ensemble's parameters."""
    t = lambda k: torch.from_numpy(ref[f"{prefix}{key}{k}"].copy())  # noqa: E731
    out = {}
    for i in range(2):
        kernel = t(f"MLP_0/Dense_{i}/kernel")                            # (K, in, out)
        out[f"weights.{i}"] = kernel.permute(1, 0, 2).contiguous() if i == 0 else kernel
        out[f"biases.{i}"] = t(f"MLP_0/Dense_{i}/bias")[:, None]
        out[f"ln_weights.{i}"] = t(f"MLP_0/LayerNorm_{i}/scale")[:, None]
        out[f"ln_biases.{i}"] = t(f"MLP_0/LayerNorm_{i}/bias")[:, None]
    out["weights.2"] = t("Dense_0/kernel")
    out["biases.2"] = t("Dense_0/bias")[:, None]
    return out


def actor_params(ref: dict[str, np.ndarray], key: str) -> dict[str, torch.Tensor]:
    t = lambda k: torch.from_numpy(ref[f"{key}{ACTOR}{k}"].copy())  # noqa: E731
    return {"trunk.0.weight": t("MLP_0/Dense_0/kernel").T, "trunk.0.bias": t("MLP_0/Dense_0/bias"),
            "trunk.2.weight": t("MLP_0/Dense_1/kernel").T, "trunk.2.bias": t("MLP_0/Dense_1/bias"),
            "mean.weight": t("OutputDenseMean/kernel").T, "mean.bias": t("OutputDenseMean/bias"),
            "log_std.weight": t("OutputDenseLogStd/kernel").T, "log_std.bias": t("OutputDenseLogStd/bias")}


def learner_from(ref: dict[str, np.ndarray]) -> ReplayedNoise:
    torch.manual_seed(0)
    policy = QChunkSACPolicy(official_config(ref))
    learner = ReplayedNoise(policy)
    policy.actor.load_state_dict(actor_params(ref, "init/"))
    learner.critic.load_state_dict(critic_params(ref, "init/", CRITIC))
    learner.critic_target.load_state_dict(critic_params(ref, "init/", TARGET))
    with torch.no_grad():
        learner.log_alpha.copy_(torch.tensor(float(ref["init/modules_alpha/log_temp"])))
    learner.noise = []
    return learner


def official_batch(ref: dict[str, np.ndarray], step: int) -> ChunkBatch:
    """The batch the official `sample_sequence` returned, in chunkbot's ChunkBatch fields."""
    b = lambda k: torch.from_numpy(ref[f"step{step}/batch/{k}"].astype(np.float32))  # noqa: E731
    h = b("actions").shape[1]
    discount = float(ref["config/h_K_bc_temp_discount"][4])
    n = len(b("rewards"))
    return ChunkBatch(state=b("observations")[:, None], images={}, actions=b("actions"),
                      discounted_return=b("rewards")[:, -1], bootstrap_discount=discount ** h * b("masks")[:, -1],
                      terminated_early=torch.zeros(n, dtype=torch.bool), truncated_early=b("valid")[:, -1] == 0,
                      next_state=b("next_observations")[:, -1][:, None], next_images={},
                      n_step_used=torch.full((n,), float(h)), is_offline=torch.ones(n, dtype=torch.bool))


def run_updates(ref: dict[str, np.ndarray], steps: int) -> ReplayedNoise:
    learner = learner_from(ref)
    for step in range(1, steps + 1):
        learner.noise = [torch.from_numpy(ref[f"step{step}/noise_next"]),
                         torch.from_numpy(ref[f"step{step}/noise_actor"])]
        learner.update([official_batch(ref, step)])
        assert not learner.noise
    return learner


def close(actual: torch.Tensor, expected: np.ndarray, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, atol=atol, rtol=rtol)


@pytest.mark.parametrize("name", SETTINGS)
def test_sampled_chunks_have_the_official_returns_masks_valid_flags_and_next_observations(name):
    ref = load(name)
    d = {k[5:]: v for k, v in ref.items() if k.startswith("data/")}
    h = int(ref["config/h_K_bc_temp_discount"][0])
    discount = float(ref["config/h_K_bc_temp_discount"][4])
    buf = offline_buffer_from_transitions(d["observations"], d["actions"], d["rewards"], d["masks"],
                                          d["terminals"], d["next_observations"])
    for step in (1, 2, 3):
        idx = ref[f"step{step}/idxs"]
        # chunkbot stores one extra slot (the final observation) after every trajectory
        slots = idx + np.searchsorted(np.flatnonzero(d["terminals"] > 0), idx, side="left")
        w = buf.gather(slots, h, h, discount)
        b = lambda k: ref[f"step{step}/batch/{k}"]  # noqa: B023, E731
        valid = b("valid")[:, -1] == 1
        assert (~(w.terminated_early | w.truncated_early)).numpy().tolist() == valid.tolist()
        close(w.state[:, -1], b("observations"))
        close(w.discounted_return[valid], b("rewards")[valid, -1])
        close(w.bootstrap_discount[valid], discount ** h * b("masks")[valid, -1])
        close(w.next_state[valid, -1], b("next_observations")[valid, -1])
        close(w.actions[valid], b("actions")[valid])


@pytest.mark.parametrize("name", SETTINGS)
def test_first_update_has_the_official_targets_q_values_log_probs_and_losses(name):
    ref = load(name)
    learner = learner_from(ref)
    learner.noise = [torch.from_numpy(ref["step1/noise_next"]), torch.from_numpy(ref["step1/noise_actor"])]
    batch = official_batch(ref, 1)
    alpha = learner.log_alpha.exp().detach()
    close(learner.td_target(batch, alpha), ref["step1/target_q"])
    learner.noise.insert(0, torch.from_numpy(ref["step1/noise_next"]))
    metrics = learner.update([batch])
    info = lambda k: ref[f"step1/info/{k}"]  # noqa: E731
    close(metrics["loss_critic"], info("critic/critic_loss"))
    close(metrics["q_mean"], info("critic/q_mean"))
    close(metrics["q_pi_mean"], info("actor/q"))
    close(metrics["entropy"], info("actor/entropy"))
    close(metrics["alpha"], info("actor/alpha"))
    bc = float(ref["config/h_K_bc_temp_discount"][2])
    close(metrics["loss_actor"], info("actor/actor_loss") + info("actor/bc_loss"))
    if bc > 0:
        close(metrics["loss_bc"] * bc, info("actor/bc_loss"))
    close(metrics["loss_temperature"], info("actor/alpha_loss"))
    assert learner.target_entropy == pytest.approx(float(ref["config/target_entropy"]))


@pytest.mark.parametrize("name", SETTINGS)
def test_first_update_has_the_official_gradients_for_critic_actor_and_temperature(name):
    ref = load(name)
    learner = run_updates(ref, 1)
    expected_critic = critic_params(ref, "step1/grad/", CRITIC)
    for (k, p) in learner.critic.named_parameters():
        close(p.grad, expected_critic[k].numpy(), atol=1e-6)
    expected_actor = actor_params(ref, "step1/grad/")
    for (k, p) in learner.policy.actor.named_parameters():
        close(p.grad, expected_actor[k].numpy(), atol=1e-6)
    close(learner.log_alpha.grad, ref["step1/grad/modules_alpha/log_temp"], atol=1e-6)


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("steps", [1, 3])
def test_weights_after_updates_match_the_official_adam_polyak_and_temperature_steps(name, steps):
    ref = load(name)
    learner = run_updates(ref, steps)
    key = f"step{steps}/params/"
    for module, expected in ((learner.critic, critic_params(ref, key, CRITIC)),
                             (learner.critic_target, critic_params(ref, key, TARGET)),
                             (learner.policy.actor, actor_params(ref, key))):
        state = module.state_dict()
        for k, v in expected.items():
            close(state[k], v.numpy(), atol=2e-6)
    close(learner.log_alpha, ref[f"{key}modules_alpha/log_temp"], atol=2e-6)
