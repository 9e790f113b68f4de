r"""Record teleoperated episodes into a LeRobotDataset (LeRobot's `lerobot-record`, for chunkbot arms).

    python -m tools.record --robot.type=sim_so101 --robot.task=lift --teleop.type=scripted \
        --dataset.repo_id=local/so101_lift --dataset.root=outputs/datasets/so101_lift --dataset.num_episodes=20

Each frame stores the policy frame (`observation.state`, `observation.images.<cam>`), the action
the robot actually received, `next.reward`, `next.success` and `next.done` (terminated). In
simulation the task gives reward and success and an episode ends on success or at the task's time
limit; a real arm runs each episode for `--dataset.episode_time_s` with `--dataset.reset_time_s`
between episodes. Every finished episode is committed to disk when it ends: Ctrl-C, SIGTERM, even a
SIGKILL or a power cut lose at most the episode in progress; `--dataset.resume=true` appends to the
dataset later (after rolling a killed recording back to its last finished episode),
`--dataset.overwrite=true` replaces it. `--teleop.noise=0.03` makes the scripted expert fail some
episodes and `--dataset.steps_after_success=30` keeps recording past a success: labelled data of both
classes for a success classifier (`tools.train_reward`). LeRobot's names work as in lerobot-record: `--resume`,
`--display_data`, `--dataset.video`, `--dataset.push_to_hub=false` (chunkbot uploads nothing). With no
options it records 20 scripted lift demos on the simulated SO-101 into outputs/datasets/so101_lift.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, register_for_cli
from robot.connection import disconnect
from robot.dataset_commit import DatasetBusyError, DatasetDamagedError
from robot.features import IMAGE_PREFIX, to_policy_frame
from robot.interface import action_dict_to_array
from robot.recording import DatasetRecorder, terminate_as_interrupt
from robot.safety import SafetyConfig
from robot.teleop_step import SafeTeleopStep
from robot.viz import ChunkView, VizConfig
from tools._cli import LEROBOT_RECORD
from tools._common import fail, init_tool, parse_config, user_errors

register_for_cli()
log = logging.getLogger("tools.record")


@dataclass
class DatasetRecordConfig:
    repo_id: str = "local/so101_lift"
    # Where the dataset is written (default: outputs/datasets/<name part of repo_id>).
    root: Path | None = None
    num_episodes: int = 20
    # Episode length for real arms; simulated tasks end on success or at their own time limit.
    episode_time_s: float = 30.0
    # Pause between real-arm episodes for a person to reset the scene.
    reset_time_s: float = 5.0
    # Task description stored with every frame (default: the sim task's name, or "teleoperation").
    single_task: str | None = None
    # Store camera frames as MP4 videos (smaller) instead of PNG images (exact).
    use_videos: bool = False
    # Append to an existing dataset at `root` instead of refusing to touch it.
    resume: bool = False
    # Delete an existing dataset at `root` and start over.
    overwrite: bool = False
    # Keep only successful episodes (simulation).
    only_successes: bool = False
    # Simulation: keep recording this many steps after the task first succeeds, each frame labelled with
    # its own `next.success` (LeRobot's number_of_steps_after_success): a success classifier
    # (tools.train_reward) needs more than one positive frame per episode. 0: the episode ends on success.
    steps_after_success: int = 0

    def resolved_root(self) -> Path:
        return self.root if self.root is not None else Path("outputs/datasets") / self.repo_id.split("/")[-1]

    def check(self) -> None:
        """Refuse, before any arm moves, what the recorder would refuse after connecting."""
        if self.num_episodes < 1:
            raise ValueError(f"--dataset.num_episodes must be >= 1, got {self.num_episodes}")
        if self.steps_after_success < 0:
            raise ValueError(f"--dataset.steps_after_success must be >= 0, got {self.steps_after_success}")
        if self.resume and self.overwrite:
            raise ValueError("--dataset.resume=true appends and --dataset.overwrite=true deletes: choose one")
        root = self.resolved_root()
        holds_data = root.is_dir() and any(root.iterdir())
        if holds_data and not (self.resume or self.overwrite):
            raise FileExistsError(f"{root} already holds a dataset: add --dataset.resume=true to append episodes, "
                                  f"--dataset.overwrite=true to delete it and start over, or choose another "
                                  f"--dataset.root")
        if root.exists() and not root.is_dir():
            raise FileExistsError(f"--dataset.root={root} is a file: choose a directory")


@dataclass
class RecordConfig:
    # The arm that records (default: the simulated SO-101; a real arm: --robot.type=so101_follower --robot.port=...).
    robot: RobotConfig = field(default_factory=lambda: RobotConfig.get_choice_class("sim_so101")())
    # What drives it (default: the sim's scripted expert; a leader arm: --teleop.type=so101_leader ...).
    teleop: TeleoperatorConfig = field(default_factory=lambda: TeleoperatorConfig.get_choice_class("scripted")())
    dataset: DatasetRecordConfig = field(default_factory=DatasetRecordConfig)
    # Seed of the first episode's scene in simulation (episode i uses seed + i).
    seed: int = 0
    # Pace the loop at the robot's fps. Default: real arms yes, simulation as fast as it runs.
    realtime: bool | None = None
    # Show a progress bar.
    progress: bool = True
    # Rerun view of the episodes (--viz.display_data=true and/or --viz.rrd=FILE).
    viz: VizConfig = field(default_factory=VizConfig)
    # Limits between the teleoperator and a real follower (simulated arms clip to their joint ranges).
    safety: SafetyConfig = field(default_factory=SafetyConfig)


def _is_sim(robot) -> bool:
    return hasattr(robot, "task") and hasattr(robot, "is_success")


def record(cfg: RecordConfig) -> Path:
    """Record `cfg.dataset.num_episodes` episodes; returns the dataset root."""
    from tqdm import tqdm

    root = cfg.dataset.resolved_root()
    cfg.dataset.check()
    robot = make_robot(cfg.robot)
    sim = _is_sim(robot)
    fps = int(getattr(cfg.robot, "fps", 30))
    realtime = (not sim) if cfg.realtime is None else cfg.realtime
    task_name = cfg.dataset.single_task or (robot.config.task if sim else "teleoperation")
    max_steps = robot.task.max_episode_steps if sim else int(round(cfg.dataset.episode_time_s * fps))

    log.info("recording %d episode(s) of %r with %s driven by %s into %s%s", cfg.dataset.num_episodes, task_name,
             cfg.robot.type, cfg.teleop.type, root, " (appending)" if cfg.dataset.resume else "")
    robot.connect()
    teleop = make_teleoperator(cfg.teleop, robot=robot)
    teleop.connect()
    try:
        recorder = DatasetRecorder(
            cfg.dataset.repo_id, root, fps, robot.observation_features, tuple(robot.action_features),
            robot_type=robot.name, use_videos=cfg.dataset.use_videos,
            resume=cfg.dataset.resume, overwrite=cfg.dataset.overwrite,
        )
    except BaseException:  # e.g. a dataset that cannot be resumed: let go of the arm before saying so
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(disconnect, robot)
            cleanup.callback(disconnect, teleop)
        raise
    first = recorder.num_episodes
    # Real arms: every action passes the safety layer, as a policy's chunks do.
    safe_step = None if sim else SafeTeleopStep(robot, teleop, cfg.safety)
    # Faster than real time (sim) nothing is lost by waiting for the view; in real time it drops instead.
    view = ChunkView.for_robot(cfg.viz, robot, fps=fps, chunk_size=1, name=f"record {root.name}",
                               lossless=not realtime)
    successes = attempts = 0
    bar = tqdm(total=cfg.dataset.num_episodes, desc=f"recording {root}", unit="ep", disable=not cfg.progress)
    try:
        while recorder.episodes_saved < cfg.dataset.num_episodes:
            seed = cfg.seed + first + attempts
            if sim:
                robot.reset(seed)
                if hasattr(teleop, "expert"):
                    teleop.expert.reset(seed)
            elif attempts > 0:
                log.info("reset the scene: next episode in %.0f s", cfg.dataset.reset_time_s)
                time.sleep(cfg.dataset.reset_time_s)
            attempts += 1
            view.start_episode(str(first + recorder.episodes_saved))
            if safe_step is not None:
                safe_step.start_episode()
            success = _record_episode(robot, teleop, recorder, max_steps, fps, realtime, sim, task_name, view,
                                      safe_step, cfg.dataset.steps_after_success)
            successes += int(success)
            if cfg.dataset.only_successes and not success:
                recorder.discard_episode()
            else:
                recorder.save_episode()
                bar.update(1)
            bar.set_postfix(success=f"{successes}/{attempts}")
    except KeyboardInterrupt:
        if safe_step is not None:
            safe_step.interrupt()
        log.warning("interrupted: the episode in progress is dropped, %d finished episode(s) are kept",
                    recorder.episodes_saved)
    finally:
        with contextlib.ExitStack() as cleanup:  # LIFO, and every step runs even if an earlier one raises
            cleanup.callback(disconnect, robot)  # after a fault, a failing disconnect is logged, not raised over it
            cleanup.callback(disconnect, teleop)
            cleanup.callback(recorder.close)
            cleanup.callback(view.close)
            cleanup.callback(bar.close)
    log.info("dataset %s: %d episode(s) (%d new), success %d/%d", root, recorder.num_episodes,
             recorder.episodes_saved, successes, attempts)
    return root


def _record_episode(robot, teleop, recorder: DatasetRecorder, max_steps: int, fps: int, realtime: bool,
                    sim: bool, task_name: str, view: ChunkView | None = None,
                    safe_step: SafeTeleopStep | None = None, steps_after_success: int = 0) -> bool:
    """One episode; True if the task succeeded. With `steps_after_success` the episode goes on that many
    steps past the first success (never past the time limit), every frame labelled with its own success
    and `next.done` only on the last."""
    period = 1.0 / fps
    deadline = time.perf_counter()
    success = succeeded = False
    end = max_steps
    for k in range(max_steps):
        if safe_step is None:  # simulation: the sim clips to its joint ranges itself
            observation = robot.get_observation()
            action = action_dict_to_array(robot.send_action(teleop.get_action()))
        else:
            observation, action = safe_step()
        if observation is not None and action is not None:  # a period on hold (bus fault) is not a frame
            frame = to_policy_frame(observation, robot.observation_features)
            success = bool(robot.is_success()) if sim else False
            if success and not succeeded:
                succeeded, end = True, min(max_steps, k + 1 + steps_after_success)
            last = k + 1 >= end
            recorder.add_frame(frame, action, reward=float(success), success=success,
                               done=succeeded and last, task=task_name)
            if view is not None and view.enabled:
                images = {c: frame[IMAGE_PREFIX + c] for c in view.cameras} if view.wants_images(k) else None
                view.log_step(k, time.perf_counter() if realtime else k * period, observation, action,
                              source="teleop", images=images)
        if succeeded and k + 1 >= end:
            break
        if realtime:
            deadline += period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                deadline = time.perf_counter()  # fell behind: do not burst to catch up
    return succeeded


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_config(RecordConfig, argv, tool="record", doc=__doc__, aliases=LEROBOT_RECORD)
    terminate_as_interrupt()
    with user_errors():  # a bus fault, a silent or faulty servo, a missing calibration (exit status 1)
        try:
            record(cfg)
        except (DatasetDamagedError, DatasetBusyError) as e:  # the dataset given is unusable (status 2)
            fail(str(e))


if __name__ == "__main__":
    main()
