"""Seconds per learner update of a pixel policy (front + wrist cameras, 6 joints), by input pooling
(`image_encoder.pool`) and batch size, one torch thread; median of `--updates` after the warm-up ones.

    .venv/bin/python -m benchmarks.pixel_update_time --size 64 --configs 1:256 2:256 2:128 4:128
    python -m benchmarks.pixel_update_time --device cuda --size 128 --configs 1:256 2:256 --updates 50 --graph --bf16
    .venv/bin/python -m benchmarks.pixel_update_time --size 128 --configs 1:256 2:256 --flops

On CUDA the batch is sampled outside the timing and already on the device; `--graph` adds the same update
recorded as a CUDA graph (`cuda_graph=true`) beside the eager one; `--bf16` adds each under bfloat16 autocast
(`bf16=true`), the two taking turns one update each. `--flops` counts an update's arithmetic instead of timing it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.bench_learner import take_turns, timed
from policy.config import TRAIN_RECIPE, ImageEncoderConfig, QChunkSACConfig
from policy.cuda_graph import WARMUP_UPDATES
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkBatch, ChunkReplayBuffer

S = A = 6


def pool_batch(text: str) -> tuple[int, int]:
    """A `--configs` entry, "pool:batch"."""
    pool, batch = (int(x) for x in text.split(":"))
    return pool, batch


def pixel_learner(size: int, pool: int, batch: int, bc_trains_encoder: bool = True, device: str = "cpu",
                  cuda_graph: bool = False, bf16: bool = False, encoder: dict | None = None,
                  learner_cls: type = QChunkSACLearner, demos: bool = False
                  ) -> tuple[QChunkSACLearner, Callable[[], ChunkBatch]]:
    """A pixel learner on `device` and a zero-arg sampler of its batches (on the device) from 600 random frames.
    `encoder`: ImageEncoderConfig fields other than the pooling (default: the policy's encoder); `demos`: the
    frames are marked offline, so the recipe's BC term (bc_data=offline) has a gradient (its cost is the same)."""
    cams = {"front": (size, size, 3), "wrist": (size, size, 3)}
    cfg = QChunkSACConfig(**TRAIN_RECIPE, use_images=True, batch_size=batch, bc_trains_encoder=bc_trains_encoder,
                          image_encoder=ImageEncoderConfig(pool=pool, **(encoder or {})), cuda_graph=cuda_graph, bf16=bf16,
                          ).with_features(S, [f"j{i}" for i in range(A)], cams)
    policy = QChunkSACPolicy(cfg)
    rng = np.random.default_rng(0)
    policy.normalizer.fit(rng.normal(size=(100, S)), -np.ones(A), np.ones(A))
    learner = learner_cls(policy.to(device), torch.Generator(device).manual_seed(0)).to(device)
    buf = ChunkReplayBuffer(2000, S, A, cams, is_offline=demos)

    def frame() -> dict[str, np.ndarray]:
        return {"observation.state": rng.normal(size=S),
                **{f"observation.images.{c}": rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in cams}}

    for t in range(600):
        buf.add(frame(), rng.uniform(-1, 1, A), 0.0, False, t % 60 == 59, next_observation=frame())
    return learner, lambda: buf.sample(batch, cfg.chunk_size, cfg.td_horizon, cfg.discount).to(device)


def update_step(size: int, pool: int, batch: int, bc_trains_encoder: bool, device: str = "cpu",
                cuda_graph: bool = False, bf16: bool = False, encoder: dict | None = None) -> Callable[[], float]:
    """A zero-arg step that samples a batch (untimed) and returns the seconds of one pixel learner update."""
    learner, sample = pixel_learner(size, pool, batch, bc_trains_encoder, device, cuda_graph, bf16, encoder)

    def step() -> float:
        b = sample()
        return timed(lambda: learner.update([b]), device)
    return step


def update_flops(size: int, pool: int, batch: int, bc_trains_encoder: bool = True,
                 encoder: dict | None = None) -> dict[str, int]:
    """The floating-point operations of one fp32 pixel update on the CPU, by aten op (FlopCounterMode counts
    matrix products and convolutions, forward and backward), after one uncounted update creates Adam's state."""
    learner, sample = pixel_learner(size, pool, batch, bc_trains_encoder, encoder=encoder)
    learner.update([sample()])
    b = sample()
    with FlopCounterMode(display=False) as counter:
        learner.update([b])
    return {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="camera frames, pixels a side")
    parser.add_argument("--configs", nargs="+", type=pool_batch, default=["1:256", "2:256", "2:128", "4:128"],
                        help="pool:batch")
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--no-bc-encoder", action="store_true", help="bc_trains_encoder=false")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--graph", action="store_true", help="also time the update as a CUDA graph (CUDA only)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time the update under bfloat16 autocast, interleaved with the fp32 one")
    parser.add_argument("--flops", action="store_true",
                        help="count each config's floating-point operations per update (fp32, on the CPU) instead of "
                             "timing it: what a device must sustain for a target rate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.flops:
        for pool, batch in args.configs:
            counts = update_flops(args.size, pool, batch, not args.no_bc_encoder)
            total = sum(counts.values())
            convs = sum(n for op, n in counts.items() if "convolution" in op)
            print(f"{args.size}x{args.size}, pool {pool}, batch {batch}: {total / 1e9:.1f} GFLOP/update "
                  f"({convs / total:.0%} in convolutions); 500 updates/s = {total * 500 / 1e12:.0f} TFLOP/s", flush=True)
        return
    for pool, batch in args.configs:
        for graph in [False, True] if args.graph else [False]:
            steps = {f"{args.device}{' graph' if graph else ''}{' bf16' if bf16 else ''}":
                     update_step(args.size, pool, batch, not args.no_bc_encoder, args.device, graph, bf16)
                     for bf16 in ([False, True] if args.bf16 else [False])}
            warmup = WARMUP_UPDATES + 2 if graph else 2   # a graph is captured after its eager calls
            for name, s in take_turns(steps, args.updates, warmup).items():
                print(f"{args.size}x{args.size}, pool {pool}, batch {batch}, {name}: "
                      f"{s * 1e3:.2f} ms/update ({1 / s:.0f} updates/s)", flush=True)


if __name__ == "__main__":
    main()
