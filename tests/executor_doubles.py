"""Small stand-ins for a robot arm and chunk policies, for the executor and safety tests and the
executor benchmark. They implement the real interfaces (`robot.interface.Robot`,
`contract.ChunkPolicy`); nothing here mocks chunkbot's own classes."""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import numpy as np

from robot.interface import ACTION_NAMES, InProcessDevice, Robot, action_dict_to_array
from robot.timing import Clock, RealClock

# Wide enough that the tests which check exact values are not clipped by the arm's limits.
WIDE_LIMITS = {n: (-1e5, 1e5) for n in ACTION_NAMES}


class FirstOrderArm(InProcessDevice, Robot):
    """Six joints that each follow their target as a first-order lag: x += (u - x)(1 - e^{-dt/tau}).

    Records every action it receives (`received`: list of (clock time, float64 vector)).
    Fault injection: `fail_reads_from_call` makes `get_observation` raise (like LeRobot's
    "There is no status packet!") from that call on; `read_cost_s` / `write_cost_s` spend bus time
    (advancing a FakeClock, or sleeping for real).
    """

    name = "first_order_arm"

    def __init__(self, clock: Clock | None = None, tau_s: float = 0.05, start: np.ndarray | None = None,
                 joint_limits: dict[str, tuple[float, float]] | None = None,
                 read_cost_s: float = 0.0, write_cost_s: float = 0.0):
        self.clock = clock or RealClock()
        self.tau_s = tau_s
        self.position = np.zeros(len(ACTION_NAMES)) if start is None else np.asarray(start, dtype=np.float64).copy()
        self.target = self.position.copy()
        self.joint_limits = dict(joint_limits if joint_limits is not None else WIDE_LIMITS)
        self.read_cost_s = read_cost_s
        self.write_cost_s = write_cost_s
        self.received: list[tuple[float, np.ndarray]] = []
        self.read_calls = 0
        self.fail_reads_from_call: int | None = None
        self.fail_writes = False
        self.torque_enabled = False
        self._t_last = self.clock.now()

    @property
    def observation_features(self) -> dict[str, Any]:
        return {n: float for n in ACTION_NAMES}

    def connect(self, calibrate: bool = True) -> None:
        super().connect(calibrate)
        self.torque_enabled = True
        self._t_last = self.clock.now()

    def disconnect(self) -> None:
        self.torque_enabled = False
        super().disconnect()

    def torque_off(self) -> None:
        self.torque_enabled = False

    def _spend(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if hasattr(self.clock, "advance"):
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def _integrate(self) -> None:
        now = self.clock.now()
        dt = max(0.0, now - self._t_last)
        self._t_last = now
        if self.torque_enabled:
            self.position += (self.target - self.position) * (1.0 - math.exp(-dt / self.tau_s))

    def get_observation(self) -> dict[str, Any]:
        self.read_calls += 1
        self._spend(self.read_cost_s)
        if self.fail_reads_from_call is not None and self.read_calls >= self.fail_reads_from_call:
            raise ConnectionError("Failed to sync read 'Present_Position' on ids=[1, 2, 3, 4, 5, 6] after 1 tries. "
                                  "[TxRxResult] There is no status packet!")
        self._integrate()
        return {n: float(v) for n, v in zip(ACTION_NAMES, self.position)}

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        if self.fail_writes:
            raise ConnectionError("Failed to sync write 'Goal_Position': [TxRxResult] Port is in use!")
        self._spend(self.write_cost_s)
        self._integrate()
        self.target = action_dict_to_array(action).astype(np.float64)
        self.received.append((self.clock.now(), self.target.copy()))
        return action

    def received_array(self) -> np.ndarray:
        return np.array([a for _, a in self.received])


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
