"""Whole pixel updates as the code was at another git revision against the code now, taking turns one update
each in one process: the same data, seeds and network, then how far apart the two learners' parameters are.

    .venv/bin/python -m benchmarks.pixel_update_ab --rev 2ad5f50 --take shift --configs 2:128 1:256
    .venv/bin/python -m benchmarks.pixel_update_ab --rev a4d86e4 --take learner --configs 2:128 1:256

`--take shift`: REV's `policy.encoder.random_shift` in today's learner; `--take learner`: REV's
`policy/learner.py` (its update) with today's shift; both by default. The replay's windows are marked as demos,
so the BC term (the recipe's `bc_data=offline`) has a gradient, as on half of a training batch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from functools import partial

import torch

import policy.learner
from benchmarks.bench_learner import take_turns, timed
from benchmarks.pixel_update_time import pixel_learner, pool_batch


def module_at(rev: str, path: str) -> types.ModuleType:
    """The module in `path` as committed at `rev`, imported beside today's (its own imports are today's)."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"{path.replace('/', '.')[:-3]}@{rev}")
    sys.modules[module.__name__] = module       # dataclasses and type hints look their module up
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def _step(learner, sample, module: types.ModuleType, shift) -> float:
    batch = sample()
    module.random_shift = shift   # the augmentation this learner's module calls, for this turn
    return timed(lambda: learner.update([batch]), "cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", required=True, help="the git revision to compare against")
    p.add_argument("--take", nargs="+", choices=["shift", "learner"], default=["shift", "learner"],
                   help="what of REV's code the baseline runs")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--configs", nargs="+", type=pool_batch, default=["2:128"], help="pool:batch")
    p.add_argument("--updates", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    now_shift = policy.learner.random_shift
    old_shift = module_at(args.rev, "policy/encoder.py").random_shift if "shift" in args.take else now_shift
    old_module = module_at(args.rev, "policy/learner.py") if "learner" in args.take else policy.learner
    code = {args.rev: (old_module, old_shift), "now": (policy.learner, now_shift)}
    for pool, batch in args.configs:
        steps = {}
        for name, (module, shift) in code.items():
            torch.manual_seed(0)
            learner, sample = pixel_learner(args.size, pool, batch, learner_cls=module.QChunkSACLearner,
                                            demos=True)
            steps[name] = (learner, partial(_step, learner, sample, module, shift))
        seconds = take_turns({name: step for name, (_, step) in steps.items()}, args.updates, 2)
        apart = max((a - b).abs().max().item()
                    for a, b in zip(steps[args.rev][0].parameters(), steps["now"][0].parameters()))
        old, new = seconds[args.rev], seconds["now"]
        print(f"{args.size}x{args.size}, pool {pool}, batch {batch}: {args.rev} ({'+'.join(args.take)}) "
              f"{old * 1e3:.0f} ms, now {new * 1e3:.0f} ms per update ({old / new:.2f}x); largest parameter "
              f"difference after {args.updates + 2} updates: {apart:.1e}", flush=True)
    policy.learner.random_shift = now_shift


if __name__ == "__main__":
    main()
