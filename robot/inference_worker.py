"""Policy inference beside the control loop.

The loop hands over one request at a time (a policy frame, the control step and clock time of
the observation it came from, and the executor's generation) and polls for the result without
ever waiting for it. Two runners share that interface:

- `ThreadedInference`: a daemon thread calls `policy.predict_chunk`; the result's time is when
  the call returned. Torch and onnxruntime release the GIL while they compute, so the loop keeps
  its rate however slow the policy is.
- `InlineInference`: calls the policy at once, in the caller's thread, and releases the result
  `latency_s` after the observation time on the loop's clock. Deterministic: with a `FakeClock`
  it lets tests place a chunk's arrival exactly.

A request stays "busy" until its result has been polled, so at most one chunk is ever in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from robot.chunk_policy import ChunkPolicy
from robot.timing import Clock


@dataclass(frozen=True)
class InferenceRequest:
    frame: dict[str, np.ndarray]  # policy frame (robot.features.to_policy_frame)
    obs_step: int
    obs_time: float
    generation: int


@dataclass(frozen=True)
class InferenceResult:
    obs_step: int
    obs_time: float
    generation: int
    done_time: float                # clock time the chunk became available
    actions: np.ndarray | None      # (h, A) float32, None if the policy raised
    error: BaseException | None = None


class InferenceRunner(Protocol):
    @property
    def busy(self) -> bool: ...

    def submit(self, request: InferenceRequest) -> None: ...

    def poll(self, now: float) -> list[InferenceResult]:
        """Results available at clock time `now` (each returned once)."""
        ...

    def wait_idle(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


def _predict(policy: ChunkPolicy, frame: dict[str, np.ndarray]) -> tuple[np.ndarray | None, BaseException | None]:
    try:
        return np.asarray(policy.predict_chunk(frame), dtype=np.float32), None
    except Exception as e:  # handed to the loop, which holds the arm and reports it
        return None, e


class InlineInference:
    """Synchronous inference whose result is released `latency_s` after the observation."""

    def __init__(self, policy: ChunkPolicy, latency_s: float | Callable[[InferenceRequest], float] = 0.0):
        self.policy = policy
        self.latency_s = latency_s
        self._pending: InferenceResult | None = None
        self.submitted: list[InferenceRequest] = []  # every request, for tests to inspect

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def submit(self, request: InferenceRequest) -> None:
        if self.busy:
            raise RuntimeError("a chunk is already in flight; poll it before submitting another")
        self.submitted.append(request)
        latency = self.latency_s(request) if callable(self.latency_s) else self.latency_s
        actions, error = _predict(self.policy, request.frame)
        self._pending = InferenceResult(request.obs_step, request.obs_time, request.generation,
                                        request.obs_time + float(latency), actions, error)

    def poll(self, now: float) -> list[InferenceResult]:
        if self._pending is not None and self._pending.done_time <= now:
            result, self._pending = self._pending, None
            return [result]
        return []

    def wait_idle(self, timeout: float) -> bool:
        return True  # the policy has already returned

    def close(self) -> None:
        self._pending = None


class ThreadedInference:
    """`policy.predict_chunk` on a daemon thread; the loop never waits for it."""

    def __init__(self, policy: ChunkPolicy, clock: Clock, name: str = "chunk-inference"):
        self.policy = policy
        self.clock = clock
        self._cond = threading.Condition()
        self._request: InferenceRequest | None = None
        self._result: InferenceResult | None = None
        self._in_flight = False   # submitted and not yet polled
        self._computing = False   # the policy is running now
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._in_flight

    def submit(self, request: InferenceRequest) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("inference runner is closed")
            if self._in_flight:
                raise RuntimeError("a chunk is already in flight; poll it before submitting another")
            self._in_flight = True
            self._request = request
            self._cond.notify_all()

    def poll(self, now: float) -> list[InferenceResult]:
        with self._cond:
            if self._result is None:
                return []
            result, self._result = self._result, None
            self._in_flight = False
            return [result]

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                request, self._request = self._request, None
                self._computing = True
            actions, error = _predict(self.policy, request.frame)
            done = self.clock.now()
            with self._cond:
                self._computing = False
                self._result = InferenceResult(request.obs_step, request.obs_time, request.generation,
                                               done, actions, error)
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the policy is not running (e.g. before `policy.reset()`); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._computing and self._request is None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
