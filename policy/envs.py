"""Making a training env by gymnasium id, without torch: env worker processes (policy/vector_runner.py)
import this and nothing of the learner."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


def make_env(env_name: str, **kwargs: Any) -> gym.Env:
    """Build an env by gymnasium id; chunkbot's ids register on import of their package."""
    if env_name.startswith("chunkbot/"):
        from policy import toy_env

        toy_env.register()
        try:
            import robot.sim  # noqa: F401  (registers chunkbot/SO101*-v0 when the sim package provides them)
            import robot.sim.tasks  # noqa: F401
        except ModuleNotFoundError:
            pass
    try:
        return gym.make(env_name, **kwargs)
    except gym.error.Error as e:
        raise ValueError(f"cannot make env {env_name!r} ({e}); known chunkbot envs: "
                         f"{sorted(k for k in gym.registry if k.startswith('chunkbot/'))}") from None
