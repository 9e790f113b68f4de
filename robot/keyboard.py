"""Key presses for human-in-the-loop sessions, and a keyboard joint-jog teleoperator.

`KeyHub` fans key presses out to subscribers (the session's takeover / reward / pause keys, the
keyboard teleoperator): each `subscribe()` gets its own queue, so no consumer steals another's keys.
Presses come from a `TerminalKeyReader` (the controlling terminal in cbreak mode, read on a daemon
thread: works over ssh and without a display, unlike X11 keyboard hooks) or from `KeyHub.press`
(scripts, tests, a GUI).

`--teleop.type=keyboard`: jog the follower's joints from its present pose, one step per key press:
`q w e r t y` raise joints 1-6, `a s d f g h` lower them (the gripper is joint 6: `y` opens,
`h` closes). Session keys (robot.takeover.SessionKeys) use other keys, so both work at once.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.config import TeleoperatorConfig
from robot.interface import ACTION_NAMES, InProcessDevice, Teleoperator

log = logging.getLogger(__name__)

ESC = "esc"
SPACE = " "


class KeyHub:
    """Thread-safe fan-out of key presses (single characters, or "esc")."""

    def __init__(self) -> None:
        self._subscribers: list[queue.SimpleQueue[str]] = []
        self._lock = threading.Lock()

    def subscribe(self) -> "KeySubscription":
        q: queue.SimpleQueue[str] = queue.SimpleQueue()
        with self._lock:
            self._subscribers.append(q)
        return KeySubscription(q)

    def press(self, key: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(key)


class KeySubscription:
    def __init__(self, q: queue.SimpleQueue[str]) -> None:
        self._q = q

    def drain(self) -> list[str]:
        """Keys pressed since the last call, oldest first (never blocks)."""
        keys = []
        while True:
            try:
                keys.append(self._q.get_nowait())
            except queue.Empty:
                return keys


class TerminalKeyReader:
    """Reads single key presses from the terminal on a daemon thread into a `KeyHub`.

    Without a terminal on stdin (a service, a pipe) it logs that keys are unavailable and does
    nothing, so sessions still run (sim sessions need no keys). The terminal mode is restored on
    `stop()` and at exit."""

    def __init__(self, hub: KeyHub) -> None:
        self.hub = hub
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: Any = None
        self.available = False

    def start(self) -> "TerminalKeyReader":
        if not sys.stdin.isatty():
            log.info("stdin is not a terminal: session keys are off")
            return self
        import atexit
        import termios
        import tty

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still raises KeyboardInterrupt
        atexit.register(self.stop)
        self.available = True
        self._thread = threading.Thread(target=self._run, args=(fd,), name="keys", daemon=True)
        self._thread.start()
        return self

    def _run(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, 16)
            if not data:
                return
            for key in _parse_keys(data):
                self.hub.press(key)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


def _parse_keys(data: bytes) -> list[str]:
    keys = []
    text = data.decode(errors="ignore")
    if text.startswith("\x1b") and len(text) > 1:  # an escape sequence (arrow key): not ours
        return keys
    for ch in text:
        keys.append(ESC if ch == "\x1b" else ch)
    return keys


# ---------------------------------------------------------------------- keyboard teleoperator
JOG_UP = "qwerty"
JOG_DOWN = "asdfgh"


@TeleoperatorConfig.register_subclass("keyboard")
@dataclass(kw_only=True)
class KeyboardTeleopConfig(TeleoperatorConfig):
    # Joint step per key press (robot units: degrees on SO arms, [-100, 100] on Koch bodies).
    step: float = 2.0
    gripper_step: float = 10.0   # [0, 100]

    def build(self, robot: Any = None, hub: KeyHub | None = None) -> "KeyboardTeleop":
        if robot is None:
            raise ValueError("the keyboard teleoperator jogs the follower from its present pose: build it "
                             "with build(robot=<follower>)")
        return KeyboardTeleop(self, robot, hub)


class KeyboardTeleop(InProcessDevice, Teleoperator):
    """Jogs joint targets from the follower's pose at the start of each takeover (`sync()`)."""

    name = "keyboard"

    def __init__(self, config: KeyboardTeleopConfig, robot: Any, hub: KeyHub | None = None) -> None:
        self.config = config
        self.robot = robot
        self.hub = hub or KeyHub()
        self._keys = self.hub.subscribe()
        self._reader: TerminalKeyReader | None = None
        self._target: np.ndarray | None = None

    def sync(self, present: np.ndarray) -> None:
        """Start jogging from `present` (robot units), dropping keys pressed before."""
        self._keys.drain()
        self._target = np.asarray(present, dtype=np.float64).copy()

    def get_action(self) -> dict[str, float]:
        if self._target is None:
            obs = self.robot.get_observation()
            self.sync(np.array([obs[n] for n in ACTION_NAMES]))
        assert self._target is not None
        for key in self._keys.drain():
            for sign, row in ((1.0, JOG_UP), (-1.0, JOG_DOWN)):
                if key in row:
                    j = row.index(key)
                    step = self.config.gripper_step if j == 5 else self.config.step
                    self._target[j] += sign * step
        return {n: float(v) for n, v in zip(ACTION_NAMES, self._target)}
