"""Whole pixel updates with `random_shift` as it was at another revision against the current one, taking turns
one update each in one process (same data, seeds and learner), then whether the two learners' parameters are
still equal bit for bit (the same augmented frames in the same memory layout give the same rounding).

    .venv/bin/python -m benchmarks.random_shift_ab --rev 2ad5f50 --size 64 --configs 2:128 1:256 --updates 8
"""

from __future__ import annotations

import argparse
import subprocess
import types
from functools import partial

import torch

import policy.learner
from benchmarks.bench_learner import take_turns, timed
from benchmarks.pixel_update_time import pixel_learner


def shift_at(rev: str):
    """`policy.encoder.random_shift` as committed at `rev`."""
    source = subprocess.run(["git", "show", f"{rev}:policy/encoder.py"], capture_output=True, text=True, check=True)
    module = types.ModuleType(f"encoder_at_{rev}")
    exec(compile(source.stdout, f"{rev}:policy/encoder.py", "exec"), module.__dict__)
    return module.random_shift


def _step(learner, sample, shift) -> float:
    batch = sample()
    policy.learner.random_shift = shift   # the learner's augmentation for this turn
    return timed(lambda: learner.update([batch]), "cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", required=True, help="the git revision whose random_shift is the baseline")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--configs", nargs="+", default=["2:128"], help="pool:batch")
    p.add_argument("--updates", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    shifts = {args.rev: shift_at(args.rev), "now": policy.learner.random_shift}
    for c in args.configs:
        pool, batch = (int(x) for x in c.split(":"))
        learners = {}
        for name in shifts:
            torch.manual_seed(0)
            learners[name] = pixel_learner(args.size, pool, batch)

        seconds = take_turns({name: partial(_step, *learners[name], shifts[name]) for name in shifts}, args.updates, 2)
        equal = all(torch.equal(a, b) for a, b in zip(*(learners[n][0].parameters() for n in shifts)))
        old, new = seconds[args.rev], seconds["now"]
        print(f"{args.size}x{args.size}, pool {pool}, batch {batch}: {args.rev} {old * 1e3:.0f} ms, now "
              f"{new * 1e3:.0f} ms per update ({old / new:.2f}x); parameters equal after {args.updates + 2} updates: "
              f"{equal}", flush=True)
    policy.learner.random_shift = shifts["now"]


if __name__ == "__main__":
    main()
