"""Control-loop timing of the chunk executor with a policy in the loop.

    .venv/bin/python -m benchmarks.bench_executor [--seconds 5] [--robot sim|toy]

Runs `ChunkExecutor.run` in real time (RealClock, inference on its own thread, receding mode) at
50 Hz and 100 Hz on the simulated SO-101 (robot/sim; `send_action` steps MuJoCo one period, so
"write" includes the physics) or on the first-order test arm, with three policies:

- `torch-mlp`: a 3x256 MLP actor in torch (CPU, 1 thread): inference well under a period;
- `sleep-3T`: inference takes 3 control periods and releases the GIL (a GPU or a remote policy);
- `python-3T`: inference takes 3 periods of pure-Python work, holding the GIL (the worst case
  for a Python control loop; `ExecutionConfig.gil_switch_interval_s` bounds the damage);
- `python-3T (process)`: the same policy in a child process (`ProcessInference`): no GIL shared.

Prints a markdown table: period and jitter (start minus deadline) p50/p99/max, bus read/write p50,
inference latency p50, missed deadlines, the worst gap between two commands sent to the robot, and
steps that held because the queue ran dry.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot.executor import ChunkExecutor, ExecutionConfig  # noqa: E402
from robot.inference_worker import ProcessInference  # noqa: E402
from robot.interface import ACTION_NAMES  # noqa: E402
from robot.safety import SafetyConfig  # noqa: E402
from robot.timing import RealClock  # noqa: E402

CHUNK = 10


class _ReachBase:
    """Chunks that drift every joint slowly around the start pose (keeps the arm moving, safely)."""

    def __init__(self, fps: float, state_dim_hint: int = 6):
        self.chunk_size = CHUNK
        self.fps = fps
        self.action_names = ACTION_NAMES
        self._t = 0

    def _chunk(self, state: np.ndarray) -> np.ndarray:
        self._t += 1
        j = np.arange(1, CHUNK + 1)[:, None]
        return (state[:6] + 0.2 * np.sin(0.05 * (self._t + j)) * np.ones(6)).astype(np.float32)

    def reset(self) -> None:
        self._t = 0


class TorchMLPPolicy(_ReachBase):
    name = "torch-mlp"

    def __init__(self, fps: float, state_dim: int):
        super().__init__(fps)
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.torch = torch
        self.net = torch.nn.Sequential(
            torch.nn.Linear(state_dim, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, CHUNK * 6), torch.nn.Tanh(),
        ).eval()

    def predict_chunk(self, observation):
        state = observation["observation.state"]
        with self.torch.inference_mode():
            out = self.net(self.torch.from_numpy(state)[None]).numpy().reshape(CHUNK, 6)
        return self._chunk(state) + 0.05 * out


class SleepPolicy(_ReachBase):
    name = "sleep-3T"

    def predict_chunk(self, observation):
        time.sleep(3.0 / self.fps)
        return self._chunk(observation["observation.state"])


class PythonBusyPolicy(_ReachBase):
    name = "python-3T"

    def predict_chunk(self, observation):
        end = time.perf_counter() + 3.0 / self.fps
        x = 0
        while time.perf_counter() < end:  # pure-Python work: holds the GIL
            for i in range(200):
                x += i * i
        return self._chunk(observation["observation.state"])


class ProcessPythonBusy:
    """Marker: PythonBusyPolicy run in a child process (ProcessInference) instead of a thread."""

    name = "python-3T (process)"


def make_robot_for(kind: str, fps: int):
    if kind == "sim":
        from robot import make_robot, robot_config_for

        robot = make_robot(robot_config_for("sim_so101", task="lift", fps=fps, seed=0))
        robot.connect()
        limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, robot.action_low, robot.action_high)}
        return robot, limits
    from emulators.first_order_arm import WIDE_LIMITS, FirstOrderArm

    robot = FirstOrderArm(RealClock())
    robot.connect()
    return robot, WIDE_LIMITS


def bench(kind: str, fps: int, policy_cls, seconds: float, rt: int | None) -> dict[str, float]:
    robot, limits = make_robot_for(kind, fps)
    state_dim = sum(1 for v in robot.observation_features.values() if v is float)
    runner = None
    if policy_cls is ProcessPythonBusy:
        runner = ProcessInference(functools.partial(PythonBusyPolicy, fps))
        policy = runner.spec
    else:
        policy = policy_cls(fps, state_dim) if policy_cls is TorchMLPPolicy else policy_cls(fps)
    ex = ChunkExecutor(robot, policy, ExecutionConfig(mode="receding", n_receding=5, realtime_priority=rt),
                       safety=SafetyConfig(joint_limits=limits), clock=RealClock(), inference=runner)
    with ex:
        ex.run(max_steps=10)  # warm-up (first inference, caches)
        ex.timing.clear()
        ex.run(max_steps=int(seconds * fps))
    s = ex.timing.summary()
    s["policy"] = policy_cls.name
    s["fps"] = fps
    return s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per configuration")
    parser.add_argument("--robot", choices=["sim", "toy"], default="sim")
    parser.add_argument("--fps", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--realtime-priority", type=int, default=None,
                        help="SCHED_FIFO priority for the loop thread (needs root / CAP_SYS_NICE)")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    rows = [bench(args.robot, fps, cls, args.seconds, args.realtime_priority)
            for fps in args.fps for cls in (TorchMLPPolicy, SleepPolicy, PythonBusyPolicy, ProcessPythonBusy)]
    print(f"\nrobot: {args.robot}, mode: receding (h={CHUNK}, n=5), {args.seconds:g} s per row, "
          f"loop priority: {'SCHED_FIFO ' + str(args.realtime_priority) if args.realtime_priority else 'normal'}, "
          f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| fps | policy | inference p50 ms | period p50 / p99 ms | jitter p50 / p99 / max ms | read p50 ms "
          "| write p50 ms | missed | worst command gap ms | hold steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in rows:
        print(f"| {s['fps']} | {s['policy']} | {s['latency_p50_ms']:.2f} | {s['period_p50_ms']:.2f} / "
              f"{s['period_p99_ms']:.2f} | {s['jitter_p50_ms']:.3f} / {s['jitter_p99_ms']:.3f} / "
              f"{s['jitter_max_ms']:.3f} | {s['read_p50_ms']:.3f} | {s['write_p50_ms']:.3f} | {int(s['missed'])} "
              f"| {s['command_gap_max_ms']:.2f} | {int(s['hold_steps'])} |")


if __name__ == "__main__":
    main()
