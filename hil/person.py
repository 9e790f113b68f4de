"""The person at the arm, as the session sees them: takeovers (leader arm, takeover key, or the
scripted person in simulation), the session keys, and the scene between episodes.

Keys (`SessionKeys`): the takeover key goes to the `TakeoverController` (the executor's
intervention hook); this class reads the others: success and failure end the episode, pause holds
the session until pressed again, quit ends it. A scene is reset by the sim itself (seeded), or on
a real arm by the person within `reset_time_s` (any key but pause ends the wait early).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from hil.config import HILConfig
from hil.episode import Episode
from hil.scripted_person import ScriptedPerson
from robot.keyboard import KeyboardTeleop, KeyHub
from robot.sim.expert import ScriptedTeleop
from robot.sim.robot import SimRobot
from robot.takeover import TakeoverController

log = logging.getLogger(__name__)


class Person:
    def __init__(self, cfg: HILConfig, robot: Any, teleop: Any, hub: KeyHub, action_names: tuple[str, ...],
                 fps: float) -> None:
        self.cfg = cfg
        self.robot = robot
        self.teleop = teleop
        self.sim = isinstance(robot, SimRobot)
        scripted = self.sim and isinstance(teleop, ScriptedTeleop)
        takeover = cfg.takeover
        if scripted or isinstance(teleop, KeyboardTeleop):
            # the scripted person / the takeover key decide when to take over: neither "leader" rests
            takeover = dataclasses.replace(takeover, trigger="none", handback_still_s=0.0)
        self.controller = TakeoverController(teleop, action_names, fps, takeover, keys=hub.subscribe(),
                                             session_keys=cfg.keys)
        self.scripted = ScriptedPerson(robot, self.controller, cfg.person) if scripted else None
        self._keys = hub.subscribe()
        self.quit = False
        self.paused = False

    @property
    def takeovers(self) -> int:
        return self.controller.takeovers

    # ------------------------------------------------------------------ between episodes
    def reset_scene(self, episode: int, first: bool) -> None:
        if self.sim:
            seed = self.cfg.seed + episode
            self.robot.reset(seed)
            if isinstance(self.teleop, ScriptedTeleop):
                self.teleop.expert.reset(seed)
            return
        if first:
            return
        log.info("reset the scene: the next episode starts in %.0f s (any session key starts it now)",
                 self.cfg.reset_time_s)
        deadline = time.monotonic() + self.cfg.reset_time_s
        while time.monotonic() < deadline and not self.quit:
            keys = self._keys.drain()
            self.quit = self.quit or self.cfg.keys.quit in keys
            if keys:
                break
            time.sleep(0.05)

    def start_episode(self, policy_ready: bool, evaluation: bool) -> None:
        """The person demonstrates whole episodes until there is a policy, and keeps out of evaluations."""
        self.controller.reset()
        self.controller.force(not policy_ready)
        if not policy_ready and not self.sim:
            log.info("no policy weights yet: drive the arm with the leader for this episode")
        if self.scripted is not None:
            self.scripted.reset()
            self.scripted.enabled = not evaluation

    # ------------------------------------------------------------------ during an episode
    def read_keys(self, ep: Episode | None) -> None:
        k = self.cfg.keys
        for key in self._keys.drain():
            if key == k.quit:
                self.quit = True
            elif key == k.pause:
                self.paused = not self.paused
                log.info("session %s", "paused (press the pause key to resume)" if self.paused else "resumed")
            elif ep is not None and key == k.success:
                ep.success, ep.terminated, ep.end = True, True, "success"
            elif ep is not None and key == k.failure:
                ep.end = "failure_key"
        if ep is not None and self.quit:
            ep.end = ep.end or "quit"

    def hold_while_paused(self, ep: Episode) -> bool:
        """Block while paused (the arm holds: no step runs); True if there was a pause."""
        paused = self.paused
        while self.paused and not self.quit:
            time.sleep(0.05)
            self.read_keys(ep)
        return paused

    def after_step(self) -> None:
        if self.scripted is not None:
            self.scripted.after_step()
