"""A simulated arm without physics engine: six joints that follow their targets as first-order lags.

Cheap and exact, for the executor's tests and its benchmark (`benchmarks/bench_executor.py`), where
the MuJoCo arm would cost more than the loop being measured. It implements the real interface
(`robot.interface.Robot`), with `torque_off()` as the real arms have, and injects bus faults.
"""

from __future__ import annotations

import math
import time
from typing import Any

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
