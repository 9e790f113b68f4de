"""Wiring a session together: robot, teleoperator, keys, learner (here or remote), resume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hil.config import HILConfig
from hil.episode import EpisodeResult
from hil.learner import HILLearner
from hil.link import LocalLink
from hil.session import HILSession
from policy.checkpoint import last_checkpoint
from robot.config import make_robot, make_teleoperator
from robot.connection import disconnect
from robot.keyboard import KeyHub, TerminalKeyReader
from robot.recording import terminate_as_interrupt
from robot.sim.robot import SimRobotConfig

log = logging.getLogger(__name__)


def open_learner(cfg: HILConfig) -> tuple[HILLearner, dict[str, Any]]:
    """A new learner, or the one checkpointed in cfg.output_dir when cfg.resume."""
    out = Path(cfg.output_dir)
    if last_checkpoint(out) is not None and not cfg.resume:
        raise FileExistsError(f"{out} already holds a session; pass --resume=true to continue it, or choose "
                              "another --output_dir")
    if cfg.resume and last_checkpoint(out) is not None:
        learner, extra = HILLearner.resume(out, cfg.learner)
        return learner, dict(extra.get("session") or {})
    return HILLearner(cfg.policy, cfg.learner), {}


def build_devices(cfg: HILConfig, hub: KeyHub) -> tuple[Any, Any]:
    robot = make_robot(cfg.robot)
    if getattr(cfg.teleop, "type", None) == "keyboard":
        teleop = cfg.teleop.build(robot=robot, hub=hub)
    else:
        teleop = make_teleoperator(cfg.teleop, robot=robot)
    return robot, teleop


def run_session(cfg: HILConfig, link, start: dict[str, Any]) -> list[EpisodeResult]:
    """Connect the devices, run the session over `link`, always disconnect."""
    terminate_as_interrupt()
    hub = KeyHub()
    robot, teleop = build_devices(cfg, hub)
    reader = None
    robot.connect()
    try:
        teleop.connect()
        try:
            session = HILSession(cfg, robot, teleop, link, hub, start_episode=int(start.get("episode", 0)),
                                 env_steps=int(start.get("env_steps", 0)))
            if not session.person.sim:   # a person at a real arm presses keys in this terminal
                reader = TerminalKeyReader(hub).start()
            return session.run()
        finally:
            if reader is not None:
                reader.stop()
            disconnect(teleop)  # after a fault, a failing disconnect is logged, not raised over it
    finally:
        link.close()
        disconnect(robot)


def run_local_session(cfg: HILConfig) -> list[EpisodeResult]:
    learner, start = open_learner(cfg)
    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    learner.metrics_path = Path(cfg.output_dir) / "metrics.jsonl"
    is_sim = isinstance(cfg.robot, SimRobotConfig)
    background = (not is_sim if cfg.realtime is None else cfg.realtime) if cfg.learner_thread is None \
        else cfg.learner_thread
    return run_session(cfg, LocalLink(learner, background), start)
