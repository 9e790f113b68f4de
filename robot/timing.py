"""Control-loop clocks and per-step timing statistics.

Two things every fixed-rate loop needs and nothing else:

- a `Clock` that says what time it is and sleeps until an absolute deadline. `RealClock` sleeps
  most of the way and spins the last stretch, because `time.sleep` overshoots by 50-100 us on an
  idle Linux box and by milliseconds on a loaded one; `FakeClock` jumps, so loops can be tested
  deterministically without real time.
- `TimingStats`: a fixed-size ring buffer (a numpy structured array, no allocation per step) of
  what each control step cost. The Rerun view and the benchmarks read it; `summary()` gives
  p50/p99 figures.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

import numpy as np


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def sleep_until(self, deadline: float) -> None:
        """Return at (or as soon as possible after) `deadline`; return at once if it has passed."""
        ...


class RealClock:
    """`time.perf_counter` with a sleep-then-spin wait for sub-millisecond deadline accuracy."""

    def __init__(self, spin_s: float = 0.001):
        # The last `spin_s` before a deadline are busy-waited: long enough to absorb the kernel's
        # wake-up latency, short enough not to steal much CPU from the inference thread.
        self.spin_s = spin_s

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.perf_counter()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.perf_counter() < deadline:
            pass


class FakeClock:
    """A clock that only moves when told to: `sleep_until` jumps to the deadline at once.

    Thread-safe, so a test robot or policy running in another thread may advance it.
    """

    def __init__(self, start: float = 0.0):
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep_until(self, deadline: float) -> None:
        with self._lock:
            self._t = max(self._t, float(deadline))

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._t += float(seconds)

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._t:
                raise ValueError(f"a clock cannot go back (from {self._t} to {t})")
            self._t = float(t)


# What was sent to the robot in a step (codes stored in the `source` column).
SOURCE_NONE = 0      # nothing sent (the bus read failed before any target was known)
SOURCE_POLICY = 1    # an action planned by the policy
SOURCE_HOLD = 2      # the last safe target again (queue dry, watchdog, NaN, bus fault)
SOURCE_OVERRIDE = 3  # a human / teleoperator action (takeover)
SOURCE_NAMES = {SOURCE_NONE: "none", SOURCE_POLICY: "policy", SOURCE_HOLD: "hold", SOURCE_OVERRIDE: "override"}

STEP_DTYPE = np.dtype(
    [
        ("step", np.int64),          # control-step index (deadline index on the control clock)
        ("scheduled", np.float64),   # the step's deadline, clock seconds
        ("start", np.float64),       # when the step actually started
        ("period", np.float64),      # start minus the previous step's start (NaN for the first)
        ("jitter", np.float64),      # start minus scheduled
        ("read_s", np.float64),      # bus read time (get_observation), NaN if it failed
        ("write_s", np.float64),     # bus write time (send_action), NaN if nothing was sent
        ("step_s", np.float64),      # whole step, read to write
        ("sent", np.float64),        # when send_action returned (NaN if nothing was sent)
        ("latency", np.float64),     # inference latency of a chunk that arrived this step, else NaN
        ("stale", np.int32),         # actions of that chunk already in the past on arrival (dropped)
        ("queue_depth", np.int32),   # planned actions left, this step included
        ("missed", np.int32),        # deadlines skipped just before this step
        ("events", np.int16),        # safety events recorded during this step
        ("source", np.int8),         # SOURCE_* code
    ]
)


def _empty_row() -> np.ndarray:
    row = np.zeros((), dtype=STEP_DTYPE)
    for name in ("period", "read_s", "write_s", "sent", "latency"):
        row[name] = np.nan
    return row


class TimingStats:
    """Fixed-size ring buffer of per-step timings; the oldest rows are overwritten."""

    def __init__(self, capacity: int = 1 << 16):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=STEP_DTYPE)
        self._count = 0  # rows ever written
        self._lock = threading.Lock()  # readers (Rerun, benchmarks) may live in other threads

    def new_row(self) -> np.ndarray:
        """A blank row (NaN where "not measured" must be distinguishable from 0) to fill and `record`."""
        return _empty_row()

    def record(self, row: np.ndarray) -> None:
        with self._lock:
            self._buf[self._count % self.capacity] = row
            self._count += 1

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    @property
    def total_recorded(self) -> int:
        return self._count

    def rows(self, last: int | None = None) -> np.ndarray:
        """A copy of the stored rows, oldest first (`last`: only the newest `last` rows)."""
        with self._lock:
            n = min(self._count, self.capacity)
            if last is not None:
                n = min(n, last)
            end = self._count
            idx = np.arange(end - n, end) % self.capacity
            return self._buf[idx].copy()

    def clear(self) -> None:
        with self._lock:
            self._count = 0

    def summary(self) -> dict[str, float]:
        """p50/p99/max of the timings in milliseconds, plus counts. Empty stats give NaNs and zeros."""
        r = self.rows()
        out: dict[str, float] = {"steps": float(len(r))}

        def pct(name: str, values: np.ndarray) -> None:
            v = values[np.isfinite(values)] * 1e3
            out[f"{name}_p50_ms"] = float(np.percentile(v, 50)) if v.size else math.nan
            out[f"{name}_p99_ms"] = float(np.percentile(v, 99)) if v.size else math.nan
            out[f"{name}_max_ms"] = float(v.max()) if v.size else math.nan

        pct("period", r["period"])
        pct("jitter", r["jitter"])
        pct("read", r["read_s"])
        pct("write", r["write_s"])
        pct("step", r["step_s"])
        pct("latency", r["latency"])
        sent = r["sent"][np.isfinite(r["sent"])]
        out["command_gap_max_ms"] = float(np.diff(sent).max() * 1e3) if sent.size > 1 else math.nan
        out["missed"] = float(r["missed"].sum())
        out["events"] = float(r["events"].sum())
        out["hold_steps"] = float((r["source"] == SOURCE_HOLD).sum())
        out["queue_depth_min"] = float(r["queue_depth"].min()) if len(r) else math.nan
        out["queue_depth_mean"] = float(r["queue_depth"].mean()) if len(r) else math.nan
        return out
