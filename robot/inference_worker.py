"""Policy inference beside the control loop.

The loop hands over one request at a time (a policy frame, the control step and clock time of
the observation it came from, and the executor's generation) and polls for the result without
ever waiting for it. Two runners share that interface:

- `ThreadedInference`: a daemon thread calls `policy.predict_chunk`; the result's time is when
  the call returned. Torch and onnxruntime release the GIL while they compute, so the loop keeps
  its rate however slow the policy is.
- `ProcessInference`: the policy lives in a child process (built there by a picklable factory),
  for policies that hold the GIL while they compute (pure Python, small numpy ops): in a thread
  those would delay the loop's wake-ups by milliseconds; in a process they cannot.
- `InlineInference`: calls the policy at once, in the caller's thread, and releases the result
  `latency_s` after the observation time on the loop's clock. Deterministic: with a `FakeClock`
  it lets tests place a chunk's arrival exactly.

A request stays "busy" until its result has been polled, so at most one chunk is ever in flight.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from contract import ChunkPolicy
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

    def reset_policy(self) -> None:
        """`policy.reset()` where the policy runs (call only when idle)."""
        ...

    def close(self) -> None: ...


def _predict(policy: ChunkPolicy, frame: dict[str, np.ndarray]) -> tuple[np.ndarray | None, BaseException | None]:
    try:
        return np.asarray(policy.predict_chunk(frame), dtype=np.float32), None
    except Exception as e:  # handed to the loop, which holds the arm and reports it  # noqa: BLE001
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

    def reset_policy(self) -> None:
        self.policy.reset()

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

    def reset_policy(self) -> None:
        self.policy.reset()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


@dataclass(frozen=True)
class RemotePolicySpec:
    """What the executor needs to know of a policy that runs in another process (its
    `predict_chunk` is not callable here: requests go through the runner)."""

    chunk_size: int
    action_names: tuple[str, ...]
    fps: float
    history_length: int = 1   # states the policy reads: the executor keeps the window and sends it along

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        raise RuntimeError("this policy runs in a child process: submit requests through its ProcessInference")

    def reset(self) -> None:
        raise RuntimeError("this policy runs in a child process: use ProcessInference.reset_policy()")


def _serve(policy_factory: Callable[[], ChunkPolicy], conn) -> None:
    """Child process: build the policy, then answer requests until told to stop."""
    try:
        policy = policy_factory()
        conn.send(("ready", RemotePolicySpec(int(policy.chunk_size), tuple(policy.action_names), float(policy.fps),
                                             int(getattr(policy, "history_length", 1) or 1))))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        if message == "reset":
            policy.reset()
            conn.send("reset-done")
            continue
        actions, error = _predict(policy, message)
        if error is not None:
            error = RuntimeError(f"{type(error).__name__}: {error}")  # always picklable
        # perf_counter is CLOCK_MONOTONIC on Linux: comparable with the parent's RealClock.
        conn.send((actions, error, time.perf_counter()))


class ProcessInference:
    """`predict_chunk` in a child process, for policies that would hold the GIL in a thread.

    `policy_factory` builds the policy in the child and must be picklable (a module-level
    function or a `functools.partial` of one): the child is started with `spawn`, so nothing of
    the parent (CUDA contexts, open ports) leaks into it. `spec` stands in for the policy when
    building the executor: `ChunkExecutor(robot, runner.spec, inference=runner)`. Frames are
    pickled through a pipe (about 1 ms for a 480 x 640 image). Done times come from the child's
    `time.perf_counter`, which matches the parent's RealClock on Linux only.
    """

    def __init__(self, policy_factory: Callable[[], ChunkPolicy], startup_timeout_s: float = 120.0):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(policy_factory, child_conn), daemon=True,
                                 name="chunk-inference")
        self._proc.start()
        child_conn.close()
        if not self._conn.poll(startup_timeout_s):
            self._proc.kill()
            raise TimeoutError(f"the policy process did not start within {startup_timeout_s} s")
        kind, payload = self._conn.recv()
        if kind != "ready":
            self._proc.join(5.0)
            raise RuntimeError(f"building the policy in the child process failed: {payload}")
        self.spec: RemotePolicySpec = payload
        self._request: InferenceRequest | None = None

    @property
    def busy(self) -> bool:
        return self._request is not None

    def submit(self, request: InferenceRequest) -> None:
        if self._request is not None:
            raise RuntimeError("a chunk is already in flight; poll it before submitting another")
        self._request = request
        self._conn.send(request.frame)

    def poll(self, now: float) -> list[InferenceResult]:
        if self._request is None or not self._conn.poll():
            return []
        actions, error, done = self._conn.recv()
        r, self._request = self._request, None
        return [InferenceResult(r.obs_step, r.obs_time, r.generation, done, actions, error)]

    def wait_idle(self, timeout: float) -> bool:
        return self._request is None or self._conn.poll(timeout)

    def reset_policy(self) -> None:
        if self._request is not None:
            raise RuntimeError("cannot reset the policy while a chunk is in flight; poll it first")
        self._conn.send("reset")
        if not self._conn.poll(30.0) or self._conn.recv() != "reset-done":
            raise RuntimeError("the policy process did not confirm reset()")

    def close(self, timeout: float = 5.0) -> None:
        if not self._proc.is_alive():
            return
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout)
