"""How long a tools.train run takes per preset: measured on a short run, extrapolated to the run's length.

    nice -n 15 .venv/bin/python -m benchmarks.preset_time --updates 300 --presets default qc sac first_action

For each preset a short tools.train job (the README's sim task, 5 scripted demos, `--warmup` random steps,
then `--updates` env steps with one learner update each, no evaluation, no checkpoint) runs in this process
on one torch thread. From the job's metrics.jsonl (wall time per logged step after the warm-up) it reports
env steps per second with learning, and the share of that wall time the process had the CPU; dividing by
that share gives the rate on an idle core, from which the time of a 2k / 100k step run follows (a run's
500 random warm-up steps are left out as next to free; each evaluation adds `eval_episodes` episodes of
inference, a few seconds).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def measure(preset: str, updates: int, warmup: int, log_every: int) -> dict[str, float]:
    from policy.training import train
    from tools.train import build_config

    args = [] if preset == "default" else [f"--preset={preset}"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_config([*args, f"--output_dir={tmp}", f"--steps={warmup + updates}", f"--warmup_steps={warmup}",
                            "--num_demos=5", "--eval_every=0", "--eval_episodes=0", "--save_every=0",
                            "--save_buffers=false", "--progress_bar=false", "--num_threads=1",
                            f"--log_every={log_every}"])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        train(cfg)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    logged = [(r["env_step"], r["time_s"]) for r in rows if "loss_critic" in r]
    (s0, t0), (s1, t1) = logged[0], logged[-1]
    rate = (s1 - s0) / (t1 - t0)
    share = min(1.0, cpu / wall)
    p = cfg.policy
    return {"rate": rate, "share": share, "idle_rate": rate / share, "h": p.chunk_size, "critics": p.num_critics,
            "width": "x".join(map(str, p.critic_hidden_dims)), "actor": "ACT" if p.use_act_actor else "MLP",
            "batch": p.batch_size}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default", "qc", "sac", "first_action"])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from policy.training import TrainConfig

    warm = TrainConfig().warmup_steps  # a real run's random warm-up steps: no learning, next to free
    load = os.getloadavg()[0]
    print(f"{args.updates} learning steps per preset after {args.warmup} warm-up steps; one torch thread; "
          f"load average {load:.1f} on {os.cpu_count()} cores\n")
    print("| preset | actor, h, critics, batch | steps/s measured | CPU share | steps/s on an idle core | "
          "2k steps | 100k steps |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets:
        m = measure(preset, args.updates, args.warmup, log_every=max(10, args.updates // 10))
        print(f"| {preset} | {m['actor']}, {m['h']}, {m['critics']} x {m['width']}, {m['batch']} | {m['rate']:.1f} | "
              f"{m['share']:.2f} | {m['idle_rate']:.1f} | {_duration((2_000 - warm) / m['idle_rate'])} | "
              f"{_duration((100_000 - warm) / m['idle_rate'])} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
