"""A small synchronous runner: execute each chunk on a gymnasium env open-loop, as the paper
trains and evaluates (the robot runtime does the real-time version of this on the arm).

Envs have the sim arm's shape: observation a Dict of policy-frame keys (`observation.state`,
optional `observation.images.<cam>`), action a Box of absolute joint targets,
`info["is_success"]`, terminated = success, truncated = time limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from robot.features import STATE_KEY
from robot.history import ObservationHistory

if TYPE_CHECKING:   # env worker processes run this runner without torch (policy/vector_runner.py)
    from policy.replay import ChunkReplayBuffer

ChunkFn = Callable[[dict[str, np.ndarray]], np.ndarray]   # window frame (robot/history.py) -> (h, A) robot units
Observer = Callable[[dict[str, np.ndarray], bool], None]  # (policy frame, episode_start): e.g. ObservationHistory.push


@dataclass
class EpisodeStats:
    episode_return: float = 0.0
    length: int = 0
    success: bool = False


@dataclass
class ChunkRunner:
    """Steps `env` chunk by chunk, writing every step to `buffer` (when given). `observer` sees
    every observation: the caller's `ObservationHistory.push` (a policy with an observation history
    needs each step, not only chunk starts)."""

    env: gym.Env
    buffer: ChunkReplayBuffer | None = None
    seed: int = 0
    observer: Observer | None = None
    finished: list[EpisodeStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._episodes = 0
        self.current = EpisodeStats()
        self._reset()

    def _reset(self) -> None:
        self.observation, _ = self.env.reset(seed=self.seed + self._episodes)
        if self.observer is not None:
            self.observer(self.observation, True)

    def run_chunk(self, chunk: np.ndarray) -> int:
        """Execute the chunk's actions until it runs out or the episode ends; returns env steps taken."""
        low, high = self.env.action_space.low, self.env.action_space.high
        steps = 0
        for action in np.asarray(chunk, np.float32):
            action = np.clip(action, low, high)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            steps += 1
            self.current.episode_return += float(reward)
            self.current.length += 1
            self.current.success |= bool(info.get("is_success", False))
            if self.buffer is not None:
                self.buffer.add(self.observation, action, float(reward), bool(terminated), bool(truncated),
                                next_observation=next_obs)
            self.observation = next_obs
            if terminated or truncated:
                self.finished.append(self.current)
                self.current = EpisodeStats()
                self._episodes += 1
                self._reset()
                return steps
            if self.observer is not None:
                self.observer(self.observation, False)
        return steps


def _evaluate_shown(runner: "ChunkRunner", history: ObservationHistory, chunk_fn: ChunkFn, episodes: int,
                    view: Any) -> None:
    """The evaluation loop, one action at a time, so the view sees every step of every chunk."""
    robot = getattr(runner.env.unwrapped, "robot", None)
    fps = float(robot.config.fps) if robot is not None else 30.0
    k = 0
    view.start_episode("eval 0")
    while len(runner.finished) < episodes:
        chunk = np.asarray(chunk_fn(history.frame()), np.float32)
        view.log_chunk(chunk, origin=k)
        for i, action in enumerate(chunk):
            ended = len(runner.finished)
            runner.run_chunk(action[None])
            joints = runner.observation[STATE_KEY][: len(action)]
            view.log_step(k, k / fps, joints, action, source="policy", new_plan=i == 0)
            k += 1
            if len(runner.finished) > ended:  # the episode ended inside the chunk: a fresh one starts
                view.start_episode(f"eval {len(runner.finished)}")
                k = 0
                break


def uniform_random_chunk(space: gym.spaces.Box, chunk_size: int, rng: np.random.Generator) -> np.ndarray:
    """The official warm-up: uniform random actions over the action bounds, one per step."""
    return rng.uniform(space.low, space.high, (chunk_size, *space.shape)).astype(np.float32)


def evaluate(env: gym.Env, chunk_fn: ChunkFn, episodes: int, seed: int = 10_000, history_length: int = 1,
             view: Any = None) -> dict[str, float]:
    """Success rate, mean return and length over `episodes` fresh episodes (chunks open-loop).

    The evaluation owns its observation history: `chunk_fn` gets the window of the last
    `history_length` frames (the policy's `history_length`) at each chunk start.
    `view`: a robot.viz.ChunkView to show each chunk against the joints it produced."""
    history = ObservationHistory(history_length)
    runner = ChunkRunner(env, None, seed, history.push)
    if view is not None and view.enabled:
        _evaluate_shown(runner, history, chunk_fn, episodes, view)
    while len(runner.finished) < episodes:
        runner.run_chunk(chunk_fn(history.frame()))
    done = runner.finished[:episodes]
    return {"success_rate": float(np.mean([e.success for e in done])),
            "return_mean": float(np.mean([e.episode_return for e in done])),
            "episode_length": float(np.mean([e.length for e in done]))}
