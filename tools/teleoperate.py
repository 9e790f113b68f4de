r"""Teleoperate a follower arm from a leader arm (or the keyboard, or the sim's scripted expert).

    python -m tools.teleoperate --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=my_so101 \
        --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 --teleop.id=my_leader
    python -m tools.teleoperate --robot.type=sim_so101 --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 \
        --teleop.id=my_leader --viz.display_data=true     # a real leader driving the simulated arm

Every action passes the safety layer (joint limits, per-step rate cap, easing in when the leader
starts far from the follower, bus-fault hold then torque off). The loop runs at `--fps` with
absolute deadlines; Ctrl-C holds the arm and exits cleanly. At the end it reports the periods run,
the rate reached, the periods that started late and the safety events (clamps, rate limits, bus
faults). With no options it drives the simulated SO-101 from its scripted expert (a demo).
LeRobot's `--teleop_time_s` and `--display_data` work as in lerobot-teleoperate.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, register_for_cli
from robot.connection import connected
from robot.recording import terminate_as_interrupt
from robot.safety import SafetyConfig
from robot.teleop_step import SafeTeleopStep
from robot.timing import RealClock
from robot.viz import ChunkView, VizConfig
from tools._cli import LEROBOT_TELEOPERATE
from tools._common import init_tool, parse_config, user_errors

register_for_cli()
log = logging.getLogger("tools.teleoperate")


@dataclass
class TeleoperateConfig:
    # The follower (default: the simulated SO-101; a real arm: --robot.type=so101_follower --robot.port=...).
    robot: RobotConfig = field(default_factory=lambda: RobotConfig.get_choice_class("sim_so101")())
    # What drives it (default: the sim's scripted expert; a leader arm: --teleop.type=so101_leader ...).
    teleop: TeleoperatorConfig = field(default_factory=lambda: TeleoperatorConfig.get_choice_class("scripted")())
    # Control rate (Hz).
    fps: float = 30.0
    # Stop after this many seconds (None: until Ctrl-C).
    duration_s: float | None = None
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    viz: VizConfig = field(default_factory=VizConfig)


def teleoperate(cfg: TeleoperateConfig) -> int:
    """Run the loop; returns the number of control periods run."""
    if not cfg.fps > 0:
        raise ValueError(f"--fps must be > 0, got {cfg.fps}")
    robot = make_robot(cfg.robot)
    log.info("connecting %s and %s", _describe(cfg.robot), _describe(cfg.teleop))
    teleop = make_teleoperator(cfg.teleop, robot=robot)
    with connected(robot), connected(teleop):  # a failing disconnect never hides the fault that stopped the loop
        with contextlib.closing(ChunkView.for_robot(cfg.viz, robot, fps=cfg.fps)) as view:
            return _loop(cfg, robot, teleop, view)


def _loop(cfg: TeleoperateConfig, robot, teleop, view) -> int:
    step = SafeTeleopStep(robot, teleop, cfg.safety)
    clock = RealClock()
    period = 1.0 / cfg.fps
    late = 0
    log.info("teleoperating at %g Hz %s; Ctrl-C stops (the arm holds its pose)", cfg.fps,
             f"for {cfg.duration_s:g} s" if cfg.duration_s is not None else "until stopped")
    t0 = deadline = clock.now()
    try:
        while cfg.duration_s is None or clock.now() - t0 < cfg.duration_s:
            observation, sent = step()
            if observation is not None:
                view.log_step(step.step - 1, clock.now() - t0, observation, sent, source="teleop")
            deadline += period
            if deadline < clock.now():  # fell behind: skip the missed periods, never burst
                deadline = clock.now()
                late += 1
            clock.sleep_until(deadline)
    except KeyboardInterrupt:
        step.interrupt()
        log.info("stopped: the arm holds its pose")
    finally:
        log.info("%s", summary(step.step, clock.now() - t0, cfg.fps, late, step.safety.counts))
    return step.step


def _describe(device: object) -> str:
    kind = getattr(device, "type", type(device).__name__)
    port = getattr(device, "port", None)
    return f"{kind}" + (f" on {port}" if port else "")


def summary(steps: int, elapsed_s: float, fps: float, late: int, events: dict[str, int]) -> str:
    """One line: periods run, rate reached against the asked one, late periods, safety events (faults)."""
    rate = steps / elapsed_s if elapsed_s > 0 else 0.0
    shown = ", ".join(f"{kind} {n}" for kind, n in sorted(events.items())) or "none"
    faults = sum(n for kind, n in events.items() if kind.startswith("bus_"))
    return (f"{steps} periods in {elapsed_s:.1f} s: {rate:.1f} Hz of {fps:g} asked, {late} late; "
            f"bus faults {faults}; safety events: {shown}")


def main(argv: list[str] | None = None) -> None:
    init_tool()
    terminate_as_interrupt()  # SIGTERM holds the arm and disconnects like Ctrl-C
    cfg = parse_config(TeleoperateConfig, argv, tool="teleoperate", doc=__doc__, aliases=LEROBOT_TELEOPERATE)
    with user_errors():
        teleoperate(cfg)


if __name__ == "__main__":
    main()
