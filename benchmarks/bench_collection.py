"""Collection throughput: env steps per second of the training job's collection in pixels mode, with the
env in the learner's process (--num_envs=1, policy/runner.ChunkRunner) and with N envs in worker
processes (--num_envs=N, policy/vector_runner.VectorChunkRunner). Prints a markdown table.

    python benchmarks/bench_collection.py                          # N = 1, 2; 64x64, front + wrist; 3 repeats
    python benchmarks/bench_collection.py --num-envs 1 2 4 --steps 1200 --size 128

What is timed is what `tools.train` does per env step apart from learning: chunks of h = 5 joint
targets played open loop, every step rendered (two cameras) and written to the online replay. The
chunks are small random motions about the present joints (rendering costs the same whatever the arm
does). Worker start-up (a fresh interpreter per env) is not timed; each number is the median over
`--repeats` runs (min-max beside it), the settings taking turns within each repeat, and the ratio is the
median of the repeats' ratios to --num_envs=1. CPU ms per step counts this process and its workers (all
their threads: the software renderer is multi-threaded); cores busy is that CPU time per wall second, which
says how much of the machine the collection got (on a shared machine, less than it wanted). The sim renders with MuJoCo's offscreen renderer (MUJOCO_GL=egl:
the GPU where there is one, Mesa's software renderer otherwise), so the numbers depend on the machine.
"""  # noqa: E501

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from policy.envs import make_env  # noqa: E402
from policy.replay import ChunkReplayBuffer  # noqa: E402
from policy.runner import ChunkRunner  # noqa: E402
from policy.vector_runner import VectorChunkRunner  # noqa: E402

ENV = "chunkbot/SO101Lift-v0"
CHUNK = 5
MOTION = 2.0   # std of the random joint motion per step, robot units


def _chunk(observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    joints = np.asarray(observation["observation.state"][:6], np.float32)   # pixels mode: the joint positions
    return joints + np.cumsum(rng.normal(0, MOTION, (CHUNK, 6)), axis=0).astype(np.float32)


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, all threads) of this process and the given ones, from /proc."""
    total = time.process_time()
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime
    return total


def _buffer(steps: int, size: int) -> ChunkReplayBuffer:
    shape = (size, size, 3)
    return ChunkReplayBuffer(steps + steps // 2 + 100, 6, 6, {"front": shape, "wrist": shape})


class InProcess:
    """--num_envs=1: the env steps in this process."""

    def __init__(self, env_kwargs: dict, size: int) -> None:
        self.env, self.size, self.runs = make_env(ENV, **env_kwargs), size, 0

    def run(self, steps: int, rng: np.random.Generator) -> tuple[float, float]:
        """(env steps per wall second, CPU seconds per step)."""
        runner = ChunkRunner(self.env, _buffer(steps, self.size), seed=self.runs)
        self.runs += 1
        done, t0, c0 = 0, time.perf_counter(), _cpu_seconds([])
        while done < steps:
            done += runner.run_chunk(_chunk(runner.observation, rng))
        return done / (time.perf_counter() - t0), (_cpu_seconds([]) - c0) / done

    def close(self) -> None:
        self.env.close()


class InWorkers:
    """--num_envs=N: rounds of one chunk per env, the envs in worker processes (started once)."""

    def __init__(self, env_kwargs: dict, num_envs: int, steps: int, size: int) -> None:
        self.num_envs, self.size = num_envs, size
        self.vector = VectorChunkRunner(ENV, env_kwargs, num_envs, None, seed=0)

    def run(self, steps: int, rng: np.random.Generator) -> tuple[float, float]:
        """(env steps per wall second, CPU seconds per step, this process and the workers together)."""
        # fresh buffers per run, written as the training job writes them
        self.vector.buffers = [_buffer(steps // self.num_envs, self.size) for _ in range(self.num_envs)]
        pids = self.vector.worker_pids
        done, t0, c0 = 0, time.perf_counter(), _cpu_seconds(pids)
        while done < steps:
            done += sum(self.vector.run_chunks([_chunk(o, rng) for o in self.vector.observations]))
        return done / (time.perf_counter() - t0), (_cpu_seconds(pids) - c0) / done

    def close(self) -> None:
        self.vector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=600, help="env steps per timed run (all envs together)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="camera frames, pixels a side")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch CPU threads of this process (tools.train --num_threads; default: torch's own)")
    args = parser.parse_args()
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    env_kwargs = {"obs_mode": "pixels", "image_height": args.size, "image_width": args.size, "max_episode_steps": 60}
    print(f"{ENV}, pixels mode (front + wrist, {args.size}x{args.size}), chunks of {CHUNK} open loop, replay "
          f"writes; {args.steps} steps per run, median (min-max) of {args.repeats}; MUJOCO_GL="
          f"{os.environ['MUJOCO_GL']}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "  # noqa: E501
          f"load average {os.getloadavg()[0]:.1f} at start\n")
    print("| --num_envs | where the envs step | env steps/s | vs --num_envs=1 | CPU ms per step | cores busy |")
    print("|---|---|---|---|---|---|")
    collectors = {n: InProcess(env_kwargs, args.size) if n == 1 else InWorkers(env_kwargs, n, args.steps, args.size)
                  for n in args.num_envs}
    rng = np.random.default_rng(0)
    rates: dict[int, list[float]] = {n: [] for n in collectors}
    cpu: dict[int, list[float]] = {n: [] for n in collectors}
    try:
        for c in collectors.values():
            c.run(4 * CHUNK * max(collectors), rng)   # warm the renderers up (not counted)
        # the settings take turns within each repeat, so a change of load on a shared machine hits them alike
        for _ in range(args.repeats):
            for n, c in collectors.items():
                rate, cpu_per_step = c.run(args.steps, rng)
                rates[n].append(rate)
                cpu[n].append(cpu_per_step)
    finally:
        for c in collectors.values():
            c.close()
    for n, r in rates.items():
        # the ratio to --num_envs=1 of each repeat (paired: the same moment's load), then its median
        ratio = statistics.median(x / y for x, y in zip(r, rates[1])) if 1 in rates else None
        where = "the learner's process" if n == 1 else f"{n} worker processes"
        # cores busy: CPU seconds per wall second of the collection (this process and its workers)
        busy = statistics.median(x * c for x, c in zip(r, cpu[n]))
        print(f"| {n} | {where} | {statistics.median(r):.0f} ({min(r):.0f}-{max(r):.0f}) | "
              f"{'-' if ratio is None else f'{ratio:.2f}x'} | {1000 * statistics.median(cpu[n]):.1f} | {busy:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
