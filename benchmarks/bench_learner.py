"""Learner updates per second: chunkbot's QC-SAC learner vs LeRobot 0.6.1's own SAC, side by side.

    python -m benchmarks.bench_learner [--threads 1] [--rounds 5] [--updates 20] [--device cpu] [--utd 1]

On CUDA two more contenders run: chunkbot's update recorded once as a CUDA graph (`cuda_graph=true`),
h = 1 and h = 5; with `--utd N` each of chunkbot's calls is N updates (one graph for all N) and the
table still reports single updates per second; `--compile` adds h = 5 with its critics compiled
(`compile=true`) inside the graph.

LeRobot's side is built the way its learner builds it (`lerobot/rl/learner.py`): a
`GaussianActorPolicy` from a `GaussianActorConfig`, `make_algorithm(SACAlgorithmConfig)`,
`make_optimizers_and_scheduler()`, and its training step `algorithm.update(batch_iterator)`
timed on a pre-built batch. Ours: `QChunkSACLearner.update([batch])` on a pre-sampled chunk batch
(`--bf16` adds h = 5 under bfloat16 autocast).
Equal sizes: state 18, action 6, batch 256, LeRobot's state encoder (Linear 256 + LayerNorm +
tanh) on both sides, SiLU MLPs with LayerNorm, min over critics, entropy in the backup, gradient
clipping at 40 (LeRobot's default), fp32. Sampling is not timed on either side.

The contenders take turns, one update each (a shared machine's load hits all of them alike); the
table reports 1 / median update time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from policy.cuda_graph import WARMUP_UPDATES

STATE_DIM, ACTION_DIM, BATCH = 18, 6, 256


@dataclass
class Size:
    name: str
    critics: int
    critic_hidden: list[int]
    actor_hidden: list[int]


SIZES = [Size("(a) 2 critics 256x2, actor 256x2", 2, [256, 256], [256, 256]),
         Size("(b) 10 critics 512x4, actor 256x3", 10, [512] * 4, [256] * 3)]


def lerobot_sac(size: Size, device: str):
    """LeRobot's SAC as lerobot/rl/learner.py assembles it; returns a zero-arg training step."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.gaussian_actor.configuration_gaussian_actor import (
        ActorNetworkConfig,
        CriticNetworkConfig,
        GaussianActorConfig,
    )
    from lerobot.policies.gaussian_actor.modeling_gaussian_actor import GaussianActorPolicy
    from lerobot.rl.algorithms.factory import make_algorithm
    from lerobot.rl.algorithms.sac import SACAlgorithmConfig

    policy_cfg = GaussianActorConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        actor_network_kwargs=ActorNetworkConfig(hidden_dims=list(size.actor_hidden)), device=device)
    policy = GaussianActorPolicy(policy_cfg)
    policy.train()
    algo_cfg = SACAlgorithmConfig.from_policy_config(policy_cfg)
    algo_cfg.num_critics = size.critics
    algo_cfg.critic_network_kwargs = CriticNetworkConfig(hidden_dims=list(size.critic_hidden))
    algorithm = make_algorithm(algo_cfg, policy)
    algorithm.make_optimizers_and_scheduler()
    g = torch.Generator().manual_seed(0)
    obs = lambda: {"observation.state": torch.randn(BATCH, STATE_DIM, generator=g).to(device)}  # noqa: E731
    action = (torch.rand(BATCH, ACTION_DIM, generator=g) * 2 - 1).to(device)
    batch = {"state": obs(), "next_state": obs(), "action": action,
             "reward": torch.randn(BATCH, generator=g).to(device), "done": torch.zeros(BATCH, device=device)}
    return lambda: algorithm.update(iter([batch]))


def chunkbot_learner(size: Size, chunk: int, device: str, cuda_graph: bool = False, utd: int = 1,
                     compile_critics: bool = False, bf16: bool = False):
    from policy.config import QChunkSACConfig
    from policy.learner import QChunkSACLearner
    from policy.qchunk_sac import QChunkSACPolicy
    from policy.replay import ChunkReplayBuffer

    cfg = QChunkSACConfig(act_chunk_size=chunk, num_critics=size.critics, critic_hidden_dims=list(size.critic_hidden),
                          actor_hidden_dims=list(size.actor_hidden), state_encoder_dim=256, critic_aggregation="min",
                          backup_entropy=True, grad_clip_norm=40.0, batch_size=BATCH,
                          cuda_graph=cuda_graph, compile=compile_critics, bf16=bf16,
                          ).with_features(STATE_DIM, [f"j{i}" for i in range(ACTION_DIM)])
    policy = QChunkSACPolicy(cfg)
    rng = np.random.default_rng(0)
    policy.normalizer.fit(rng.normal(size=(100, STATE_DIM)), -np.ones(ACTION_DIM), np.ones(ACTION_DIM))
    learner = QChunkSACLearner(policy.to(device), torch.Generator(device).manual_seed(0)).to(device)
    buf = ChunkReplayBuffer(4096, STATE_DIM, ACTION_DIM)
    for t in range(3000):
        buf.add({"observation.state": rng.normal(size=STATE_DIM)}, rng.uniform(-1, 1, ACTION_DIM), rng.normal(),
                False, t % 100 == 99, next_observation={"observation.state": rng.normal(size=STATE_DIM)})
    batches = [buf.sample(BATCH, cfg.chunk_size, cfg.td_horizon, cfg.discount).to(device) for _ in range(utd)]
    return lambda: learner.update(batches)


def timed(step, device: str) -> float:
    """Seconds for one update."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - t0


def take_turns(steps: dict[str, Callable[[], float]], calls: int, warmup: int = 0) -> dict[str, float]:
    """Median seconds of each step (a callable that returns its own seconds) over `calls` rounds in which every
    step runs once in turn: a load spike on a shared machine hits one call, and the median ignores it. `warmup`
    rounds before them, taken in turn as well, are not counted."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(warmup + calls):
        for name, step in steps.items():
            t = step()
            if i >= warmup:
                times[name].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=20, help="updates per contender per round (interleaved)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="a,b", help="which sizes: a, b or a,b")
    ap.add_argument("--utd", type=int, default=1, help="chunkbot's updates per call (timed per update)")
    ap.add_argument("--compile", action="store_true", help="CUDA: also h=5 with compiled critics in the graph")
    ap.add_argument("--bf16", action="store_true", help="also h=5 under bfloat16 autocast (bf16=true)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for size in [s for s in SIZES if s.name[1] in args.sizes.split(",")]:
        contenders = {"LeRobot SAC": lerobot_sac(size, args.device),
                      "chunkbot h=1": chunkbot_learner(size, 1, args.device, utd=args.utd),
                      "chunkbot h=5": chunkbot_learner(size, 5, args.device, utd=args.utd)}
        if args.bf16:
            contenders["chunkbot h=5 bf16"] = chunkbot_learner(size, 5, args.device, utd=args.utd, bf16=True)
        if args.device.startswith("cuda"):
            contenders["chunkbot h=1 graph"] = chunkbot_learner(size, 1, args.device, True, args.utd)
            contenders["chunkbot h=5 graph"] = chunkbot_learner(size, 5, args.device, True, args.utd)
            if args.compile:
                contenders["chunkbot h=5 compiled graph"] = chunkbot_learner(size, 5, args.device, True, args.utd, True)
        per_call = {k: 1 if k.startswith("LeRobot") else args.utd for k in contenders}
        for name, step in contenders.items():   # the graph contenders are captured here, after their eager calls
            for _ in range(max(args.warmup, WARMUP_UPDATES + 1) if "graph" in name else args.warmup):
                step()
        seconds = take_turns({k: partial(timed, step, args.device) for k, step in contenders.items()},
                             args.rounds * args.updates)
        med = {k: per_call[k] / t for k, t in seconds.items()}
        rows.append((size.name, med))
    print(f"\nfp32 unless named, batch {BATCH}, state {STATE_DIM}, action {ACTION_DIM}, device {args.device}, "
          f"torch threads {args.threads}, chunkbot UTD {args.utd} per call, median of {args.rounds * args.updates} "
          "interleaved calls each; updates/s (x LeRobot SAC)\n")
    names = list(rows[0][1])
    print("| size | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for name, m in rows:
        lr = m["LeRobot SAC"]
        print(f"| {name} | " + " | ".join(f"{m[k]:.1f}" + ("" if k == "LeRobot SAC" else f" ({m[k] / lr:.1f}x)")
                                          for k in names) + " |")


if __name__ == "__main__":
    main()
