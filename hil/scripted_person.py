"""A scripted person for simulated sessions: watches the policy and takes over when it is failing.

It reads the task's shaped progress (the sim's dense reward, in [0, 1]) after every step, as a
person would judge "is it getting anywhere?", and takes over (through the same
`TakeoverController.request_takeover` a key press uses) when

* progress has not improved by `min_progress` for `patience_steps` steps while the policy drove, or
* progress fell more than `drop_threshold` below its best (the cube was dropped or knocked away).

The scripted teleoperator (the sim's expert) then drives for `takeover_steps` steps and hands back;
progress tracking restarts from there, so the policy gets another chance on the rest of the task.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot.takeover import TakeoverController


@dataclass
class ScriptedPersonConfig:
    patience_steps: int = 20
    min_progress: float = 0.02
    drop_threshold: float = 0.15
    takeover_steps: int = 30


class ScriptedPerson:
    def __init__(self, robot, controller: TakeoverController, config: ScriptedPersonConfig | None = None) -> None:
        self.robot = robot  # a SimRobot (dense_reward() reads privileged sim state)
        self.controller = controller
        self.config = config or ScriptedPersonConfig()
        self.enabled = True
        self.reset()

    def reset(self) -> None:
        self.best = float("-inf")
        self.since_best = 0
        self.driven = 0
        self.takeovers = 0

    def after_step(self) -> None:
        """Judge the step just taken; may request a takeover or a hand-back for the next step."""
        if not self.enabled:
            return
        c = self.config
        progress = float(self.robot.dense_reward())
        if self.controller.active:
            self.driven += 1
            if self.driven >= c.takeover_steps:
                self.controller.request_handback()
                self.best, self.since_best = progress, 0
            return
        if progress > self.best + c.min_progress:
            self.best, self.since_best = progress, 0
        else:
            self.since_best += 1
        if self.since_best >= c.patience_steps or self.best - progress > c.drop_threshold:
            self.controller.request_takeover()
            self.driven = 0
            self.takeovers += 1
