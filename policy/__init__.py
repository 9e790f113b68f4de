"""Q-chunking SAC (Li et al. 2025) and the first-action critic of the seed document, plain SAC as chunk = 1.

    config      QChunkSACConfig, preset("qc" | "sac" | "first_action")
    policy      QChunkSACPolicy (normaliser + encoder + chunk actor; LeRobot-style inference,
                contract.ChunkPolicy)
    learning    QChunkSACLearner (critic ensemble, targets, temperature, update), ChunkReplayBuffer,
                MixedSampler, offline_buffer_from_dataset
    job         TrainConfig, train (python -m tools.train), save_checkpoint / load_checkpoint

Submodules import lazily, so `import policy` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "QChunkSACConfig": "policy.config", "preset": "policy.config",
    "QChunkSACPolicy": "policy.qchunk_sac",
    "QChunkSACLearner": "policy.learner",
    "ChunkReplayBuffer": "policy.replay", "MixedSampler": "policy.replay",
    "offline_buffer_from_dataset": "policy.replay",
    "TrainConfig": "policy.training", "train": "policy.training",
    "save_checkpoint": "policy.checkpoint", "load_checkpoint": "policy.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policy' has no attribute {name!r}")
