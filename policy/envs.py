"""Making a training env by gymnasium id, and the sim tasks' observation modes, without torch: env
worker processes (policy/vector_runner.py) import this and nothing of the learner."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from contract import OBS_MODES

IMAGE_SIZE = 64   # pixels mode: square camera frames, this many pixels a side (tools.train, hil_session, study)


def check_observation_mode(obs_mode: str, image_size: int) -> None:
    """One-line errors for --obs_mode / --image_size."""
    if obs_mode not in OBS_MODES:
        raise ValueError(f"--obs_mode={obs_mode!r}: use one of {', '.join(OBS_MODES)}")
    if obs_mode == "pixels" and image_size < 8:
        raise ValueError(f"--image_size={image_size}: camera frames need at least 8 pixels a side")


def observation_kwargs(obs_mode: str, image_size: int) -> dict[str, Any]:
    """The sim env's (and sim robot config's) keywords for an observation mode: none in state mode,
    which keeps each task's own defaults; in pixels mode the joint positions and the front and wrist
    cameras at `image_size` pixels a side."""
    if obs_mode == "state":
        return {}
    return {"obs_mode": obs_mode, "image_height": image_size, "image_width": image_size}


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
