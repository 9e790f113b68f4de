"""Human takeovers of a running chunk policy: who drives the follower, step by step.

`TakeoverController` is the chunk executor's `intervention(observation)` hook. It returns None
while the policy drives and the human's joint targets while a person drives. A takeover starts

* from the leader arm, automatically, when the leader moves more than `leader_threshold` (robot
  units, any joint) away from where it rested when the policy last got control ("the person
  grabbed it"); with `trigger="follower_gap"` instead when the leader is that far from the
  follower (for leaders that mirror the follower through `send_feedback`);
* on a key (`SessionKeys.takeover`, a toggle), from any thread with `request_takeover()` (a
  scripted person in simulation), or for a whole episode with `force(True)`.

On the step a takeover starts the executor empties its action queue and voids the chunk in flight
(and `on_takeover`, e.g. `executor.flush`, runs at once on the thread that asked). The follower
does not jump to the leader: for `ease_steps` steps the target is a blend that moves linearly from
the follower's pose at the takeover to the leader's live pose (the safety layer's start-jump
easing and rate limit apply on top). It hands back on the key, on `request_handback()`, or when
the leader has rested (no joint moved more than `still_tolerance`) for `handback_still_s`; the
policy then gets a fresh chunk from the next observation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot.interface import Teleoperator, action_dict_to_array
from robot.keyboard import ESC, SPACE, KeySubscription

TRIGGERS = ("leader_moved", "follower_gap", "none")


@dataclass
class SessionKeys:
    takeover: str = SPACE     # toggle: take over / hand back
    success: str = "o"        # "ok": the episode succeeded (reward 1, episode ends)
    failure: str = "l"        # "lost": the episode failed (episode ends)
    pause: str = "p"          # pause / resume the session (the arm holds)
    quit: str = ESC           # end the session (everything is saved)


@dataclass
class TakeoverConfig:
    trigger: str = "leader_moved"   # leader_moved | follower_gap | none (keys / requests only)
    leader_threshold: float = 8.0   # robot units (degrees on SO arms); any joint
    handback_still_s: float = 1.5   # leader rested this long -> hand back; 0: only by key / request
    still_tolerance: float = 1.0    # robot units: "rested" = no joint moved more than this
    ease_steps: int = 10            # blend from the follower's pose onto the leader's over this many steps

    def validate(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"takeover trigger {self.trigger!r}; choose one of {TRIGGERS}")
        if self.leader_threshold <= 0 or self.ease_steps < 1 or self.still_tolerance < 0:
            raise ValueError("leader_threshold must be > 0, ease_steps >= 1, still_tolerance >= 0")


class TakeoverController:
    """Decides, each control step, whether the human drives and what they command."""

    def __init__(self, teleop: Teleoperator | None, action_names: tuple[str, ...], fps: float,
                 config: TakeoverConfig | None = None, keys: KeySubscription | None = None,
                 session_keys: SessionKeys | None = None,
                 on_takeover: Callable[[], None] | None = None) -> None:
        self.config = config or TakeoverConfig()
        self.config.validate()
        self.teleop = teleop
        self.action_names = tuple(action_names)
        self.dt = 1.0 / float(fps)
        self.keys = keys
        self.session_keys = session_keys or SessionKeys()
        self.on_takeover = on_takeover
        self.active = False
        self.takeovers = 0
        self._forced = False
        self._requested: bool | None = None  # True: take over, False: hand back (set from any thread)
        self._lock = threading.Lock()
        self._rest: np.ndarray | None = None      # leader pose while the policy drives
        self._start: np.ndarray | None = None     # follower pose when the takeover began
        self._ease_i = 0
        self._still_anchor: np.ndarray | None = None
        self._still_steps = 0
        self.last_reason = ""

    # --- requests from any thread ---
    def request_takeover(self) -> None:
        with self._lock:
            self._requested = True
        if self.on_takeover is not None:
            self.on_takeover()  # empty the queue now, not at the next step

    def request_handback(self) -> None:
        with self._lock:
            self._requested = False

    def force(self, on: bool) -> None:
        """Person drives regardless of the trigger (demo episodes)."""
        self._forced = on

    def reset(self) -> None:
        """Between episodes: the policy drives next (unless forced), the leader's rest pose is re-read."""
        with self._lock:
            self._requested = None
        self.active = False
        self._rest = None
        self._still_anchor = None
        self._still_steps = 0

    # --- the executor hook ---
    def __call__(self, observation: dict[str, Any]) -> np.ndarray | None:
        present = np.array([float(observation[n]) for n in self.action_names])
        with self._lock:
            requested, self._requested = self._requested, None
        if self.keys is not None:
            for key in self.keys.drain():
                if key == self.session_keys.takeover:  # the session reads the other keys itself
                    requested = not self.active
        human = None
        # read the teleoperator only when it matters (a scripted one costs an IK solve)
        if self.teleop is not None and (self.active or self._forced or requested or self.config.trigger != "none"):
            human = action_dict_to_array(self.teleop.get_action(), self.action_names).astype(np.float64)
        want = self.active
        if requested is not None:
            want, self.last_reason = requested, "request"
        elif self._forced:
            want, self.last_reason = True, "forced"
        elif human is not None and not self.active:
            if self._rest is None:
                self._rest = human.copy()
            gap = np.abs(human - (self._rest if self.config.trigger == "leader_moved" else present))
            if self.config.trigger != "none" and float(gap.max()) > self.config.leader_threshold:
                want, self.last_reason = True, f"leader ({self.config.trigger})"
        elif human is not None and self.active and self.config.handback_still_s > 0:
            if self._still_anchor is None or float(np.abs(human - self._still_anchor).max()) > self.config.still_tolerance:
                self._still_anchor, self._still_steps = human.copy(), 0
            else:
                self._still_steps += 1
                if self._still_steps * self.dt >= self.config.handback_still_s:
                    want, self.last_reason = False, "leader rested"
        if self._forced:
            want = True

        if want and not self.active:
            self.active = True
            self.takeovers += 1
            self._start, self._ease_i = present.copy(), 0
            self._still_anchor, self._still_steps = None, 0
            sync = getattr(self.teleop, "sync", None)
            if callable(sync):  # a keyboard jogs from the follower's pose
                sync(present)
                human = action_dict_to_array(self.teleop.get_action(), self.action_names).astype(np.float64)
        elif not want and self.active:
            self.active = False
            self._rest = human.copy() if human is not None else None
        if not self.active:
            return None
        if human is None:
            return present  # a takeover without a teleoperator holds the arm where it is
        self._ease_i += 1
        w = min(1.0, self._ease_i / self.config.ease_steps)
        return (1.0 - w) * self._start + w * human
