"""Untrained QChunkSAC policies of each actor kind, saved as real training checkpoints: what the
export tests and the ONNX benchmark feed the exporter.

Built with the learner's own config, classes and checkpoint code (policy/), so the exporter sees
exactly what training writes. The weights are re-drawn at a scale where the chunk depends on every
input (a fresh actor's head is ~1e-3 and would hide a mis-wired input behind a near-constant
output), and the normaliser gets non-trivial statistics and the sim arm's joint ranges.

Shared by the tests and benchmarks/bench_onnx.py (hence `testing/`, not `tests/`); torch and policy/ are
imported inside the functions, so importing it stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("mlp", "act", "image")

# Tiny networks (exports in seconds); benchmarks/bench_onnx.py passes its deployment-sized ones as `sizes`.
TINY: dict[str, dict[str, Any]] = {
    "mlp": {"actor_hidden_dims": [32, 32]},
    "act": {"use_act_actor": True, "obs_history_length": 3,
            "act": {"d_model": 16, "num_heads": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                    "dim_feedforward": 32}},
    "image": {"actor_hidden_dims": [32], "use_images": True,
              "image_encoder": {"channels": 4, "num_layers": 2, "latent_dim": 8}},
}


def sim_features(arm: str = "so101", task: str = "lift") -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(state names, action names, action low, action high) of a simulated arm, from the robot itself."""
    from robot.config import robot_config_for
    from robot.features import state_names

    robot = robot_config_for(f"sim_{arm}", task=task).build()
    try:
        return (state_names(robot.observation_features), list(robot.action_features),
                np.asarray(robot.action_low, np.float64), np.asarray(robot.action_high, np.float64))
    finally:
        robot.disconnect()


def make_policy(kind: str, overrides: dict[str, Any] | None = None, *, image_shape: tuple[int, int, int] = (24, 24, 3),
                camera: str = "front", chunk_size: int = 5, seed: int = 0, arm: str = "so101", task: str = "lift",
                sizes: dict[str, dict[str, Any]] | None = None,
                features: tuple[list[str], list[str], np.ndarray, np.ndarray] | None = None):
    """A QChunkSACPolicy of `kind` ("mlp", "act", "image") for the simulated arm's features
    (or for `features` = (state names, action names, action low, action high) where MuJoCo is absent)."""
    import torch

    from policy.config import QChunkSACConfig
    from policy.qchunk_sac import QChunkSACPolicy

    if kind not in KINDS:
        raise ValueError(f"unknown actor kind {kind!r}; choose one of {KINDS}")
    names, actions, low, high = features if features is not None else sim_features(arm, task)
    base = {"act_chunk_size": chunk_size, "critic_hidden_dims": [32], "num_critics": 2,
            **(sizes or TINY)[kind], **(overrides or {})}
    cameras = {camera: list(image_shape)} if base.get("use_images") else {}
    cfg = QChunkSACConfig.from_dict(base).with_features(len(names), actions, cameras, fps=30.0)
    torch.manual_seed(seed)
    policy = QChunkSACPolicy(cfg)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in policy.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=1.0 / np.sqrt(module.in_features))
        states = rng.normal(rng.normal(0, 5, len(names)), rng.uniform(0.5, 20, len(names)), (256, len(names)))
        policy.normalizer.fit(states, low, high)
    return policy.eval()


def save_training_checkpoint(policy, output_dir: str | Path, step: int = 1000,
                             env_name: str = "chunkbot/SO101Lift-v0", obs_mode: str = "state") -> Path:
    """Save `policy` (with a fresh learner: critics, temperature) as tools.train does; returns the
    checkpoint dir (<output_dir>/checkpoints/<step>)."""
    import torch

    from policy.checkpoint import save_checkpoint
    from policy.learner import QChunkSACLearner

    torch.manual_seed(1)
    learner = QChunkSACLearner(policy)
    return save_checkpoint(output_dir, step, policy, learner, None, {"env_step": step, "normalizer_fitted": True},
                           {"env_name": env_name, "obs_mode": obs_mode, "policy": policy.config.to_dict()})
