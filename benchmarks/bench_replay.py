"""Replay memory per stored image frame against the raw uint8 bytes of the frame (goal <= 1.1x).

    .venv/bin/python -m benchmarks.bench_replay [--steps 20000] [--size 128] [--episode 150]

Fills a ChunkReplayBuffer with episodes of camera frames and reports, per env step stored, the bytes
its arrays hold and the growth of the process's resident memory, both divided by the raw bytes of
one H x W x 3 uint8 frame. Each frame is stored once: the observation after an episode's last
action takes one extra slot per episode, not a second copy of every frame.
"""

from __future__ import annotations

import argparse
import resource

import numpy as np

from policy.replay import ChunkReplayBuffer


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--episode", type=int, default=150)
    p.add_argument("--state-dim", type=int, default=19)
    args = p.parse_args()

    shape = (args.size, args.size, 3)
    raw = int(np.prod(shape))
    episodes = args.steps // args.episode
    capacity = episodes * (args.episode + 1)  # +1: the final observation of each episode
    before = _rss_bytes()
    buf = ChunkReplayBuffer(capacity, args.state_dim, 6, {"front": shape}, seed=0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.episode + 1, *shape), dtype=np.uint8)
    states = rng.normal(size=(args.episode + 1, args.state_dim)).astype(np.float32)
    actions = rng.normal(size=(args.episode, 6)).astype(np.float32)
    for _ in range(episodes):
        buf.add_episode(states[:-1], actions, np.zeros(args.episode, np.float32), False, states[-1],
                        images={"front": frames[:-1]}, final_images={"front": frames[-1]})
    after = _rss_bytes()
    stored = episodes * args.episode
    array_bytes = sum(a.nbytes for a in vars(buf).values() if isinstance(a, np.ndarray))
    array_bytes += sum(a.nbytes for a in buf.images.values())
    print("| frame | env steps stored | array bytes / step / raw frame | RSS growth / step / raw frame |")
    print("|---|---|---|---|")
    print(f"| {shape} uint8 ({raw} B) | {stored} | {array_bytes / stored / raw:.4f}x | "
          f"{(after - before) / stored / raw:.4f}x |")


if __name__ == "__main__":
    main()
