"""The chunk executor: run a chunk policy on a robot at a fixed control rate.

One control step (`ChunkExecutor.step`), deterministic given the clock, the robot and the
inference runner:

1. read the observation through the safety layer (retries; a failed read means hold);
2. hand chunks that have arrived to the action queue (dropping those requested before the last
   `flush()`), and start inference from this observation when the queue wants a new chunk and
   nothing is in flight;
3. pick the target: a human override if one is active, else the queue's action for this step,
   else nothing (hold; the watchdog reports when that has lasted `watchdog_s`);
4. filter it through the safety layer and send it; record the step's timings.

`steps()` is the real-time shell around `step()`, a generator of the step records (`run()` drains
it): absolute deadlines t0 + k / fps on the clock,
sleep most of the way then spin (`RealClock`), and a deadline that has already passed by more
than `late_tolerance` of a period is counted as missed and skipped (never burst through to
catch up); the control-step index keeps following the clock, so the plan stays aligned with time.
A caller that stops consuming on purpose (a paused session) calls `restart_schedule()` so the
pause is not counted as missed deadlines.

A policy whose actions are not finite is held by the safety layer; after
`max_non_finite_steps` such steps in a row the executor raises `NonFiniteActionsError` instead of
holding forever.

Human takeover: `flush()` (from any thread) empties the queue at once and bumps a generation
counter, so the chunk being computed is thrown away when it lands. `step(override=...)` or the
`intervention` hook supplies the human's action; the policy is asked again once the override stops.

    robot = make_robot(robot_config_for("so101_follower", port="/dev/ttyACM0", id="arm")); robot.connect()
    with ChunkExecutor(robot, policy, ExecutionConfig(mode="receding", n_receding=5),
                       SafetyConfig(max_delta_per_step=3.0)) as ex:   # limits: robot.joint_limits()
        ex.run(max_steps=900)                                         # or ex.step() by hand
    print(ex.timing.summary(), ex.safety.counts)

For the lowest jitter give the loop real-time priority (`realtime_priority=50`, needs root or
CAP_SYS_NICE), and run a policy that holds the GIL (pure Python) in a `ProcessInference`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import threading
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator

import numpy as np

from contract import ChunkPolicy
from robot.action_queue import MODES, Admission, Chunk, make_action_queue
from robot.features import to_policy_frame
from robot.history import ObservationHistory
from robot.inference_worker import InferenceRequest, InferenceRunner, ThreadedInference
from robot.interface import Robot, action_dict_to_array
from robot.safety import SafetyConfig, SafetyLayer
from robot.timing import (
    SOURCE_HOLD,
    SOURCE_NAMES,
    SOURCE_NONE,
    SOURCE_OVERRIDE,
    SOURCE_POLICY,
    Clock,
    RealClock,
    TimingStats,
)


class InferenceError(RuntimeError):
    """The policy raised while predicting a chunk; the arm was held."""


class NonFiniteActionsError(InferenceError):
    """The policy kept producing NaN or infinite actions; the arm was held."""


@dataclass
class ExecutionConfig:
    mode: str = "receding"             # open_loop | receding | temporal_ensemble
    fps: float | None = None           # control rate; None: the policy's own fps (they must agree)
    n_receding: int | None = None      # receding: actions played per chunk (None: chunk_size // 2)
    ensemble_m: float = 0.01           # temporal_ensemble: weight exp(-m * i), i = 0 the oldest prediction
    blend_steps: int = 0               # open_loop / receding: linear blend over this many steps at a switch
    latency_compensation: bool = True  # drop the ceil(L * fps) actions of a chunk that are already past
    watchdog_s: float = 0.5            # no planned action for this long -> watchdog event (the arm holds)
    max_steps: int | None = None       # steps per run() (an episode); None: until stopped
    late_tolerance: float = 0.5        # a step may start this fraction of a period late before it is skipped
    latency_margin_steps: int = 1      # receding: ask this many steps earlier than the measured latency needs
    latency_window: int = 20           # receding: latency estimate = max of the last this-many chunks
    spin_s: float = 0.001              # RealClock: busy-wait the last this-many seconds before a deadline
    # Python hands the GIL between threads every 5 ms by default: a Python-heavy policy thread
    # could then delay the loop by up to 5 ms. run() lowers it to this (None: leave it alone).
    gil_switch_interval_s: float | None = 0.0005
    # Linux SCHED_FIFO priority (1-99) for the loop thread during run(), so other processes cannot
    # delay a deadline by a scheduler time slice. Needs root or CAP_SYS_NICE; without it the loop
    # runs at normal priority and warns once. None: normal priority.
    realtime_priority: int | None = None
    timing_capacity: int = 1 << 16
    # Steps in a row whose policy action was not finite (each one held) before the run stops with
    # NonFiniteActionsError; 0: never stop (hold forever).
    max_non_finite_steps: int = 10

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown execution mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.watchdog_s <= 0:
            raise ValueError(f"watchdog_s must be > 0, got {self.watchdog_s}")
        if not 0 <= self.late_tolerance < 1:
            raise ValueError(f"late_tolerance must be in [0, 1), got {self.late_tolerance}")
        if self.max_non_finite_steps < 0:
            raise ValueError(f"max_non_finite_steps must be >= 0, got {self.max_non_finite_steps}")


@dataclass
class StepRecord:
    step: int
    scheduled: float
    action: np.ndarray | None  # what was sent to the robot (after safety), None if nothing was sent
    source: str                # policy | hold | override | none
    new_plan: bool             # first action of a new chunk / plan
    events: list               # SafetyEvents recorded during this step
    observation: dict[str, Any] | None = None  # what was read this step (None if the read failed)
    timing: np.ndarray | None = None           # this step's TimingStats row (robot.timing.STEP_DTYPE)
    chunk_id: int = -1     # the policy chunk the action came from (numbered from 0 per executor), -1: none
    chunk_step: int = -1   # index of the action inside that chunk, -1: not a policy action


@dataclass
class RunResult:
    steps: int       # steps executed
    missed: int      # deadlines skipped
    stop_reason: str  # max_steps | stopped


class ChunkExecutor:
    """Executes a `ChunkPolicy` on a `Robot` through a `SafetyLayer`."""

    def __init__(
        self,
        robot: Robot,
        policy: ChunkPolicy,
        config: ExecutionConfig | None = None,
        safety: SafetyConfig | SafetyLayer | None = None,
        clock: Clock | None = None,
        inference: InferenceRunner | None = None,
        intervention: Callable[[dict[str, Any]], np.ndarray | dict[str, float] | None] | None = None,
        timing: TimingStats | None = None,
        on_chunk: Callable[[Chunk, Admission], None] | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
    ):
        self.config = config = config or ExecutionConfig()
        config.validate()
        self.robot = robot
        self.policy = policy
        self.action_names = tuple(policy.action_names)
        robot_actions = set(robot.action_features)
        if set(self.action_names) != robot_actions:
            raise ValueError(
                f"policy actions {list(self.action_names)} do not match the robot's {sorted(robot_actions)}; "
                f"the policy must have been trained for this robot"
            )
        if config.fps is not None and not math.isclose(config.fps, policy.fps, rel_tol=1e-9):
            raise ValueError(
                f"ExecutionConfig.fps={config.fps} but the policy was trained at {policy.fps} fps: a chunk's "
                f"actions are one policy period apart, so run at the policy's rate (leave fps unset)"
            )
        self.fps = float(policy.fps)
        self.dt = 1.0 / self.fps
        self.clock: Clock = clock or RealClock(config.spin_s)
        if isinstance(safety, SafetyLayer):
            self.safety = safety
        else:
            self.safety = SafetyLayer(robot, self.action_names, safety, clock=self.clock.now)
        self.queue = make_action_queue(
            config.mode, int(policy.chunk_size), n_receding=config.n_receding, ensemble_m=config.ensemble_m,
            blend_steps=config.blend_steps, latency_compensation=config.latency_compensation,
        )
        self.inference: InferenceRunner = inference or ThreadedInference(policy, self.clock)
        self.intervention = intervention
        # Called in the loop thread for every chunk handed to the queue (e.g. the Rerun view's
        # predicted-vs-executed plot): it must return at once, so hand the data to another thread.
        self.on_chunk = on_chunk
        # Called in the loop thread with every step's record (observation and timing row included),
        # also for a step whose policy raised; same rule: return at once.
        self.on_step = on_step
        self.last_chunk: Chunk | None = None
        self.timing = timing or TimingStats(config.timing_capacity)
        self._observation_features = robot.observation_features
        self._lock = threading.Lock()  # queue + generation: flush() may come from another thread
        self._generation = 0
        self._step = 0
        self._in_takeover = False
        self._latencies: deque[float] = deque(maxlen=max(1, config.latency_window))
        self._last_fresh: float | None = None  # clock time of the last planned (or override) action
        self._watchdog_fired = False
        self._prev_start: float | None = None
        self._next_deadline: float | None = None  # where the last run() left the schedule
        self._missed_before = 0
        self.discarded_chunks = 0
        self._non_finite_run = 0
        self._restart_schedule = False
        self.last_observation: dict[str, Any] | None = None
        # The loop owns the observation history (policies are stateless): a policy that reads L
        # frames was trained on L consecutive control steps but is asked for a chunk only every few
        # steps, so the loop sees every step's frame and hands the window over with each request.
        self.history = ObservationHistory(int(getattr(policy, "history_length", 1) or 1))

    # ------------------------------------------------------------------ control
    @property
    def step_index(self) -> int:
        return self._step

    @property
    def generation(self) -> int:
        return self._generation

    def latency_estimate(self) -> float | None:
        return max(self._latencies) if self._latencies else None

    def lead_steps(self) -> int:
        """How many steps before a switch to ask for the next chunk (receding)."""
        est = self.latency_estimate()
        d = math.ceil(est * self.fps - 1e-9) if est is not None else 0
        return d + self.config.latency_margin_steps

    def flush(self) -> None:
        """Empty the action queue now and discard the chunk in flight (human takeover, e-stop)."""
        with self._lock:
            self._generation += 1
            self.queue.clear()

    def reset(self, timeout_s: float = 5.0) -> None:
        """Between episodes: flush, wait for the policy to be idle, reset it."""
        self.flush()
        if not self.inference.wait_idle(timeout_s):
            raise TimeoutError(f"policy inference did not finish within {timeout_s} s; cannot reset the policy")
        self.inference.poll(math.inf)  # drop a finished but unread result
        self.inference.reset_policy()
        self.history.clear()
        self._in_takeover = False
        self._last_fresh = None
        self._watchdog_fired = False

    def close(self) -> None:
        self.inference.close()

    def __enter__(self) -> "ChunkExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one step
    def _to_vector(self, action: np.ndarray | dict[str, float]) -> np.ndarray:
        if isinstance(action, dict):
            return action_dict_to_array(action, self.action_names).astype(np.float64)
        return np.asarray(action, dtype=np.float64)

    def _collect(self, k: int, now: float, row: np.ndarray) -> BaseException | None:
        """Hand arrived chunks to the queue; returns a policy error if one came back."""
        error = None
        for result in self.inference.poll(now):
            if result.generation != self._generation:
                self.discarded_chunks += 1  # requested before a flush: whoever took over decides now
                continue
            expected = (self.queue.chunk_size, len(self.action_names))
            if result.error is None and result.actions.shape != expected:
                result = dataclasses.replace(result, error=ValueError(
                    f"predict_chunk returned shape {result.actions.shape}; expected {expected} "
                    f"(chunk_size x {len(self.action_names)} actions)"))
            if result.error is not None:
                self.safety.record("inference_error", k, error=f"{type(result.error).__name__}: {result.error}")
                error = result.error
                continue
            chunk = Chunk(result.actions, result.obs_step, result.obs_time, k, result.done_time, result.generation)
            admission = self.queue.add(chunk)
            self.last_chunk = chunk
            if self.on_chunk is not None:
                self.on_chunk(chunk, admission)
            self._latencies.append(chunk.latency)
            row["latency"] = chunk.latency
            row["stale"] = admission.stale
        return error

    def _request(self, k: int, obs_time: float) -> None:
        # Copy camera frames: a driver may reuse its buffers while the policy still reads them.
        frame = {key: (v.copy() if v.dtype == np.uint8 else v) for key, v in self.history.frame().items()}
        self.inference.submit(InferenceRequest(frame, k, obs_time, self._generation))

    def step(self, scheduled: float | None = None,
             override: np.ndarray | dict[str, float] | None = None) -> StepRecord:
        """Run one control period now. `override`: a human action that takes over from the policy."""
        k = self._step
        t_start = self.clock.now()
        scheduled = t_start if scheduled is None else scheduled
        row = self.timing.new_row()
        row["step"], row["scheduled"], row["start"], row["jitter"] = k, scheduled, t_start, t_start - scheduled
        row["missed"] = self._missed_before
        if self._prev_start is not None:
            row["period"] = t_start - self._prev_start
        self._prev_start = t_start
        counts_before = sum(self.safety.counts.values())

        observation = self.safety.read_observation(k)  # raises BusFaultError when the bus is gone
        t_read = self.clock.now()
        present = None
        if observation is not None:
            row["read_s"] = t_read - t_start
            self.last_observation = observation
            present = self.safety.present_position(observation)
            if override is None and self.intervention is not None:
                override = self.intervention(observation)
        if self._last_fresh is None:
            self._last_fresh = t_start  # the watchdog counts from the first step
        if observation is not None:  # every step's frame, whoever drives: the window is consecutive steps
            self.history.push(to_policy_frame(observation, self._observation_features))

        policy_error = None
        new_plan = False
        played: tuple[int, int] | None = None
        with self._lock:
            if override is not None:
                if not self._in_takeover:  # takeover starts: the policy's plan is void at once
                    self._generation += 1
                    self.queue.clear()
                    self._in_takeover = True
                    new_plan = True
                # A failed read means hold, whoever is in control.
                target = self._to_vector(override) if observation is not None else None
                source = SOURCE_OVERRIDE
                policy_error = self._collect(k, t_read, row)  # lands in the old generation: discarded
            else:
                self._in_takeover = False
                policy_error = self._collect(k, t_read, row)
                if observation is not None and not self.inference.busy and self.queue.wants_chunk(k, self.lead_steps()):
                    self._request(k, t_start)
                    policy_error = self._collect(k, t_read, row) or policy_error  # a zero-latency runner
                target, new_plan = self.queue.pop(k) if observation is not None else (None, False)
                played = self.queue.played if target is not None else None
                source = SOURCE_POLICY if target is not None else SOURCE_HOLD
            row["queue_depth"] = self.queue.depth(k)

        if target is not None:
            self._last_fresh = t_read
            self._watchdog_fired = False
        elif not self._watchdog_fired and t_read - self._last_fresh > self.config.watchdog_s:
            self._watchdog_fired = True  # once per stall; the arm holds until the policy is back
            self.safety.record("watchdog", k, seconds_without_action=t_read - self._last_fresh,
                               inference_in_flight=self.inference.busy)

        if source == SOURCE_POLICY and not np.all(np.isfinite(target)):
            self._non_finite_run += 1     # the safety layer holds it; count how long that goes on
        elif target is not None:
            self._non_finite_run = 0
        safe, held = self.safety.filter(target, present, k, new_plan=new_plan)
        if held:
            source = SOURCE_HOLD
        sent = None
        if safe is not None:
            t_w = self.clock.now()
            if self.safety.send(safe, k):  # raises BusFaultError when the bus is gone
                t_sent = self.clock.now()
                row["write_s"], row["sent"] = t_sent - t_w, t_sent
                sent = safe
        else:
            source = SOURCE_NONE
        self.safety.end_step(k)
        row["step_s"] = self.clock.now() - t_start
        row["source"] = source
        row["events"] = sum(self.safety.counts.values()) - counts_before
        self.timing.record(row)
        self._missed_before = 0
        self._step = k + 1
        n_new = min(int(row["events"]), len(self.safety.events))
        events = [self.safety.events[-i] for i in range(n_new, 0, -1)]
        record = StepRecord(k, scheduled, sent, SOURCE_NAMES[source], new_plan and target is not None, events,
                            observation, row, *(played if played is not None else (-1, -1)))
        if self.on_step is not None:
            self.on_step(record)
        if policy_error is not None:
            raise InferenceError(
                f"policy.predict_chunk raised {type(policy_error).__name__}: {policy_error} (the arm is holding)"
            ) from policy_error
        limit = self.config.max_non_finite_steps
        if limit and self._non_finite_run >= limit:
            self._non_finite_run = 0
            raise NonFiniteActionsError(
                f"the policy's actions were NaN or infinite for {limit} steps in a row (the arm held): its weights "
                "are broken (a diverged training run?); use an earlier checkpoint")
        return record

    # ------------------------------------------------------------------ real time
    def run(self, max_steps: int | None = None, stop: threading.Event | Callable[[], bool] | None = None) -> RunResult:
        """Run at `fps` until `max_steps` steps (default: config.max_steps) or `stop` is set.

        Ctrl-C holds the arm (and disables torque if SafetyConfig says so), then re-raises."""
        steps = self.steps(max_steps, stop)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def restart_schedule(self) -> None:
        """The consumer of `steps()` held on purpose (a pause): the next step starts a new schedule
        now instead of counting the held time as missed deadlines."""
        self._restart_schedule = True

    def steps(self, max_steps: int | None = None,
              stop: threading.Event | Callable[[], bool] | None = None) -> Generator[StepRecord, None, RunResult]:
        """`run()` as a generator: yields each step's record (the caller's work between two yields
        counts against the period, as the step's own does); returns the `RunResult`. Close it
        (`contextlib.closing`) when stopping early, so the loop's thread settings are restored."""
        max_steps = max_steps if max_steps is not None else self.config.max_steps
        should_stop: Callable[[], bool] = (
            (lambda: False) if stop is None else stop.is_set if isinstance(stop, threading.Event) else stop
        )
        old_interval = sys.getswitchinterval()
        if self.config.gil_switch_interval_s is not None:
            sys.setswitchinterval(self.config.gil_switch_interval_s)
        old_sched = _enter_realtime(self.config.realtime_priority)
        executed = missed_total = 0
        base = self._step
        # Back-to-back runs continue one schedule (as if one run); otherwise start now.
        t0 = self.clock.now()
        if self._next_deadline is not None and self._next_deadline >= t0 - self.config.late_tolerance * self.dt:
            t0 = self._next_deadline
        else:
            self._prev_start = None
        j = 0
        try:
            while True:
                if max_steps is not None and executed >= max_steps:
                    return RunResult(executed, missed_total, "max_steps")
                if should_stop():
                    return RunResult(executed, missed_total, "stopped")
                deadline = t0 + j * self.dt
                self.clock.sleep_until(deadline)
                self._step = base + j
                yield self.step(scheduled=deadline)
                executed += 1
                j += 1
                if self._restart_schedule:
                    self._restart_schedule, self._prev_start = False, None
                    base, t0, j = self._step, self.clock.now(), 0
                self._next_deadline = t0 + j * self.dt
                late = self.clock.now() - self._next_deadline
                if late > self.config.late_tolerance * self.dt:
                    skip = math.floor(late / self.dt) + 1  # deadlines passed, the late one included
                    j += skip
                    missed_total += skip
                    self._missed_before = skip
                    self._next_deadline = t0 + j * self.dt
        except KeyboardInterrupt:
            self.safety.on_interrupt(self._step)
            raise
        finally:
            sys.setswitchinterval(old_interval)
            _leave_realtime(old_sched)


_warned_realtime = False


def _enter_realtime(priority: int | None) -> tuple[int, int] | None:
    """Put the calling thread under SCHED_FIFO; returns what to restore (None if unchanged)."""
    global _warned_realtime
    if priority is None or not hasattr(os, "sched_setscheduler"):
        return None
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread, on Linux
        return old
    except (PermissionError, OSError) as e:
        if not _warned_realtime:
            _warned_realtime = True
            warnings.warn(f"could not give the control loop real-time priority {priority} ({e}); running at "
                          f"normal priority (run as root, or grant CAP_SYS_NICE, for lower jitter)", stacklevel=3)
        return None


def _leave_realtime(old: tuple[int, int] | None) -> None:
    if old is not None:
        os.sched_setscheduler(0, old[0], os.sched_param(old[1]))
