"""Control-loop jitter with and without the Rerun chunk view, at 50 Hz on the simulated SO-101.

    .venv/bin/python -m benchmarks.bench_viz [--seconds 30] [--block 1] [--fps 50]

`ChunkExecutor.run` in real time (RealClock, receding h=10 n=5, inference on its own thread: a
small numpy policy that sleeps `--inference-ms`, releasing the GIL like torch or onnxruntime do), on
the sim arm (`send_action` steps MuJoCo one period). One schedule, in blocks that alternate (so load
from other processes hits both alike):

- `off`: no view attached;
- `rrd`: a ChunkView writing a .rrd attached (arm in 3D from the sim model, chunk paths, joints,
  timing, events).

Prints a markdown table: jitter (step start minus deadline) p50 / p99 / max, period p99, missed
deadlines, process CPU (all threads, Rerun's native ones included, % of one core), the view's logging
thread CPU per control step, records the view dropped, .rrd size. The goal:
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


def run_interleaved(fps: int, seconds: float, block_s: float, delay_s: float, rrd: Path) -> dict[str, dict[str, float]]:
    """One real-time run whose blocks of `block_s` alternate between view off and view on (the view
    attached to / detached from the running schedule), so load from other processes hits both alike."""
    robot = SimSO101Config(task="lift", fps=fps, seed=0).build()
    robot.connect()
    limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, robot.action_low, robot.action_high)}
    policy = WavePolicy(fps, delay_s)
    ex = ChunkExecutor(robot, policy, ExecutionConfig(mode="receding", n_receding=5),
                       safety=SafetyConfig(joint_limits=limits), clock=RealClock())
    view = ChunkView.for_robot(VizConfig(rrd=rrd), robot, fps=fps, chunk_size=CHUNK)
    block = max(1, int(round(block_s * fps)))
    on_steps: list[np.ndarray] = []
    cpu = {"off": [0.0, 0.0], "rrd": [0.0, 0.0]}  # process CPU s, wall s
    with ex, view:
        ex.run(max_steps=2 * fps)  # warm-up: first inference, caches
        ex.timing.clear()
        for b in range(int(round(seconds * fps / block))):
            config = "rrd" if b % 2 else "off"
            cpu0, wall0, first = time.process_time(), time.perf_counter(), ex.step_index
            if config == "rrd":
                with attach_view(view, ex):
                    ex.run(max_steps=block)  # back-to-back runs keep one schedule
                on_steps.append(np.arange(first, ex.step_index))
            else:
                ex.run(max_steps=block)
            cpu[config][0] += time.process_time() - cpu0
            cpu[config][1] += time.perf_counter() - wall0
    robot.disconnect()
    rows = ex.timing.rows()
    on = np.isin(rows["step"], np.concatenate(on_steps) if on_steps else [])
    out: dict[str, dict[str, float]] = {}
    for config, mask in (("off", ~on), ("rrd", on)):
        r = rows[mask]
        jitter = r["jitter"][np.isfinite(r["jitter"])] * 1e3
        period = r["period"][np.isfinite(r["period"])] * 1e3
        out[config] = {
            "steps": float(len(r)), "missed": float(r["missed"].sum()),
            "jitter_p50": float(np.percentile(jitter, 50)), "jitter_p99": float(np.percentile(jitter, 99)),
            "jitter_max": float(jitter.max()), "period_p99": float(np.percentile(period, 99)),
            "cpu_pct": 100.0 * cpu[config][0] / max(cpu[config][1], 1e-9),
        }
    out["rrd"].update(view_ms_per_step=1e3 * view.logging_cpu_s / max(1.0, out["rrd"]["steps"]),
                      dropped=float(view.dropped), rrd_mb=rrd.stat().st_size / 1e6)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds (half with the view)")
    parser.add_argument("--block", type=float, default=1.0, help="seconds per on / off block")
    parser.add_argument("--fps", type=int, default=50)
    parser.add_argument("--inference-ms", type=float, default=5.0, help="GIL-free time per chunk prediction")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = run_interleaved(args.fps, args.seconds, args.block, args.inference_ms / 1e3, Path(tmp) / "bench.rrd")
    print(f"\nsim SO-101 at {args.fps} Hz, receding (h={CHUNK}, n=5), inference {args.inference_ms:g} ms, "
          f"{args.seconds:g} s in {args.block:g} s blocks alternating view off / on, load average at end "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| view | steps | jitter p50 / p99 / max ms | period p99 ms | missed | process CPU % of a core "
          "| view thread CPU ms/step | view dropped | rrd MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in ("off", "rrd"):
        s = res[config]
        print(f"| {config} | {int(s['steps'])} | {s['jitter_p50']:.3f} / {s['jitter_p99']:.3f} / {s['jitter_max']:.3f} "
              f"| {s['period_p99']:.2f} | {int(s['missed'])} | {s['cpu_pct']:.0f} | {s.get('view_ms_per_step', 0):.3f} "
              f"| {int(s.get('dropped', 0))} | {s.get('rrd_mb', 0):.2f} |")
    growth = res["rrd"]["jitter_p99"] - res["off"]["jitter_p99"]
    print(f"\np99 jitter growth with the view: {growth:+.3f} ms (goal < 0.2 ms)")


if __name__ == "__main__":
    main()
