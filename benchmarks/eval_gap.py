"""Why tools.run_policy's success rate differs from tools.train's evaluation: one change at a time.

    .venv/bin/python -m benchmarks.eval_gap --policy outputs/train --episodes 20
    .venv/bin/python -m benchmarks.eval_gap --policy outputs/train --episodes 20 --realtime   # + wall-clock rows

One checkpoint, the task it was trained on (read from its train_config.json), and the scenes tools.train
evaluates (`env.reset(seed=10_000 + i)`, i < episodes) unless a row says otherwise. Rows, from training's
evaluation loop to run_policy's defaults:

1. tools.train's evaluation: the gymnasium env, the mean chunk played open loop, no safety layer;
2. the chunk executor, open loop, a simulated clock with inline inference, safety limits out of the way;
3. + the safety layer's joint limits and start-jump easing (rate cap out of the way);
4. + its rate cap: the whole safety layer as run_policy uses it (open loop, run_policy's default mode);
5. + receding execution (`--execution.mode=receding`: n = h // 2 actions per chunk, then a new chunk);
6. row 5 on run_policy's scenes instead of training's (robot.reset(seed + i) with --seed=0);
7. (--realtime) row 5 on the wall clock with threaded inference;
8. row 4 with the rate cap doubled (--safety.max_delta_per_step=8);
9. row 2 in receding mode: what receding costs with no safety layer in the way;
10. (--realtime) row 8 on the wall clock: `--execution.mode=open_loop --safety.max_delta_per_step=8`.

Prints a markdown table: success rate with its 95 % Wilson interval, the scenes won and lost against the row
last row on the same scenes (a paired comparison tells more than two intervals do), and the safety layer's
interventions per episode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def env_scene_seed(seed: int) -> int:
    """The scene seed the sim env draws in `reset(seed=seed)` (gymnasium seeds its generator with it)."""
    from gymnasium.utils import seeding

    rng, _ = seeding.np_random(seed)
    return int(rng.integers(2**31 - 1))


def training_evaluation(policy, env_name: str, episodes: int) -> list[bool]:
    from policy.runner import ChunkRunner
    from policy.training import make_env
    from robot.history import ObservationHistory

    env = make_env(env_name)
    history = ObservationHistory(policy.history_length)
    runner = ChunkRunner(env, None, 10_000, history.push)
    while len(runner.finished) < episodes:
        runner.run_chunk(policy.action_chunk(history.frame(), True).cpu().numpy())
    return [e.success for e in runner.finished[:episodes]]


def executor_episodes(policy, arm: str, task: str, scene_seeds: list[int], mode: str, safety,
                      realtime: bool, events: Counter) -> list[bool]:
    """Episodes through the chunk executor as tools.run_policy runs them; `safety`: a SafetyConfig."""
    from robot.config import make_robot, robot_config_for
    from robot.executor import ChunkExecutor, ExecutionConfig
    from robot.inference_worker import InlineInference
    from robot.timing import FakeClock

    robot = make_robot(robot_config_for(f"sim_{arm}", task=task))
    robot.connect()
    out = []
    try:
        for seed in scene_seeds:
            robot.reset(seed)
            policy.reset()
            clock = None if realtime else FakeClock()
            inference = None if realtime else InlineInference(policy, latency_s=0.0)
            executor = ChunkExecutor(robot, policy, ExecutionConfig(mode=mode), safety=safety, clock=clock,
                                     inference=inference)
            try:
                executor.run(max_steps=robot.task.max_episode_steps, stop=robot.is_success)
            finally:
                executor.close()
            events.update(executor.safety.counts)
            out.append(bool(robot.is_success()))
    finally:
        robot.disconnect()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="a tools.train output dir (or its checkpoint)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--realtime", action="store_true", help="add the wall-clock row (episodes take real time)")
    parser.add_argument("--realtime-episodes", type=int, default=30, help="episodes of the wall-clock row")
    args = parser.parse_args(argv)

    import torch

    from policy.qchunk_sac import QChunkSACPolicy
    from robot.sim.tasks import ENV_IDS

    torch.set_num_threads(1)
    path = Path(args.policy)
    policy = QChunkSACPolicy.from_pretrained(path)
    train_cfg = next((json.loads(p.read_text()) for p in (path / "checkpoints" / "last" / "pretrained_model" /
                                                          "train_config.json", path / "train_config.json",
                                                          path / "pretrained_model" / "train_config.json")
                      if p.is_file()), {})
    env_name = train_cfg.get("env_name", "chunkbot/SO101Lift-v0")
    arm, task = ENV_IDS[env_name]
    n = args.episodes
    train_scenes = [env_scene_seed(10_000 + i) for i in range(n)]
    from robot.safety import SafetyConfig

    off = SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6)   # limits out of the way
    no_cap = SafetyConfig(max_delta_per_step=1e6)
    on = SafetyConfig()                                              # run_policy's defaults
    wide = SafetyConfig(max_delta_per_step=8.0)

    def ex(mode, safety, realtime=False):
        return lambda scenes, ev: executor_episodes(policy, arm, task, scenes, mode, safety, realtime, ev)

    # (label, scenes, run, row it is compared with on the same scenes)
    rows = [
        ("1. tools.train evaluation (env loop, open loop, no safety)", train_scenes,
         lambda scenes, ev: training_evaluation(policy, env_name, n), None),
        ("2. executor, open loop, simulated clock, safety limits out of the way", train_scenes, ex("open_loop", off), 1),
        ("3. + joint limits and start-jump easing", train_scenes, ex("open_loop", no_cap), 2),
        ("4. + rate cap 4 units per period (run_policy's whole safety layer)", train_scenes, ex("open_loop", on), 3),
        ("5. + receding execution (--execution.mode=receding)", train_scenes, ex("receding", on), 4),
        ("6. row 5 on run_policy's scenes (--seed=0)", list(range(n)), ex("receding", on), None),
        ("8. row 4 with a rate cap of 8 (--safety.max_delta_per_step=8)", train_scenes, ex("open_loop", wide), 4),
        ("9. row 2 receding: receding alone, safety limits out of the way", train_scenes, ex("receding", off), 2),
    ]
    if args.realtime:
        m = args.realtime_episodes
        rows.insert(6, (f"7. row 5 on the wall clock, threaded inference ({m} episodes)",
                        train_scenes[:m], ex("receding", on, realtime=True), 5))
        rows.append((f"10. row 8 on the wall clock: run_policy --safety.max_delta_per_step=8 (open loop holds while the "
                     f"next chunk is computed; {m} episodes)", train_scenes[:m], ex("open_loop", wide, realtime=True), 8))
    print(f"policy {path}, {env_name}, {n} episodes per row\n")
    print("| condition | success | 95 % interval | scenes won / lost against row | safety interventions per episode |")
    print("|---|---|---|---|---|")
    done: dict[int, list[bool]] = {}
    for name, scenes, run, against in rows:
        events: Counter = Counter()
        results = run(scenes, events)
        done[int(name.split(".")[0])] = results
        k = int(np.sum(results))
        lo, hi = wilson(k, len(results))
        paired = "-"
        if against is not None:
            base = done[against][: len(results)]
            won = sum(r and not b for r, b in zip(results, base))
            lost = sum(b and not r for r, b in zip(results, base))
            paired = f"+{won} / -{lost} against {against}"
        shown = ", ".join(f"{kind} {count / len(results):.1f}" for kind, count in sorted(events.items())) or "-"
        print(f"| {name} | {k}/{len(results)} = {k / len(results):.2f} | {lo:.2f}-{hi:.2f} | {paired} | {shown} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
