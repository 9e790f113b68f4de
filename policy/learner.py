"""QChunkSACLearner: critics, targets, temperature and the update (docs/design.md, "Q-chunking SAC").

Notation: h chunk length, A action dim, K critics, g discount, alpha temperature, f(s) encoder
features, a in [-1, 1] (normalised, tanh-squashed) actions.

    critic input   chunked:       [f(s_t), a_{t:t+h} flattened]       (the paper)
                   first_action:  [f(s_t), a_t]                        (the seed document)
    target         y = R + d * (agg_k Qbar_k(s', a') - [backup_entropy] alpha log pi(a'_{0:h}|s')),
                   clipped to td_target_bounds when given,
                   a' ~ pi(.|s'),  R = sum_{i<n} g^i r_{t+i},  d = g^n (0 after a termination),
                   n = h (chunked) or n_step (first_action); the replay buffer computes R, d, s'.
    critic loss    mean over k and b of valid_b (Q_k(s, a^data) - y)^2; the chunked critic's valid = 0
                   for chunks a trajectory end cuts short (the paper's `valid`, counted in the mean)
    actor loss     E[alpha log pi(a_{0:h}|s) - Q_pi(s, a_{0:h})] + beta E[-log pi(a^data_{0:h}|s)]
                   Q_pi: chunked  agg_k Q_k(s, a_{0:h})
                         standard            agg_k Q_k(s, a_0)
                         conservative        min_{i<H} agg_k Q_k(s, a_i)
                         temporal_weighted   sum_{i<H} w_i agg_k Q_k(s, a_i),  w_i ~ decay^i, sum w = 1
    temperature    min_alpha  alpha (-E[log pi(a_{0:h}|s)] - H_target),  H_target = -c*h*A | -c*sqrt(h)*A | -c*A

One update computes all three losses at the same weights, then Polyak-averages the targets towards
the critic those losses saw and steps the optimisers: the official code's single `jax.grad` over one
Adam state, step for step (tests/test_learner_parity.py holds it to the official code's numbers).
UTD > 1 is that many updates in a row, each on its own batch, as the official `batch_update`.

chunk_size = 1 makes both modes plain SAC (RLPD-style with the BC term and offline mixing).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from policy.config import QChunkSACConfig
from policy.critic import CriticEnsemble, polyak_update
from policy.cuda_graph import GraphedUpdate
from policy.distributions import sample_tanh_gaussian, tanh_gaussian_log_prob
from policy.encoder import random_shift
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkBatch


def _adam(params, lr: float, capturable: bool = False) -> torch.optim.Adam:
    """capturable: the step count lives on the device, as a CUDA graph of the update needs."""
    params = list(params)
    try:  # the fused kernel (CPU and CUDA) updates all tensors in one call
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=capturable)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True, capturable=capturable)


# ------------------------------------------------------------------ the critic's layout
# The learner owns what its critic is: what it reads, how its K values become one, and where its weights
# sit in `training_state()`. Everything that rebuilds the critic outside the learner (the ONNX export's
# chunk value, tools.visualize_chunks) uses these, so the layout has one definition.
CRITIC_PREFIX = "critic."                 # the online critic's tensors in `training_state()`
CRITIC_TARGET_PREFIX = "critic_target."   # the target critic's
ENCODER_TARGET_PREFIX = "encoder_target."  # the target critic's copy of the encoder (`target_encoder`)


def critic_action_dim(config: QChunkSACConfig) -> int:
    """Width of the actions the critic scores: the flattened chunk h*A (chunked) or its first action A
    (first_action)."""
    return config.action_dim if config.critic_mode == "first_action" else config.chunk_size * config.action_dim


def critic_input_dim(policy: QChunkSACPolicy) -> int:
    """The critic's input width: the encoder's features, then the scored actions."""
    return policy.encoder.output_dim + critic_action_dim(policy.config)


def critic_actions(config: QChunkSACConfig, unit_chunk: torch.Tensor) -> torch.Tensor:
    """The part of a normalised chunk (B, h*A) the critic scores: all of it, or a_0 (first_action)."""
    return unit_chunk[:, : config.action_dim] if config.critic_mode == "first_action" else unit_chunk


def aggregate_critics(config: QChunkSACConfig, q: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """One value out of the K critics' along `dim` (K of the learner's (K, B), or of export's (B, K)):
    the mean (the paper) or the min (clipped double-Q, the first-action critic's default)."""
    return q.mean(dim) if config.critic_aggregation == "mean" else q.min(dim).values


def make_critic(policy: QChunkSACPolicy) -> CriticEnsemble:
    """A freshly initialised critic ensemble of this policy's layout (on the CPU)."""
    cfg = policy.config
    return CriticEnsemble(critic_input_dim(policy), cfg.critic_hidden_dims, cfg.num_critics, cfg.activation)


def critic_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The online critic's state dict out of a `training_state()` (as saved in a checkpoint)."""
    return _with_prefix(state, CRITIC_PREFIX)


def _with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class QChunkSACLearner(nn.Module):
    def __init__(self, policy: QChunkSACPolicy, generator: torch.Generator | None = None) -> None:
        super().__init__()
        cfg = self.config = policy.config
        self.policy = policy
        self.generator = generator
        self.critic = make_critic(policy)
        self.critic_target = make_critic(policy)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.temperature_init)))
        self.target_entropy = cfg.target_entropy()
        h_w = cfg.scored_actions
        w = torch.tensor([cfg.q_chunking_decay ** i for i in range(h_w)])
        self.register_buffer("strategy_weights", w / w.sum())
        # the encoder learns through the critic loss; the SAC actor term reads its features detached, and
        # with bc_trains_encoder the BC term reaches the cameras' encoders too (a state encoder, state_encoder_dim,
        # learns through the critic only; a frozen pretrained image backbone takes no gradient and stays out
        # of the optimiser). The encoder's parameters step with the critic's optimiser either way.
        self._online_params = list(self.critic.parameters())
        self._encoder_params = [p for p in policy.encoder.parameters() if p.requires_grad]
        self.critic_params = self._online_params + self._encoder_params
        self.actor_params = list(policy.actor.parameters())
        bc_encoder = [p for p in policy.encoder.cameras.parameters() if p.requires_grad]
        self._bc_to_encoder = bool(cfg.bc_trains_encoder and bc_encoder and cfg.bc_weight > 0)
        self._actor_loss_inputs = self.actor_params + bc_encoder if self._bc_to_encoder else self.actor_params
        # critic_trains_encoder=false: the critic sees the cameras' features detached (the last image_dim columns)
        self._critic_image_dims = 0 if cfg.critic_trains_encoder else policy.encoder.image_dim
        self._critic_loss_inputs = self.critic_params if cfg.critic_trains_encoder else \
            self._online_params + [p for p in policy.encoder.state_net.parameters() if p.requires_grad]
        self.optimizers = {
            "critic": _adam(self.critic_params, cfg.critic_lr, cfg.cuda_graph),
            "actor": _adam(self.actor_params, cfg.actor_lr, cfg.cuda_graph),
            "temperature": _adam([self.log_alpha], cfg.temperature_lr, cfg.cuda_graph),
        }
        self._target_params = list(self.critic_target.parameters())
        # With `target_encoder` the target critic reads its own slowly following copy of a trainable encoder
        # (SAC-AE, DrQ), so the features under the target do not move with every critic step. On pixel Lift it
        # ends the late collapse; the climb of Q past the task's returns needs td_target_bounds as well.
        self.encoder_target: nn.Module | None = None
        if cfg.target_encoder and self._encoder_params:
            self.encoder_target = copy.deepcopy(policy.encoder).requires_grad_(False)
            self._encoder_pairs = (list(self.encoder_target.parameters()), list(policy.encoder.parameters()))
        # compile: the critic ensembles' forward fused by torch.compile (the update's losses each backward through
        # their own parameters, which one compiled graph of the whole update cannot give); cuda_graph: the UTD
        # updates of a call recorded once as one CUDA graph (policy/cuda_graph.py)
        if cfg.compile:
            self.critic.compile()
            self.critic_target.compile()
        self._graphed = GraphedUpdate(self._update, generator) if cfg.cuda_graph else None
        self.step = 0

    # ------------------------------------------------------------------ pieces
    def _images(self, images: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        pad = self.config.image_encoder.random_shift_pad
        return [random_shift(images[c], pad, self.generator) for c in self.policy.camera_names]

    def _critic_input(self, features: torch.Tensor, unit_chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(s), a_{0:h}) (chunked) or (f(s), a_0) (first_action); unit_chunk (B, h*A)."""
        return features, critic_actions(self.config, unit_chunk)

    def _critic_features(self, features: torch.Tensor) -> torch.Tensor:
        """The features the critic loss trains through: all of them, or (critic_trains_encoder=false) the
        cameras' part detached."""
        d = self._critic_image_dims
        if d == 0:
            return features
        return torch.cat([features[:, :-d], features[:, -d:].detach()], -1)

    def _aggregate(self, q: torch.Tensor) -> torch.Tensor:
        """(K, ...) -> (...) over the critics (`aggregate_critics`)."""
        return aggregate_critics(self.config, q.float(), dim=0)  # a bf16 critic's values aggregate in float32

    def _actor_q(self, features: torch.Tensor, unit_chunk: torch.Tensor) -> torch.Tensor:
        """Q_pi of the docstring, (B,). The first-action strategies score H actions in one forward."""
        cfg = self.config
        if cfg.critic_mode == "chunked" or cfg.scored_actions == 1:
            return self._aggregate(self.critic(*self._critic_input(features, unit_chunk)))
        b, hw, a = features.shape[0], cfg.scored_actions, cfg.action_dim
        actions = unit_chunk.view(b, cfg.chunk_size, a)[:, :hw].transpose(0, 1).reshape(hw * b, a)
        q = self._aggregate(self.critic(features.repeat(hw, 1), actions)).view(hw, b)
        if cfg.q_chunking_strategy == "conservative":
            return q.min(0).values
        return (self.strategy_weights[:, None] * q).sum(0)  # temporal_weighted

    @torch.no_grad()
    def td_target(self, batch: ChunkBatch, alpha: torch.Tensor) -> torch.Tensor:
        """y = R + d * (agg_k Qbar_k(s', a') - [backup_entropy] alpha log pi(a'_{0:h}|s')),  a' ~ pi(.|s')."""
        pol = self.policy
        next_images = self._images(batch.next_images)
        next_state = pol.normalizer.state(batch.next_state)     # once, for both encoders
        next_feat = pol.encoder(next_state, next_images)       # = pol.features(batch.next_state, next_images)
        next_a, next_logp = self._sample(*self._distribution(next_feat, batch.next_state))
        target_feat = next_feat if self.encoder_target is None else self.encoder_target(next_state, next_images)
        v_next = self._aggregate(self.critic_target(*self._critic_input(target_feat, next_a)))
        if self.config.backup_entropy:
            v_next = v_next - alpha * next_logp
        y = batch.discounted_return + batch.bootstrap_discount * v_next
        if self.config.td_target_bounds is not None:
            y = y.clamp(*self.config.td_target_bounds)
        return y

    def _distribution(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's (mean, log_std) in float32 (log-probabilities lose too much in bfloat16)."""
        mean, log_std = self.policy.distribution(features, state)
        return mean.float(), log_std.float()

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bfloat16 autocast of the forward passes when `bf16` is set (CUDA with bf16 support, or the
        CPU); a no-op otherwise."""
        if not self.config.bf16:
            return contextlib.nullcontext()
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"bf16=true but {torch.cuda.get_device_name(device)} has no bfloat16: drop --policy.bf16")
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"bf16=true autocasts on CUDA or the CPU, not {device.type}: drop --policy.bf16")
        # a CUDA graph cannot hold autocast's cache of casted weights (it would replay stale casts)
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not self.config.cuda_graph)

    def _sample(self, mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi, log pi(a): the learner's one source of policy noise (tests replay the official noise)."""
        return sample_tanh_gaussian(mean, log_std, self.generator)

    def critic_valid(self, batch: ChunkBatch) -> torch.Tensor:
        """1 where the critic trains on the window: the chunked critic cannot score a chunk whose
        trajectory ended before its last action (its remaining actions never happened)."""
        if self.config.critic_mode != "chunked":
            return torch.ones_like(batch.discounted_return)
        cut = batch.truncated_early if self.config.keep_terminated_chunks else (
            batch.truncated_early | batch.terminated_early)
        return (~cut).float()

    # ------------------------------------------------------------------ the update
    def update(self, batches: Sequence[ChunkBatch]) -> dict[str, torch.Tensor]:
        """len(batches) updates (UTD), each of critic, actor and temperature on its own batch.
        Returns the last update's metrics as 0-d tensors on the learner's device (read them when
        logging: no host synchronisation inside the update). With cuda_graph they are the graph's outputs,
        overwritten by the next call."""
        if self._graphed is not None:
            metrics = self._graphed(batches)
        else:
            for batch in batches:
                metrics = self._update(batch)
        self.step += len(batches)
        return metrics

    def _update(self, batch: ChunkBatch) -> dict[str, torch.Tensor]:
        cfg, pol = self.config, self.policy
        alpha = self.log_alpha.exp().detach()

        with self.autocast(batch.state.device):
            # critic: mean_k,b valid (Q_k(s, a_data) - y)^2
            y = self.td_target(batch, alpha)
            feat = pol.features(batch.state, self._images(batch.images))
            data_a = pol.chunk_to_unit(batch.actions, batch.state)                    # (B, h*A)
            q = self.critic(*self._critic_input(self._critic_features(feat), data_a)).float()   # (K, B)
            valid = self.critic_valid(batch)
            critic_loss = ((q - y).square() * valid).mean()

            # actor: alpha log pi(a|s) - Q_pi(s, a)  +  beta * (-log pi(a_data|s)), scored by the same critic
            feat_sg = feat.detach()
            mean, log_std = self._distribution(feat_sg, batch.state)
            a_pi, logp = self._sample(mean, log_std)
            q_pi = self._actor_q(feat_sg, a_pi)
            # the BC term reaches the encoder only with bc_trains_encoder (a second actor forward on live features)
            bc_dist = self._distribution(feat, batch.state) if self._bc_to_encoder else (mean, log_std)
            bc_nll = -tanh_gaussian_log_prob(data_a, *bc_dist)
            if cfg.bc_data == "offline":
                on_demo = batch.is_offline.float()
                bc_loss = (bc_nll * on_demo).sum() / on_demo.sum().clamp_min(1.0)
            else:
                bc_loss = bc_nll.mean()
            actor_loss = (alpha * logp - q_pi).mean() + cfg.bc_weight * bc_loss

            # temperature: alpha (entropy - H_target), H_target scaled with the chunk
            temperature_loss = self.log_alpha.exp() * (-logp.detach().mean() - self.target_entropy)

        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        # each loss reaches only its own parameters (and, with bc_trains_encoder, BC the encoder's too)
        if self._bc_to_encoder:
            self._backward_through_the_encoder_once(critic_loss, actor_loss, feat)
        else:
            critic_loss.backward(inputs=self._critic_loss_inputs)
            actor_loss.backward(inputs=self._actor_loss_inputs)
        temperature_loss.backward(inputs=[self.log_alpha])
        if cfg.grad_clip_norm > 0:
            for params in (self.critic_params, self.actor_params):
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        polyak_update(self._target_params, self._online_params, cfg.tau)   # towards the critic the losses saw
        if self.encoder_target is not None:
            polyak_update(*self._encoder_pairs, cfg.encoder_tau)
        for opt in self.optimizers.values():
            opt.step()

        return {k: v.detach() for k, v in {
            "loss_critic": critic_loss, "loss_actor": actor_loss, "loss_temperature": temperature_loss,
            "loss_bc": bc_loss, "q_mean": q.mean(), "q_target_mean": y.mean(), "q_pi_mean": q_pi.mean(),
            "alpha": alpha, "entropy": -logp.mean(), "critic_valid_fraction": valid.mean(),
            "q_chunking/joint_log_prob": logp.mean(),
            "q_chunking/n_step_returns": batch.discounted_return.mean(),
        }.items()} | {"q_chunking/chunk_size": torch.tensor(float(cfg.chunk_size)),
                      "q_chunking/adjusted_entropy": torch.tensor(float(self.target_entropy))}

    def _backward_through_the_encoder_once(self, critic_loss: torch.Tensor, actor_loss: torch.Tensor,
                                           feat: torch.Tensor) -> None:
        """The critic loss into the critic and the encoder, the actor loss into the actor and (its BC term)
        the cameras' encoders, with one backward pass through the encoder for both:

            dL/d(encoder) = J^T (dL_critic/df + mask_cameras * dL_actor/df),   J = df/d(encoder)

        the gradient two passes give (the pass is linear in what flows into it), with the convolutions'
        backward, most of a pixel update's arithmetic, run once instead of twice."""
        critic_head = self._online_params
        *critic_grads, g_critic = torch.autograd.grad(critic_loss, [*critic_head, feat])
        *actor_grads, g_actor = torch.autograd.grad(actor_loss, [*self.actor_params, feat], allow_unused=True)
        g_actor[:, : feat.shape[1] - self.policy.encoder.image_dim] = 0     # BC reaches the cameras only
        for p, g in zip([*critic_head, *self.actor_params], [*critic_grads, *actor_grads]):
            p.grad = g
        feat.backward(g_critic + g_actor, inputs=self._encoder_params)

    # ------------------------------------------------------------------ resume
    def training_state(self) -> dict[str, torch.Tensor]:
        """Learner-owned tensors (the policy's weights are saved by the policy)."""
        out = {f"{CRITIC_PREFIX}{k}": v for k, v in self.critic.state_dict().items()}
        out.update({f"{CRITIC_TARGET_PREFIX}{k}": v for k, v in self.critic_target.state_dict().items()})
        if self.encoder_target is not None:
            out.update({f"{ENCODER_TARGET_PREFIX}{k}": v for k, v in self.encoder_target.state_dict().items()})
        out["log_alpha"] = self.log_alpha.detach().reshape(1)
        out["step"] = torch.tensor([self.step])
        return out

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        self.critic.load_state_dict(critic_weights(state))
        self.critic_target.load_state_dict(_with_prefix(state, CRITIC_TARGET_PREFIX))
        if self.encoder_target is not None:
            saved = _with_prefix(state, ENCODER_TARGET_PREFIX)
            # a checkpoint from before target_encoder starts its copy from the online encoder
            self.encoder_target.load_state_dict(saved or self.policy.encoder.state_dict())
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"].reshape(()))
        self.step = int(state["step"].item())
