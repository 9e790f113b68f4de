"""Fleet load test: N simulated actors stream episodes to one learner over the link on loopback,
the learner and one actor are SIGKILLed and restarted mid-run, and every transition is counted.

    CHUNKBOT_LINK_TOKEN=bench .venv/bin/python -m benchmarks.bench_fleet --actors 8 --duration_s 600

Each actor is its own process (`--role actor`, no torch): every `--episode_period_s` it submits one
episode of `--episode_steps` transitions whose state names it (actor, episode, step), until a
wall-clock deadline shared by its restarts, then waits for its acknowledgements. The learner is
`python -m tools.learner` (a small QC-SAC policy, updates and weight versions running). At
`--kill_learner_at` and `--kill_actor_at` (fractions of the run) the learner and actor 0 are
SIGKILLed and restarted with --resume=true. At the end the learner gets SIGTERM (it checkpoints)
and the driver reads its replay buffer back: every episode each actor stored must be there, every
step once. Prints one JSON line: transitions/s, lost and duplicated transitions, and the weight
broadcast latency (learner publish -> actor receipt) over every version every actor received
(a restarted actor reports those since its restart).
The run stops by itself (deadline + bounded waits); a failure exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STATE_DIM, ACTIONS = 6, 6


def actor_main(args: argparse.Namespace) -> None:
    from hil.batch import robot_features
    from link import ActorLink, TransportConfig

    link = ActorLink(TransportConfig(port=args.port), Path(args.out) / f"actor{args.index}", weights_wait_s=5.0)
    link.start()
    names = [f"j{i}.pos" for i in range(ACTIONS)]
    meta = {"terminated": False, "features": robot_features(STATE_DIM, names, {}, 30.0, np.full(ACTIONS, -1.0),
                                                            np.full(ACTIONS, 1.0)), "end": "time_limit"}
    t, rng = args.episode_steps, np.random.default_rng(args.index)
    next_episode = time.time()
    while time.time() < args.deadline:
        k = link.next_seq                          # resumes where the outbox says, after a SIGKILL too
        state = np.zeros((t, STATE_DIM), np.float32)
        state[:, 0], state[:, 1], state[:, 2] = args.index, k, np.arange(t)
        link.submit({**meta, "episode": k}, {
            "state": state, "action": rng.uniform(-1, 1, (t, ACTIONS)).astype(np.float32),
            "reward": np.zeros(t, np.float32), "intervention": np.zeros(t, bool),
            "final_state": np.full((1, STATE_DIM), -1.0, np.float32)})
        next_episode += args.episode_period_s
        time.sleep(max(0.0, next_episode - time.time()))
    link.wait_acked(60.0)
    print(json.dumps({"actor": args.index, "episodes": link.next_seq, "pending": link.pending,
                      "weights_latency_s": [lat for _, lat in link.weights_received if lat is not None]}), flush=True)
    link.stop()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_learner(args: argparse.Namespace, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tools.learner", f"--output_dir={Path(args.out) / 'learner'}",
           f"--transport.port={args.port}", "--policy.critic_hidden_dims=[64,64]", "--policy.actor_hidden_dims=[64,64]",
           "--policy.num_critics=2", "--policy.batch_size=64", "--learner.learning_starts=500",
           "--learner.initial_updates=20", f"--learner.updates_per_step={args.updates_per_step}",
           "--learner.publish_every=10", f"--learner.online_capacity={args.capacity}", "--learner.log_every=0",
           f"--checkpoint_every_s={args.checkpoint_every_s}", "--status_every_s=5", f"--resume={str(resume).lower()}"]
    log = open(Path(args.out) / "learner.log", "a")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
    deadline = time.time() + 120
    while not _listening(args.port):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the learner did not start (see {Path(args.out) / 'learner.log'})")
        time.sleep(0.1)
    return proc


def start_actor(args: argparse.Namespace, i: int, deadline: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmarks.bench_fleet", "--role=actor", f"--index={i}", f"--port={args.port}",
           f"--out={args.out}", f"--deadline={deadline}", f"--episode_steps={args.episode_steps}",
           f"--episode_period_s={args.episode_period_s}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=open(Path(args.out) / f"actor{i}.log", "a"),
                            text=True)


def drive(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: give a new --out")
    learner = start_learner(args, resume=False)
    t0 = time.time()
    deadline = t0 + args.duration_s
    actors = [start_actor(args, i, deadline) for i in range(args.actors)]
    events = sorted([(args.kill_learner_at, "learner"), (args.kill_actor_at, "actor")])
    for at, what in events:
        time.sleep(max(0.0, t0 + at * args.duration_s - time.time()))
        if what == "learner":
            learner.send_signal(signal.SIGKILL)
            learner.wait()
            learner = start_learner(args, resume=True)
        else:
            actors[0].send_signal(signal.SIGKILL)
            actors[0].wait()
            actors[0] = start_actor(args, 0, deadline)
    summaries = [json.loads(a.communicate(timeout=args.duration_s + 180)[0].strip().splitlines()[-1]) for a in actors]
    elapsed = time.time() - t0
    learner.send_signal(signal.SIGTERM)
    learner.wait(300)
    return check(args, summaries, elapsed)


def check(args: argparse.Namespace, summaries: list[dict], elapsed: float) -> dict:
    import torch

    from hil.learner import HILLearner

    torch.set_num_threads(1)
    hil, _ = HILLearner.resume(Path(args.out) / "learner")
    buf = hil.online
    rows = buf.stored_states()[buf.acted[:buf.size].cpu().numpy()]
    keys = rows[:, 0].astype(np.int64) * 10**12 + rows[:, 1].astype(np.int64) * 10**6 + rows[:, 2].astype(np.int64)
    seen, counts = np.unique(keys, return_counts=True)
    expected = np.array([a * 10**12 + k * 10**6 + s for a, summary in enumerate(summaries)
                         for k in range(summary["episodes"]) for s in range(args.episode_steps)], np.int64)
    latencies = [lat for summary in summaries for lat in summary["weights_latency_s"]]
    return {
        "actors": args.actors, "duration_s": args.duration_s, "elapsed_s": round(elapsed, 1),
        "transitions_expected": int(len(expected)), "transitions_in_learner": int(len(rows)),
        "lost": int(len(np.setdiff1d(expected, seen))), "duplicated": int((counts - 1).sum()),
        "unexpected": int(len(np.setdiff1d(seen, expected))), "pending_at_end": sum(s["pending"] for s in summaries),
        "transitions_per_s": round(len(rows) / elapsed, 1), "updates": int(hil.learner.step),
        "weights_versions": int(hil.version), "weights_received": len(latencies),
        "broadcast_latency_ms": ({"p50": round(1e3 * float(np.percentile(latencies, 50)), 1),
                                  "p95": round(1e3 * float(np.percentile(latencies, 95)), 1),
                                  "max": round(1e3 * float(max(latencies)), 1)} if latencies else None)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--actors", type=int, default=8)
    p.add_argument("--duration_s", type=float, default=600.0)
    p.add_argument("--episode_steps", type=int, default=50)
    p.add_argument("--episode_period_s", type=float, default=1.0, help="one episode per actor this often")
    p.add_argument("--kill_learner_at", type=float, default=0.4)
    p.add_argument("--kill_actor_at", type=float, default=0.6)
    p.add_argument("--checkpoint_every_s", type=float, default=30.0)
    p.add_argument("--updates_per_step", type=float, default=0.02)
    p.add_argument("--capacity", type=int, default=1_000_000)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", default="outputs/bench_fleet")
    p.add_argument("--role", default="driver", choices=["driver", "actor"])
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--deadline", type=float, default=0.0)
    args = p.parse_args(argv)
    os.environ.setdefault("CHUNKBOT_LINK_TOKEN", "bench")
    if args.role == "actor":
        actor_main(args)
        return
    if not args.port:
        from link import free_port
        args.port = free_port()
    result = drive(args)
    print(json.dumps(result), flush=True)
    if result["lost"] or result["duplicated"] or result["unexpected"] or result["pending_at_end"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
