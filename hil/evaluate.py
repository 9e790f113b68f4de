"""Score every checkpoint of a simulated session without the person: how the policy itself improved.

    python -m hil.evaluate --output_dir=outputs/hil/sim --task=lift --episodes=20

Each checkpoint's policy (deterministic chunks) runs `episodes` fresh sim episodes (seeds no
session used) through the same executor and safety settings as the session; one JSON line per
checkpoint: the session episode it was saved after, env steps, updates, success rate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from policy.checkpoint import CHECKPOINTS, PRETRAINED, TRAINING_STATE, learner_state_path
from policy.qchunk_sac import QChunkSACPolicy
from robot.config import make_robot, robot_config_for
from robot.executor import ChunkExecutor, ExecutionConfig
from robot.inference_worker import InlineInference
from robot.safety import SafetyConfig
from robot.timing import FakeClock

EVAL_SEED = 1_000_000


def evaluate_policy(policy: QChunkSACPolicy, robot, episodes: int, max_delta_per_step: float = 4.0) -> float:
    limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(robot.action_features, robot.action_low,
                                                           robot.action_high)}
    successes = 0
    for e in range(episodes):
        robot.reset(EVAL_SEED + e)
        policy.reset()
        ex = ChunkExecutor(robot, policy, ExecutionConfig(mode="open_loop"), clock=FakeClock(),
                           safety=SafetyConfig(joint_limits=limits, max_delta_per_step=max_delta_per_step),
                           inference=InlineInference(policy))
        ex.run(max_steps=robot.task.max_episode_steps, stop=robot.is_success)
        ex.close()
        successes += bool(robot.is_success())
    return successes / episodes


def evaluate_session(output_dir: Path, robot_type: str = "sim_so101", task: str = "lift", episodes: int = 20) -> list[dict]:
    robot = make_robot(robot_config_for(robot_type, task=task))
    robot.connect()
    rows = []
    for ckpt in sorted(p for p in (Path(output_dir) / CHECKPOINTS).iterdir() if p.name.isdigit()):
        state = json.loads((ckpt / TRAINING_STATE / "training_step.json").read_text())
        if not state.get("normalizer_fitted"):
            continue
        policy = QChunkSACPolicy.from_pretrained(ckpt / PRETRAINED)
        rate = evaluate_policy(policy, robot, episodes)
        updates = int(load_file(str(learner_state_path(ckpt)))["step"].item())
        rows.append({"after_episode": state.get("session", {}).get("episode", state.get("episodes")),
                     "env_steps": state["env_steps"], "updates": updates, "success_rate": rate})
        print(json.dumps(rows[-1]), flush=True)
    robot.disconnect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--robot_type", default="sim_so101")
    parser.add_argument("--task", default="lift")
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    evaluate_session(Path(args.output_dir), args.robot_type, args.task, args.episodes)


if __name__ == "__main__":
    main()
