"""Teleoperate a follower arm from a leader arm (or the keyboard, or the sim's scripted expert).

    python -m tools.teleoperate --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=my_so101 \
        --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 --teleop.id=my_leader
    python -m tools.teleoperate --robot.type=sim_so101 --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 \
        --teleop.id=my_leader --viz.display_data=true     # a real leader driving the simulated arm

Every action passes the safety layer (joint limits, per-step rate cap, easing in when the leader
starts far from the follower, bus-fault hold then torque off). The loop runs at `--fps` with
absolute deadlines; Ctrl-C holds the arm and exits cleanly.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import draccus

from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, register_for_cli
from robot.connection import connected
from robot.recording import terminate_as_interrupt
from robot.interface import RobotError
from robot.safety import SafetyConfig
from robot.teleop_step import SafeTeleopStep
from robot.timing import RealClock
from robot.viz import ChunkView, VizConfig
from tools._common import fail, init_tool

register_for_cli()
log = logging.getLogger("tools.teleoperate")


@dataclass
class TeleoperateConfig:
    robot: RobotConfig = field(default_factory=lambda: RobotConfig.get_choice_class("sim_so101")())
    teleop: TeleoperatorConfig = field(default_factory=lambda: TeleoperatorConfig.get_choice_class("scripted")())
    # Control rate (Hz).
    fps: float = 30.0
    # Stop after this many seconds (None: until Ctrl-C).
    duration_s: float | None = None
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    viz: VizConfig = field(default_factory=VizConfig)


def teleoperate(cfg: TeleoperateConfig) -> int:
    """Run the loop; returns the number of control periods run."""
    robot = make_robot(cfg.robot)
    teleop = make_teleoperator(cfg.teleop, robot=robot)
    with connected(robot), connected(teleop):  # a failing disconnect never hides the fault that stopped the loop
        with contextlib.closing(ChunkView.for_robot(cfg.viz, robot, fps=cfg.fps)) as view:
            return _loop(cfg, robot, teleop, view)


def _loop(cfg: TeleoperateConfig, robot, teleop, view) -> int:
    step = SafeTeleopStep(robot, teleop, cfg.safety)
    clock = RealClock()
    period = 1.0 / cfg.fps
    t0 = deadline = clock.now()
    try:
        while cfg.duration_s is None or clock.now() - t0 < cfg.duration_s:
            observation, sent = step()
            if observation is not None:
                view.log_step(step.step - 1, clock.now() - t0, observation, sent, source="teleop")
            deadline += period
            if deadline < clock.now():  # fell behind: skip the missed periods, never burst
                deadline = clock.now()
            clock.sleep_until(deadline)
    except KeyboardInterrupt:
        step.interrupt()
        log.info("stopped: the arm holds its pose")
    return step.step


def main() -> None:
    init_tool()
    terminate_as_interrupt()  # SIGTERM holds the arm and disconnects like Ctrl-C
    cfg = draccus.parse(TeleoperateConfig)
    try:
        teleoperate(cfg)
    except RobotError as e:  # a bus fault, a silent or faulty servo, a missing calibration: say which
        fail(str(e), code=1)


if __name__ == "__main__":
    main()
