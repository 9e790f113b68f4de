"""One study cell: a (variant, task, seed) training run that returns its success-vs-env-steps curve.

The loop is policy.training.train()'s (the official QC-RLPD loop) with what a study needs and a
training job does not: offline data from a generated OGBench npz, no checkpoints, and wall-clock
split into learner / env / evaluation time. It is built from the learner's public pieces
(QChunkSACPolicy, QChunkSACLearner, ChunkReplayBuffer, MixedSampler, ChunkRunner, evaluate), so
a change to the learner shows up here as it does in tools.train.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.study.tasks import Budget, Task
from benchmarks.study.variants import Variant
from policy.envs import IMAGE_SIZE
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer, MixedSampler
from policy.runner import ChunkRunner, evaluate
from policy.training import env_features
from robot.history import ObservationHistory

EVAL_SEED = 10_000   # evaluation episodes start from the same seeds in every cell


def run_cell(variant: Variant, task: Task, seed: int, budget: Budget, data_dir: str | Path,
             obs_mode: str = "state", image_size: int = IMAGE_SIZE) -> dict[str, Any]:
    """Train one variant on one task from one seed; returns the result record (JSON-ready).
    `obs_mode="pixels"` (sim tasks): the policy learns from the joint positions and two cameras."""
    torch.set_num_threads(1)   # cells run one per core; more threads only fight each other
    torch.manual_seed(seed)
    tb = budget.tasks[task.name]
    t_start = time.perf_counter()
    env, eval_env = task.make_env(obs_mode, image_size), task.make_env(obs_mode, image_size)
    state_dim, action_names, cams = env_features(env)
    offline = task.offline_buffer(env, seed, data_dir, budget)
    network = {**budget.network, "use_images": True} if obs_mode == "pixels" else budget.network
    pcfg = variant.config(network).with_features(state_dim, action_names, cams,
                                                 float(env.metadata.get("render_fps") or 30.0))
    policy = QChunkSACPolicy(pcfg)
    learner = QChunkSACLearner(policy, torch.Generator().manual_seed(seed))
    policy.fit_normalizer(offline, env.action_space.low, env.action_space.high)
    online = ChunkReplayBuffer(tb.online_steps + tb.online_steps // 2 + 1_000, state_dim, len(action_names),
                               pcfg.camera_shapes, seed=seed)
    sampler = MixedSampler(online, offline, pcfg.offline_ratio)
    history = ObservationHistory(pcfg.obs_history_length)   # the training env's: the loop owns it
    runner = ChunkRunner(env, online, seed=seed, observer=history.push)
    warmup_generator = torch.Generator().manual_seed(seed)
    setup_s = time.perf_counter() - t_start

    def act(frame: dict[str, np.ndarray]) -> np.ndarray:
        return policy.exploration_chunk(frame, budget.actor_noise).numpy()

    def act_mean(frame: dict[str, np.ndarray]) -> np.ndarray:
        return policy.action_chunk(frame, True).numpy()

    act_eval = act_mean if budget.eval_mean_action else act

    curve: list[dict[str, float]] = []
    learner_s = eval_s = 0.0
    env_step = 0
    while env_step < tb.online_steps:
        if env_step < tb.warmup_steps:
            chunk = policy.random_chunk(history.frame(), warmup_generator).numpy()
        else:
            chunk = act(history.frame())
        taken = runner.run_chunk(chunk[: tb.online_steps - env_step])  # stop exactly at the budget, as train()
        for _ in range(taken):
            env_step += 1
            if env_step >= tb.warmup_steps:   # the official loop's first update is at step start_training
                t0 = time.perf_counter()
                batches = [sampler.sample(pcfg.batch_size, pcfg.chunk_size, pcfg.td_horizon, pcfg.discount,
                                          pcfg.obs_history_length) for _ in range(pcfg.utd_ratio)]
                learner.update(batches)
                learner_s += time.perf_counter() - t0
            if env_step % tb.eval_every == 0:
                t0 = time.perf_counter()
                result = evaluate(eval_env, act_eval, tb.eval_episodes, seed=EVAL_SEED,
                                  history_length=pcfg.obs_history_length)   # with a history of its own
                recent = runner.finished[-10:]
                curve.append({"env_step": env_step, **result,
                              "train_success_rate": float(np.mean([e.success for e in recent])) if recent else 0.0})
                eval_s += time.perf_counter() - t0
    # the curve samples from the stochastic policy (as the paper evaluates) unless the budget says
    # otherwise; the deployed policy acts with the mean, so the final policy is also scored that way
    t0 = time.perf_counter()
    final_mean_action = evaluate(eval_env, act_mean, tb.eval_episodes, seed=EVAL_SEED,
                                 history_length=pcfg.obs_history_length)
    eval_s += time.perf_counter() - t0
    total_s = time.perf_counter() - t_start
    env.close()
    eval_env.close()
    return {
        "variant": variant.name, "task": task.name, "seed": seed, "budget": budget.name, "obs_mode": obs_mode,
        "curve": curve,
        "final_mean_action": final_mean_action,
        "online_steps": env_step, "offline_transitions": len(offline), "updates": learner.step,
        "train_episodes": len(runner.finished),
        "wall_s": {"total": total_s, "setup": setup_s, "learner": learner_s, "eval": eval_s,
                   "env_and_inference": total_s - setup_s - learner_s - eval_s},
        "policy_config": pcfg.to_dict(),
    }
