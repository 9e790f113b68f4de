"""Simulation throughput: env steps per second with and without cameras, render time per frame,
scripted-expert cost and success rate. Prints markdown tables.

    python benchmarks/bench_sim.py                      # defaults: 5 repeats, 200 steps each
    python benchmarks/bench_sim.py --repeats 3 --steps 100 --expert-episodes 20

Each number is the median over `--repeats` runs (the spread is printed beside it as min-max), in
one process on one thread. Rendering is MuJoCo's offscreen renderer (MUJOCO_GL=egl; in software
on machines without a GPU), so its numbers depend mostly on the GL driver.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import robot.sim  # noqa: E402,F401  (registers the envs)
from robot.sim import ScriptedExpert  # noqa: E402


def _median_spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def env_steps_per_second(env_id: str, cameras: list[str], size: int, steps: int,
                         repeats: int) -> tuple[list[float], list[float]]:
    """Env steps per wall-clock second and per CPU second (this process, all its threads: the
    software renderer is multi-threaded) under small random joint motions about the start pose."""
    env = gym.make(env_id, cameras=cameras, image_height=size, image_width=size)
    rng = np.random.default_rng(0)
    wall, cpu = [], []
    for r in range(repeats):
        env.reset(seed=r)
        hold = env.unwrapped.robot.joint_positions().astype(np.float32)
        actions = hold + rng.normal(0, 2.0, (steps, 6)).astype(np.float32)
        t0, c0 = time.perf_counter(), time.process_time()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        wall.append(steps / (time.perf_counter() - t0))
        cpu.append(steps / max(time.process_time() - c0, 1e-9))
    env.close()
    return wall, cpu


def render_ms(env_id: str, camera: str, size: int, frames: int, repeats: int) -> list[float]:
    env = gym.make(env_id)
    env.reset(seed=0)
    arm = env.unwrapped.robot.arm
    arm.render(camera, size, size)  # renderer creation and first-frame costs are not per-frame costs
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(frames):
            arm.render(camera, size, size)
        times.append(1e3 * (time.perf_counter() - t0) / frames)
    env.close()
    return times


def expert_stats(env_id: str, episodes: int) -> tuple[float, float, float]:
    """(success rate, mean episode length of successes, ms per expert action)."""
    env = gym.make(env_id)
    expert = ScriptedExpert()
    successes, lengths, act_time, acts = 0, [], 0.0, 0
    for ep in range(episodes):
        env.reset(seed=10_000 + ep)
        for t in range(1, 10_000):  # noqa: B007 (its last value is the length)
            t0 = time.perf_counter()
            action = expert.act(env)
            act_time += time.perf_counter() - t0
            acts += 1
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        if info["is_success"]:
            successes += 1
            lengths.append(t)
    env.close()
    return successes / episodes, float(np.mean(lengths)) if lengths else float("nan"), 1e3 * act_time / acts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=96, help="camera height = width (pixels)")
    parser.add_argument("--expert-episodes", type=int, default=20)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    print(f"## Env steps per second (median of {args.repeats}, min-max; 30 Hz control, "
          f"{args.size}x{args.size} images)\n")
    print("wall-clock, and in brackets per CPU-second of this process (what a busy, shared machine "
          "would give with the CPU to itself)\n")
    print("| env | no cameras | front | front + wrist |")
    print("|---|---|---|---|")
    for env_id in ("chunkbot/SO101Lift-v0", "chunkbot/KochLift-v0"):
        cells = []
        for cams in ([], ["front"], ["front", "wrist"]):
            wall, cpu = env_steps_per_second(env_id, cams, args.size,
                                             args.steps if not cams else max(20, args.steps // 4), args.repeats)
            cells.append(f"{_median_spread(wall)} [{statistics.median(cpu):.0f}]")
        print(f"| {env_id} | " + " | ".join(cells) + " |")

    print(f"\n## Render time per frame, ms (median of {args.repeats} x {args.frames} frames)\n")
    print("| env | camera | 96x96 | 128x128 |")
    print("|---|---|---|---|")
    for env_id in ("chunkbot/SO101Lift-v0", "chunkbot/KochLift-v0"):
        for cam in ("front", "wrist"):
            cells = [_median_spread(render_ms(env_id, cam, size, args.frames, args.repeats), "{:.1f}")
                     for size in (96, 128)]
            print(f"| {env_id} | {cam} | " + " | ".join(cells) + " |")

    if args.expert_episodes > 0:
        print(f"\n## Scripted expert ({args.expert_episodes} episodes each, seeds 10000+)\n")
        print("| env | success | mean steps to success | ms per action (IK) |")
        print("|---|---|---|---|")
        for env_id in sorted(robot.sim.ENV_IDS):
            rate, length, ms = expert_stats(env_id, args.expert_episodes)
            print(f"| {env_id} | {100 * rate:.0f}% | {length:.0f} | {ms:.2f} |")


if __name__ == "__main__":
    main()
