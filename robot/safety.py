"""The safety layer: the only road from a planned action to `robot.send_action`.

Every target the executor wants to send (policy, hold or human takeover) goes through
`SafetyLayer.filter` and then `SafetyLayer.send`; every observation comes through
`SafetyLayer.read_observation`. In order, a target is:

1. replaced by a *hold* (the last safe target again) when there is none (queue dry, watchdog)
   or when any of its values is NaN/inf;
2. eased in when it starts a new plan (new chunk after a dry queue, takeover) and its first
   target is more than `max_start_jump` from the present position: the plan is shifted by an
   offset that shrinks linearly to zero over `approach_steps` steps, so the arm glides onto it;
3. clamped to the joint limits (calibrated, robot units);
4. rate-limited: no joint moves its target by more than `max_delta_per_step` per control period
   relative to the last target sent.

Bus faults: a failed read or write is retried at once; a period whose read (or write) still fails
holds; `max_fault_periods` consecutive faulty periods disable torque (the robot's `torque_off()`
if it has one, else `disconnect()`, which disables torque on LeRobot arms) and raise
`BusFaultError` naming the fault. A servo that reports a hardware error (`ServoFaultError`:
overload, overheating, ...) is not retried: nothing more is commanded, torque goes off at once and
the `BusFaultError` names the servo, its error and what to do. Every intervention is recorded as a
`SafetyEvent`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from robot.interface import Robot, RobotError, ServoFaultError, array_to_action_dict


class BusFaultError(RobotError):
    """The servo bus kept failing, or a servo reported a hardware error; torque has been disabled (or
    that was attempted)."""


@dataclass
class SafetyConfig:
    # Joint limits in robot units, {"shoulder_pan.pos": (lo, hi), ...}, e.g. from a calibration with
    # `calibration.limits.joint_limits`. None: the robot's `joint_limits` (attribute or method), if any.
    joint_limits: dict[str, tuple[float, float]] | None = None
    # Refuse to run without limits for every joint (turn off only for toy robots in tests).
    require_joint_limits: bool = True
    # Largest change of any joint target per control period (robot units: degrees on SO arms,
    # [-100, 100] on Koch bodies, [0, 100] on grippers). 4 units at 50 Hz is 200 deg/s.
    max_delta_per_step: float = 4.0
    max_delta_per_joint: dict[str, float] = field(default_factory=dict)  # per-joint overrides
    # A new plan whose first target is further than this from the present position is eased in.
    max_start_jump: float = 15.0
    approach_steps: int = 25
    # Bus faults: immediate retries per period, then hold; torque off after this many faulty periods in a row.
    # (Our LeRobot adapters retry inside get_observation already: 0 here keeps a dead bus from
    # costing several driver timeouts per period.)
    read_retries: int = 1
    write_retries: int = 1
    max_fault_periods: int = 3
    # Ctrl-C in the loop: the arm always holds; also disable torque? (False: the arm keeps its
    # pose under torque, which is safer for an arm that would fall; disconnect() disables it later.)
    torque_off_on_interrupt: bool = False
    max_events: int = 10_000  # events kept (oldest dropped); per-kind counts are kept forever


@dataclass(frozen=True)
class SafetyEvent:
    kind: str      # non_finite, start_jump, clamped, rate_limited, watchdog, bus_read_error, ...
    step: int
    time: float
    details: dict[str, Any]


def _per_joint(names: tuple[str, ...], default: float, overrides: dict[str, float], what: str) -> np.ndarray:
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"{what} names unknown joints {unknown}; the robot's are {list(names)}")
    values = np.array([float(overrides.get(n, default)) for n in names])
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{what} must be finite and > 0, got {dict(zip(names, values))}")
    return values


class SafetyLayer:
    """Filters targets, sends them, reads observations, and handles bus faults for one robot."""

    def __init__(
        self,
        robot: Robot,
        action_names: tuple[str, ...],
        config: SafetyConfig | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.robot = robot
        self.action_names = tuple(action_names)
        self.config = config = config or SafetyConfig()
        self.clock = clock
        self.max_delta = _per_joint(self.action_names, config.max_delta_per_step, config.max_delta_per_joint,
                                    "max_delta_per_joint")
        if config.approach_steps < 1:
            raise ValueError(f"approach_steps must be >= 1, got {config.approach_steps}")
        limits = config.joint_limits
        if limits is None:  # the robot's own: an attribute, or a method as on robot.hardware arms
            limits = getattr(robot, "joint_limits", None)
            limits = limits() if callable(limits) else limits
        self.lower, self.upper = self._limit_arrays(limits)
        self.events: deque[SafetyEvent] = deque(maxlen=config.max_events)
        self.counts: Counter[str] = Counter()
        self.last_target: np.ndarray | None = None  # last target sent (the hold target)
        self._approach_offset: np.ndarray | None = None
        self._approach_left = 0
        self._consecutive_faults = 0
        self._last_fault_step: int | None = None
        self.torque_disabled = False

    # ---------------------------------------------------------------- configuration
    def _limit_arrays(self, limits: dict[str, tuple[float, float]] | None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.action_names)
        lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
        limits = dict(limits or {})
        missing = [a for a in self.action_names if a not in limits]
        if missing and self.config.require_joint_limits:
            raise ValueError(
                f"no joint limits for {missing}: set SafetyConfig.joint_limits "
                f"(from a calibration: calibration.limits.joint_limits(robot_type, calibration, use_degrees)) "
                f"or give the robot a "
                f"`joint_limits` attribute; require_joint_limits=False runs without them (toy robots only)"
            )
        for i, name in enumerate(self.action_names):
            if name in limits:
                lo, hi = (float(v) for v in limits[name])
                if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                    raise ValueError(f"joint limits for {name} must be finite with lo < hi, got ({lo}, {hi})")
                lower[i], upper[i] = lo, hi
        return lower, upper

    # ---------------------------------------------------------------- events
    def record(self, kind: str, step: int, **details: Any) -> SafetyEvent:
        event = SafetyEvent(kind, step, self.clock(), details)
        self.events.append(event)
        self.counts[kind] += 1
        return event

    def events_of(self, kind: str) -> list[SafetyEvent]:
        return [e for e in self.events if e.kind == kind]

    # ---------------------------------------------------------------- targets
    def present_position(self, observation: dict[str, Any]) -> np.ndarray:
        missing = [n for n in self.action_names if n not in observation]
        if missing:
            raise KeyError(f"observation lacks joint positions {missing} needed to check actions")
        return np.array([float(observation[n]) for n in self.action_names])

    def hold_target(self, present: np.ndarray | None) -> np.ndarray | None:
        """What holding means now: the last target sent, else the present position, else nothing."""
        if self.last_target is not None:
            return self.last_target.copy()
        return None if present is None else np.asarray(present, dtype=np.float64).copy()

    def filter(self, target: np.ndarray | None, present: np.ndarray | None, step: int,
               new_plan: bool = False) -> tuple[np.ndarray | None, bool]:
        """(safe target to send or None if there is nothing safe to send, True if it is a hold)."""
        if target is None:
            return self.hold_target(present), True
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (len(self.action_names),):
            raise ValueError(f"action has shape {target.shape}; expected ({len(self.action_names)},) "
                             f"for {list(self.action_names)}")
        bad = ~np.isfinite(target)
        if bad.any():
            self.record("non_finite", step, joints=[n for n, b in zip(self.action_names, bad) if b],
                        values=target.tolist())
            self._approach_left = 0  # the plan is broken; do not keep easing into it
            return self.hold_target(present), True
        reference = self.hold_target(present)  # where the commanded arm is now
        if new_plan:
            self._approach_left = 0
            if present is not None and reference is not None:
                gap = np.abs(target - present)
                if np.any(gap > self.config.max_start_jump):
                    worst = int(np.argmax(gap))
                    self.record("start_jump", step, joint=self.action_names[worst], gap=float(gap[worst]),
                                limit=self.config.max_start_jump, approach_steps=self.config.approach_steps)
                    self._approach_offset = target - reference
                    self._approach_left = self.config.approach_steps
        if self._approach_left > 0:
            assert self._approach_offset is not None
            n = self.config.approach_steps
            j = n - self._approach_left  # 0 on the first step of the approach
            target = target - self._approach_offset * (1.0 - (j + 1) / n)
            self._approach_left -= 1
        clamped = np.clip(target, self.lower, self.upper)
        if np.any(clamped != target):
            hit = clamped != target
            self.record("clamped", step, joints=[n for n, h in zip(self.action_names, hit) if h],
                        requested=target[hit].tolist())
        target = clamped
        if reference is not None:
            delta = target - reference
            limited = np.clip(delta, -self.max_delta, self.max_delta)
            if np.any(limited != delta):
                hit = limited != delta
                self.record("rate_limited", step, joints=[n for n, h in zip(self.action_names, hit) if h],
                            requested_delta=delta[hit].tolist())
            target = reference + limited
        return target, False

    # ---------------------------------------------------------------- bus
    def _fault(self, step: int) -> None:
        if self._last_fault_step != step:
            self._consecutive_faults += 1
            self._last_fault_step = step

    def end_step(self, step: int) -> None:
        """Close a control period: one with no bus fault resets the fault count."""
        if self._last_fault_step != step:
            self._consecutive_faults = 0

    def _give_up(self, step: int, what: str, error: BaseException) -> None:
        n = self._consecutive_faults
        outcome = self.torque_off(step, reason=f"{what} failed in {n} consecutive control periods")
        raise BusFaultError(
            f"bus fault: robot.{what}() failed in {n} consecutive control periods "
            f"(last error: {type(error).__name__}: {error}); {outcome}. "
            f"Check the servo power supply and the cable to every servo, then reconnect the robot."
        ) from error

    def _servo_fault(self, step: int, what: str, fault: ServoFaultError) -> None:
        """A servo reported a hardware error: retrying cannot help. Stop commanding, torque off, say why."""
        self.record("servo_fault", step, during=what, faults=fault.faults, error=str(fault))
        outcome = self.torque_off(step, reason=f"a servo reported a hardware error during {what}")
        raise BusFaultError(f"servo fault during robot.{what}(): {fault} ({outcome})") from fault

    def read_observation(self, step: int) -> dict[str, Any] | None:
        """The robot's observation, or None if the bus failed this period (the caller holds)."""
        error: BaseException | None = None
        for attempt in range(1 + self.config.read_retries):
            try:
                return self.robot.get_observation()
            except ServoFaultError as e:
                self._servo_fault(step, "get_observation", e)
            except Exception as e:  # any bus error: serial, ConnectionError, timeouts  # noqa: BLE001
                error = e
                self.record("bus_read_error", step, attempt=attempt, error=f"{type(e).__name__}: {e}")
        assert error is not None
        self._fault(step)
        if self._consecutive_faults >= self.config.max_fault_periods:
            self._give_up(step, "get_observation", error)
        return None

    def send(self, target: np.ndarray, step: int) -> bool:
        """Send a target that went through `filter`; False if the bus failed (after retries)."""
        action = array_to_action_dict(target, self.action_names)
        error: BaseException | None = None
        for attempt in range(1 + self.config.write_retries):
            try:
                self.robot.send_action(action)
                self.last_target = np.asarray(target, dtype=np.float64).copy()
                return True
            except ServoFaultError as e:
                self._servo_fault(step, "send_action", e)
            except Exception as e:  # noqa: BLE001
                error = e
                self.record("bus_write_error", step, attempt=attempt, error=f"{type(e).__name__}: {e}")
        assert error is not None
        self._fault(step)
        if self._consecutive_faults >= self.config.max_fault_periods:
            self._give_up(step, "send_action", error)
        return False

    def torque_off(self, step: int, reason: str) -> str:
        """Disable torque (robot.torque_off() if present, else robot.disconnect()); says what happened."""
        hook = getattr(self.robot, "torque_off", None)
        how = "robot.torque_off()" if callable(hook) else "robot.disconnect()"
        try:
            if callable(hook):
                hook()
            else:
                self.robot.disconnect()
            self.torque_disabled = True
            outcome = f"torque disabled via {how}"
        except Exception as e:  # noqa: BLE001
            outcome = (f"disabling torque via {how} was not confirmed ({type(e).__name__}: {e}): "
                       f"cut the servo power by hand if any servo still holds")
        self.record("torque_off", step, reason=reason, outcome=outcome)
        return outcome

    def on_interrupt(self, step: int) -> None:
        """Ctrl-C in the loop: hold where the arm is, then disable torque if so configured."""
        self.record("interrupt", step)
        hold = self.hold_target(None)
        if hold is not None:
            try:
                self.robot.send_action(array_to_action_dict(hold, self.action_names))
            except Exception as e:  # noqa: BLE001
                self.record("bus_write_error", step, attempt=0, error=f"{type(e).__name__}: {e}")
        if self.config.torque_off_on_interrupt:
            self.torque_off(step, reason="interrupted (Ctrl-C)")
