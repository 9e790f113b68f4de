"""Batch-1 latency of the exported chunk actor: onnxruntime vs torch eager (vs torch.compile).

    .venv/bin/python -m benchmarks.bench_onnx [--runs 5] [--calls 2000] [--compile] [--kinds mlp act image]

Three deployment-sized actors for the simulated SO-101 (19 state values, 6 joints, chunk h=5),
built and checkpointed with the learner's code, exported with `export.export_policy` (dynamo):

- `mlp`:   state MLP 3 x 256 (LayerNorm + SiLU), the paper's actor;
- `act`:   ACT-style transformer (d_model 128, 2 encoder + 2 decoder layers, history of 5 states);
- `image`: CNN (32 channels x 4 conv layers, first stride 2) on one 128 x 128 camera + state, MLP 2 x 256.

Everything runs on one thread (torch.set_num_threads(1), onnxruntime intra_op 1), as on the robot
where the control loop needs the other cores. Columns:

- `ort predict_chunk`: `OnnxChunkPolicy.predict_chunk(frame)`, the runtime path: numpy frame in
  (checks), (h, A) numpy chunk out;
- `ort session.run`: the bare onnxruntime call on prepared batch-1 inputs;
- `torch predict_chunk`: `QChunkSACPolicy.predict_chunk(frame)` (numpy in/out, the window assembled);
- `torch eager`: `policy.deterministic_chunk(...)` on prepared tensors under inference_mode;
- `torch.compile` (with --compile): the same function compiled by inductor.

Each cell is the median over `--runs` runs of that run's p50 / p99 over `--calls` timed calls
(after warm-up); the columns of a row take turns run by run, so a drift of the machine hits all alike. A second table takes the image actor apart: graph optimisation level and the
image normalisation folded into the first convolution (or not).
"""  # noqa: E501

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from export.exporter import export_policy, random_inputs  # noqa: E402
from export.metadata import IMAGE_PREFIX, STATE_HISTORY, STATE_KEY  # noqa: E402
from export.onnx_policy import OnnxChunkPolicy, load_session, session_options  # noqa: E402
from testing.sample_policies import make_policy, save_training_checkpoint, sim_features  # noqa: E402

IMAGE_SHAPE = (128, 128, 3)
# Deployment-sized actors (testing.sample_policies builds them; its own default sizes are tiny).
BENCHMARK: dict[str, dict[str, object]] = {
    "mlp": {"actor_hidden_dims": [256, 256, 256]},
    "act": {"use_act_actor": True, "obs_history_length": 5},   # the seed's ACT actor: d_model 128, 2+2 layers
    "image": {"actor_hidden_dims": [256, 256], "use_images": True},   # CNN 32 ch x 4 layers on 128 x 128
}


def time_calls(fns: dict[str, Callable[[], object]], calls: int, runs: int, warmup: int
               ) -> dict[str, tuple[float, float]]:
    """{name: (median of per-run p50, median of per-run p99)} in milliseconds. The variants take turns
    run by run, so a slow drift of the machine (other tenants, clocks) hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    p50s: dict[str, list[float]] = {name: [] for name in fns}
    p99s: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    samples = np.empty(calls)
    for _ in range(runs):
        for name, fn in fns.items():
            for i in range(calls):
                t0 = clock()
                fn()
                samples[i] = clock() - t0
            p50s[name].append(np.percentile(samples, 50) / 1e6)
            p99s[name].append(np.percentile(samples, 99) / 1e6)
    return {name: (float(np.median(p50s[name])), float(np.median(p99s[name]))) for name in fns}


def frame_from(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Batch-1 graph inputs -> one unbatched window frame (with its state_history when the actor reads one)."""
    return {k: v[0] for k, v in feeds.items() if k in (STATE_KEY, STATE_HISTORY) or k.startswith(IMAGE_PREFIX)}


def torch_args(policy, feeds: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    state = torch.from_numpy(feeds[STATE_KEY])[:, None]
    if STATE_HISTORY in feeds:
        state = torch.cat([torch.from_numpy(feeds[STATE_HISTORY]), state], 1)
    return (state, *[torch.from_numpy(feeds[IMAGE_PREFIX + c]) for c in policy.camera_names])


def arm_features():
    """The simulated SO-101's features; a stand-in of the same sizes where MuJoCo is not installed."""
    try:
        return sim_features()
    except ImportError:
        from robot.interface import ACTION_NAMES

        return [f"s{i}" for i in range(19)], list(ACTION_NAMES), -100.0 * np.ones(6), 100.0 * np.ones(6)


def bench_kind(kind: str, root: Path, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    policy = make_policy(kind, sizes=BENCHMARK, image_shape=IMAGE_SHAPE, seed=0, features=arm_features())
    checkpoint = save_training_checkpoint(policy, root / f"train_{kind}")
    t0 = time.perf_counter()
    result = export_policy(checkpoint, root / f"{kind}.onnx")
    print(f"  {kind}: exported in {time.perf_counter() - t0:.1f} s ({result.method}); {result.parity.summary()}",
          file=sys.stderr)
    feeds = random_inputs(policy, 1, seed=1)
    frame = frame_from(feeds)
    calls, runs, warmup = args.calls, args.runs, args.warmup
    slow = kind != "mlp"
    if slow:  # keep the whole benchmark to a few minutes on a shared 2-core machine
        calls = max(200, calls // 4)
    onnx_policy = OnnxChunkPolicy(result.path)
    session = load_session(result.path, session_options())
    names = [o.name for o in session.get_outputs()][:1]
    policy.eval()
    targs = torch_args(policy, feeds)

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return policy.deterministic_chunk(*targs)

    fns: dict[str, Callable[[], object]] = {
        "ort predict_chunk": lambda: onnx_policy.predict_chunk(frame),
        "ort session.run": lambda: session.run(names, feeds),
        "torch predict_chunk": lambda: policy.predict_chunk(frame),
        "torch eager": eager,
    }
    if args.compile:
        try:
            compiled = torch.compile(policy.deterministic_chunk, dynamic=False)

            def run_compiled() -> torch.Tensor:
                with torch.inference_mode():
                    return compiled(*targs)

            t0 = time.perf_counter()
            run_compiled()
            print(f"  {kind}: torch.compile took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            fns["torch.compile"] = run_compiled
        except Exception as e:  # noqa: BLE001 - report and go on: compile is optional
            print(f"  {kind}: torch.compile failed: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
    out = time_calls(fns, calls, runs, warmup)
    if kind == "image" and args.ablation:
        out.update(image_ablation(checkpoint, root, feeds, calls, runs, warmup))
    return out


def image_ablation(checkpoint: Path, root: Path, feeds, calls: int, runs: int, warmup: int):
    import onnxruntime as ort

    unfused = export_policy(checkpoint, root / "image_unfused.onnx", fuse_image_normalisation=False).path
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    fns = {}
    for fused_name, path in (("fused", root / "image.onnx"), ("unfused", unfused)):
        for level_name, level in levels.items():
            opts = session_options()
            opts.graph_optimization_level = level
            session = load_session(path, opts)
            names = [session.get_outputs()[0].name]
            fns[f"ablation: {fused_name} normalisation, {level_name}"] = lambda s=session, n=names: s.run(n, feeds)
    return time_calls(fns, calls, runs, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["mlp", "act", "image"], choices=["mlp", "act", "image"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor; slow to build)")
    parser.add_argument("--no-ablation", dest="ablation", action="store_false",
                        help="skip the image actor's optimisation-level / normalisation-fusion table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import logging

    logging.basicConfig(level=logging.WARNING)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            results[kind] = bench_kind(kind, Path(tmp), args)

    main_cols = ["ort predict_chunk", "ort session.run", "torch predict_chunk", "torch eager"]
    if args.compile:
        main_cols.append("torch.compile")
    print(f"\nbatch-1 latency, 1 thread, p50 / p99 in ms (median of {args.runs} runs; torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__})\n")
    print("| actor | " + " | ".join(main_cols) + " | eager / ort predict_chunk (p50) |")
    print("|---|" + "---|" * (len(main_cols) + 1))
    for kind, row in results.items():
        cells = [f"{row[c][0]:.4f} / {row[c][1]:.4f}" if c in row else "n/a" for c in main_cols]
        speedup = row["torch eager"][0] / row["ort predict_chunk"][0]
        print(f"| {kind} | " + " | ".join(cells) + f" | {speedup:.1f}x |")
    ablation = {k: v for row in results.values() for k, v in row.items() if k.startswith("ablation")}
    if ablation:
        print("\nimage actor, onnxruntime session.run, p50 / p99 in ms\n")
        print("| variant | p50 | p99 |\n|---|---|---|")
        for name, (p50, p99) in ablation.items():
            print(f"| {name.removeprefix('ablation: ')} | {p50:.3f} | {p99:.3f} |")


if __name__ == "__main__":
    main()
