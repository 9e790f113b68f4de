"""Control-loop jitter with and without the Rerun chunk view, at 50 Hz on the simulated SO-101.

    .venv/bin/python -m benchmarks.bench_viz [--seconds 10] [--repeats 2] [--fps 50]

`ChunkExecutor.run` in real time (RealClock, receding h=10 n=5, inference on its own thread: a
small numpy policy that sleeps `--inference-ms`, releasing the GIL like torch or onnxruntime do), on
the sim arm (`send_action` steps MuJoCo one period). Configurations, interleaved and repeated so
that load from other processes hits them alike:

- `off`: no view;
- `rrd`: ChunkView writing a .rrd (arm in 3D from the sim model, chunk paths, joints, timing).

Prints a markdown table: jitter (step start minus deadline) p50 / p99 / max, period p99, missed
deadlines, process CPU (all threads, % of one core), records the view dropped, .rrd size. The goal:
p99 jitter grows by less than 0.2 ms with the view on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robot.executor import ChunkExecutor, ExecutionConfig  # noqa: E402
from robot.interface import ACTION_NAMES  # noqa: E402
from robot.safety import SafetyConfig  # noqa: E402
from robot.sim import SimSO101Config  # noqa: E402
from robot.timing import RealClock  # noqa: E402
from robot.viz import ChunkView, VizConfig, attach_view  # noqa: E402

CHUNK = 10


class WavePolicy:
    """Chunks that sway every joint a few degrees around the start pose; `delay_s` of GIL-free wait."""

    def __init__(self, fps: float, delay_s: float):
        self.chunk_size, self.fps, self.action_names = CHUNK, fps, ACTION_NAMES
        self.delay_s = delay_s
        self._center: np.ndarray | None = None

    def predict_chunk(self, observation):
        state = observation["observation.state"][:6].astype(np.float64)
        if self._center is None:
            self._center = state.copy()
        time.sleep(self.delay_s)
        t = time.perf_counter() + np.arange(1, CHUNK + 1)[:, None] / self.fps
        return (self._center + 5.0 * np.sin(2.0 * t) * np.ones(6)).astype(np.float32)

    def reset(self) -> None:
        self._center = None


def run_once(config: str, fps: int, seconds: float, delay_s: float, out_dir: Path) -> dict[str, float]:
    robot = SimSO101Config(task="lift", fps=fps, seed=0).build()
    robot.connect()
    limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, robot.action_low, robot.action_high)}
    policy = WavePolicy(fps, delay_s)
    ex = ChunkExecutor(robot, policy, ExecutionConfig(mode="receding", n_receding=5),
                       safety=SafetyConfig(joint_limits=limits), clock=RealClock())
    rrd = out_dir / f"bench_{config}_{time.monotonic_ns()}.rrd"
    view = ChunkView.for_robot(VizConfig(rrd=rrd if config == "rrd" else None), robot, fps=fps, chunk_size=CHUNK)
    with ex:
        ex.run(max_steps=10)  # warm-up: first inference, caches
        ex.timing.clear()
        with attach_view(view, ex):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            ex.run(max_steps=int(seconds * fps))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        view.close()
    robot.disconnect()
    s = ex.timing.summary()
    s.update(config=config, cpu_pct=100.0 * cpu / wall, dropped=float(view.dropped),
             rrd_mb=rrd.stat().st_size / 1e6 if rrd.exists() else 0.0)
    return s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration (interleaved)")
    parser.add_argument("--fps", type=int, default=50)
    parser.add_argument("--inference-ms", type=float, default=5.0, help="GIL-free time per chunk prediction")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for config in ("off", "rrd"):
                rows.append(run_once(config, args.fps, args.seconds, args.inference_ms / 1e3, Path(tmp)))
                rows[-1]["run"] = r
    print(f"\nsim SO-101 at {args.fps} Hz, receding (h={CHUNK}, n=5), inference {args.inference_ms:g} ms, "
          f"{args.seconds:g} s per run, load average at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| view | run | jitter p50 / p99 / max ms | period p99 ms | missed | CPU % of a core | view dropped "
          "| rrd MB |")
    print("|---|---|---|---|---|---|---|---|")
    for s in rows:
        print(f"| {s['config']} | {s['run']} | {s['jitter_p50_ms']:.3f} / {s['jitter_p99_ms']:.3f} / "
              f"{s['jitter_max_ms']:.3f} | {s['period_p99_ms']:.2f} | {int(s['missed'])} | {s['cpu_pct']:.0f} "
              f"| {int(s['dropped'])} | {s['rrd_mb']:.2f} |")
    p99 = {c: np.median([s["jitter_p99_ms"] for s in rows if s["config"] == c]) for c in ("off", "rrd")}
    print(f"\nmedian p99 jitter: off {p99['off']:.3f} ms, rrd {p99['rrd']:.3f} ms, "
          f"growth {p99['rrd'] - p99['off']:+.3f} ms (goal < 0.2 ms)")


if __name__ == "__main__":
    main()
