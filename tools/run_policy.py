r"""Run a chunk policy on a robot through the chunk executor and its safety layer.

    python -m tools.run_policy --robot.type=sim_so101 --robot.task=lift --policy.path=actor.onnx \
        --episodes=5
    python -m tools.run_policy --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=arm \
        --policy.path=actor.onnx --episodes=1 --max_steps=600

`--policy.path` is an exported `.onnx` actor (run by `export.OnnxChunkPolicy` on onnxruntime: the
process never imports torch on a simulated arm), a torch checkpoint dir (`QChunkSACPolicy`), or a
Hugging Face Hub repo id (`owner/name`) of a pushed chunkbot policy, fetched into the HF cache.
Each episode runs at the policy's fps on the real-time executor; the simulated arm advances its
physics in `send_action`, so it runs at the control rate like a real one. `--realtime=false`
(simulation only) replaces the wall clock by a simulated one and runs inference inline, as fast as
the CPU allows and bit-for-bit repeatable. In simulation an episode ends on task success or after
`--max_steps` (default: the task's limit) and success is reported per episode; a real arm runs
`--max_steps` steps (default 30 s) per episode with `--reset_time_s` between episodes.
Chunks play whole, open loop (`--execution.mode=receding` re-plans every half chunk, for policies
trained that way). Each episode's result is logged as it ends; the JSON summary (per episode, success rate) goes to
stdout and to `--output`. LeRobot's `--display_data` and `--fps` (lerobot-rollout) work too.
Why the success here can differ from tools.train's evaluation: docs/design.md, "Evaluation and
deployment".
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.hub import is_repo_id, pretrained_dir
from robot.config import RobotConfig, register_for_cli
from robot.connection import connected
from robot.executor import ChunkExecutor, ExecutionConfig, InferenceError
from robot.safety import SafetyConfig
from robot.viz import VizConfig
from tools._cli import LEROBOT_ROLLOUT
from tools._common import fail, init_tool, parse_config, user_errors

log = logging.getLogger("tools.run_policy")


@dataclass
class PolicyRef:
    # An exported actor (.onnx) or a torch checkpoint (output dir, checkpoint dir or pretrained_model dir).
    path: Path | None = None
    # onnxruntime intra-op threads (1 leaves the other cores to the control loop).
    intra_op_threads: int = 1


@dataclass
class RunPolicyConfig:
    """Run an exported .onnx actor or a torch checkpoint on a robot through the chunk executor."""

    # The robot (default: the simulated SO-101); --robot.type=so101_follower --robot.port=... for a real arm,
    # or any robot type LeRobot knows, with its options.
    robot: RobotConfig = field(default_factory=lambda: RobotConfig.get_choice_class("sim_so101")())
    policy: PolicyRef = field(default_factory=PolicyRef)
    # How chunks are played. Open loop (whole chunks, as Q-chunking trains and evaluates them) by default:
    # receding (half a chunk, then a fresh one) lifted a trained Lift policy in 12 % of the scenes where
    # open loop lifted it in 39 % (docs/design.md, "Evaluation and deployment").
    execution: ExecutionConfig = field(default_factory=lambda: ExecutionConfig(mode="open_loop"))
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    # Episodes to run.
    episodes: int = 1
    # Control steps per episode; default: the sim task's limit, or 30 s on a real arm.
    max_steps: int | None = None
    # Seed of the first simulated episode (episode i uses seed + i).
    seed: int = 0
    # Wall-clock real time (true) or a simulated clock with inline inference (false; simulation only).
    realtime: bool = True
    # Pause between real-arm episodes for a person to reset the scene.
    reset_time_s: float = 5.0
    # Run a policy exported for another robot type (e.g. a sim_so101 policy on an so101_follower).
    allow_other_robot_type: bool = False
    # Write the per-episode results (JSON) here as well as printing them.
    output: Path | None = None
    # Rerun view of the chunks, predicted vs executed (--viz.display_data=true and/or --viz.rrd=FILE).
    viz: VizConfig = field(default_factory=VizConfig)


def load_policy(path: Path, robot: Any, robot_type: str, cfg: RunPolicyConfig):
    """OnnxChunkPolicy for .onnx (checked against the robot), QChunkSACPolicy for a torch checkpoint."""
    if path.suffix == ".onnx":
        from export.onnx_policy import OnnxChunkPolicy

        policy = OnnxChunkPolicy(path, intra_op_threads=cfg.policy.intra_op_threads)
        policy.check_robot(robot.observation_features, tuple(robot.action_features), robot_type,
                           cfg.allow_other_robot_type)
        return policy
    from policy.qchunk_sac import QChunkSACPolicy  # torch: only for a torch checkpoint

    return QChunkSACPolicy.from_pretrained(path)


class ChunkValueRecorder:
    """A ChunkPolicy that passes through to an ONNX actor exported with its critic and keeps the
    critic's value of every chunk it predicted (what a Rerun view or a log shows beside the chunk)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.chunk_size, self.action_names, self.fps = policy.chunk_size, policy.action_names, policy.fps
        self.history_length = policy.history_length   # the executor keeps the window the actor reads
        self.values: list[float] = []

    @property
    def last_value(self) -> float | None:  # what the Rerun chunk view reads (robot.viz)
        return self.policy.last_value

    def predict_chunk(self, observation: dict[str, Any]) -> Any:
        chunk = self.policy.predict_chunk(observation)
        self.values.append(self.policy.last_value)
        return chunk

    def reset(self) -> None:
        self.policy.reset()
        self.values.clear()


def _is_sim(robot: Any) -> bool:
    return hasattr(robot, "is_success") and hasattr(robot, "reset")


def run(cfg: RunPolicyConfig) -> list[dict[str, Any]]:
    from robot.config import make_robot

    if cfg.policy.path is None:
        raise ValueError("--policy.path is required (an exported .onnx actor or a torch checkpoint dir)")
    robot = make_robot(cfg.robot)
    sim = _is_sim(robot)
    if not cfg.realtime and not sim:
        raise ValueError("--realtime=false needs a simulated robot; a real arm always runs on the wall clock")
    policy = load_policy(Path(cfg.policy.path), robot, cfg.robot.type, cfg)
    if getattr(policy, "has_critic", False):
        policy = ChunkValueRecorder(policy)
    fps = float(policy.fps)
    sim_fps = getattr(cfg.robot, "fps", None)
    if sim and sim_fps is not None and not math.isclose(float(sim_fps), fps):
        raise ValueError(f"the policy runs at {fps} fps but --robot.fps={sim_fps}; set --robot.fps={fps:g}")
    max_steps = cfg.max_steps or (robot.task.max_episode_steps if sim else int(round(30.0 * fps)))
    with connected(robot):  # a failing disconnect never hides the fault that stopped the run
        return _run_episodes(cfg, robot, policy, sim, fps, max_steps)


def _run_episodes(cfg: RunPolicyConfig, robot: Any, policy: Any, sim: bool, fps: float,
                  max_steps: int) -> list[dict[str, Any]]:
    from robot.inference_worker import InlineInference
    from robot.timing import FakeClock
    from robot.viz import ChunkView, attach_view

    results: list[dict[str, Any]] = []
    view = ChunkView.for_robot(cfg.viz, robot, fps=fps, chunk_size=int(policy.chunk_size),
                               name=f"{Path(cfg.policy.path).name} on {cfg.robot.type}", lossless=not cfg.realtime)
    try:
        for episode in range(cfg.episodes):
            if sim:
                robot.reset(cfg.seed + episode)
            elif episode > 0:
                log.info("reset the scene: next episode in %.0f s", cfg.reset_time_s)
                time.sleep(cfg.reset_time_s)
            policy.reset()
            # a fresh executor per episode: its queue, safety state and timing stats are the episode's own
            clock = None if cfg.realtime else FakeClock()
            inference = None if cfg.realtime else InlineInference(policy, latency_s=0.0)
            executor = ChunkExecutor(robot, policy, cfg.execution, safety=cfg.safety, clock=clock, inference=inference)
            t0 = time.perf_counter()
            view.start_episode(str(episode))
            try:
                with attach_view(view, executor):
                    result = executor.run(max_steps=max_steps, stop=robot.is_success if sim else None)
            finally:
                executor.close()
            timing = executor.timing.summary()
            row: dict[str, Any] = {"episode": episode, "steps": result.steps, "missed_deadlines": result.missed,
                                   "wall_s": round(time.perf_counter() - t0, 3)}
            if sim:
                row["success"] = bool(robot.is_success())
            if cfg.realtime:
                row["inference_latency_p50_ms"] = _ms(timing.get("latency_p50_ms"))
                row["period_p99_ms"] = _ms(timing.get("period_p99_ms"))
            if isinstance(policy, ChunkValueRecorder) and policy.values:
                row["chunk_value_mean"] = round(float(sum(policy.values) / len(policy.values)), 4)
            row["safety_events"] = dict(executor.safety.counts)
            results.append(row)
            log.info("episode %d: %s", episode, json.dumps(row))
    finally:
        view.close()
    return results


def _ms(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 3)


def main(argv: list[str] | None = None) -> None:
    init_tool()
    argv = sys.argv[1:] if argv is None else argv
    register_for_cli(argv, prefixes=("robot",))  # a sim arm imports neither LeRobot nor torch
    cfg = parse_config(RunPolicyConfig, argv, tool="run_policy", doc=__doc__, aliases=LEROBOT_ROLLOUT)
    if cfg.policy.path is None:
        fail("--policy.path is required: an exported .onnx actor or a tools.train output / checkpoint dir")
    if is_repo_id(cfg.policy.path):  # a Hub repo: fetched (or found in the HF cache) before any work starts
        with user_errors(code=2):
            cfg.policy.path = pretrained_dir(cfg.policy.path)
    if not Path(cfg.policy.path).exists():
        fail(f"--policy.path={cfg.policy.path} does not exist: give an exported .onnx actor, a tools.train "
             "output / checkpoint dir, or a Hugging Face Hub repo id (owner/name)")
    log.info("running %s on %s for %d episode(s), %s execution%s", cfg.policy.path, cfg.robot.type, cfg.episodes,
             cfg.execution.mode, "" if cfg.realtime else " on a simulated clock")
    with user_errors(InferenceError, RuntimeError, code=2):
        results = run(cfg)
    summary: dict[str, Any] = {"policy": str(cfg.policy.path), "robot": cfg.robot.type, "episodes": results}
    if results and "success" in results[0]:
        summary["success_rate"] = sum(r["success"] for r in results) / len(results)
    text = json.dumps(summary, indent=2)
    print(text)
    if cfg.output is not None:
        cfg.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
