"""Small stand-ins for chunk policies, for the executor and safety tests, plus the first-order arm
they drive (`emulators.first_order_arm`, shared with the executor benchmark). They implement the real
interfaces (`robot.interface.Robot`, `contract.ChunkPolicy`); nothing here mocks chunkbot's own classes."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from emulators.first_order_arm import WIDE_LIMITS, FirstOrderArm
from robot.interface import ACTION_NAMES

__all__ = ["WIDE_LIMITS", "FirstOrderArm", "ScriptedChunkPolicy", "failing_policy_factory", "ramp_chunk",
           "ramp_value", "reach_chunk"]


class ScriptedChunkPolicy:
    """Chunk c (0-based call count) is `chunk_fn(c, state)`; records the frames it was given.

    The default chunk is a ramp that says where it came from: action j of chunk c is
    100 * (c + 1) + j on every joint, so a received value names its chunk and index.
    """

    def __init__(self, chunk_size: int = 8, fps: float = 50.0,
                 chunk_fn: Callable[[int, np.ndarray], np.ndarray] | None = None, delay_s: float = 0.0,
                 busy_s: float = 0.0):
        self.chunk_size = chunk_size
        self.fps = fps
        self.action_names = ACTION_NAMES
        self.chunk_fn = chunk_fn or ramp_chunk(chunk_size)
        self.delay_s = delay_s  # real seconds each prediction sleeps (a GPU or a network: GIL released)
        self.busy_s = busy_s    # real seconds of pure-Python work per prediction (holds the GIL)
        self.calls = 0
        self.frames: list[dict[str, np.ndarray]] = []
        self.resets = 0
        self.gate: threading.Event | None = None  # when set to a cleared Event, predictions block on it

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        c = self.calls
        self.calls += 1
        self.frames.append(observation)
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        end = time.perf_counter() + self.busy_s
        while time.perf_counter() < end:
            sum(i * i for i in range(100))
        return np.asarray(self.chunk_fn(c, observation["observation.state"]), dtype=np.float32)

    def reset(self) -> None:
        self.resets += 1
        self.calls = 0


def failing_policy_factory() -> ScriptedChunkPolicy:
    raise FileNotFoundError("checkpoint.safetensors not found")


def ramp_chunk(chunk_size: int, n_joints: int = len(ACTION_NAMES)) -> Callable[[int, np.ndarray], np.ndarray]:
    def fn(c: int, state: np.ndarray) -> np.ndarray:
        values = 100.0 * (c + 1) + np.arange(chunk_size, dtype=np.float32)
        return np.repeat(values[:, None], n_joints, axis=1)

    return fn


def ramp_value(chunk: int, index: int) -> float:
    """What `ramp_chunk` puts at action `index` of chunk `chunk`."""
    return 100.0 * (chunk + 1) + index


def reach_chunk(goal: np.ndarray, chunk_size: int, step: float) -> Callable[[int, np.ndarray], np.ndarray]:
    """A policy that moves every joint from the observed state toward `goal` by `step` per action."""

    def fn(c: int, state: np.ndarray) -> np.ndarray:
        state = state[: len(goal)]  # joint positions come first in a policy frame's state
        j = np.arange(1, chunk_size + 1, dtype=np.float64)[:, None]
        delta = np.clip(goal - state, -step * j, step * j)
        return state + delta

    return fn
