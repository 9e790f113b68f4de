"""The study's critic variants under the main job's recipe: `tools.train` with its defaults
(`TRAIN_RECIPE`: 200 scripted demos, sparse reward, 60-step episodes, three updates per step, mean-chunk
evaluation), where only the variant's critic / backup / actor-objective settings change.

The older budgets (`benchmarks.study.run`) ran the variants under the paper's recipe and the short-run
recipe, where no variant passed 36 % on Lift; this asks the same question of the recipe chunkbot ships.

    .venv/bin/python -m benchmarks.study.main_recipe --seeds 3 --steps 4000 --workers 2 \\
        --out outputs/study_main_recipe
    .venv/bin/python -m benchmarks.study.main_recipe --out outputs/study_main_recipe --summarise-only

Each cell is one `python -m tools.train` run in its own folder (`<out>/<variant>/s<seed>/`); a finished cell
leaves `result.json` and is skipped when the driver runs again; a cell killed part way resumes from its
last checkpoint. The summary prints a markdown table of the mean evaluation success per step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.study.variants import VARIANTS, Variant

MAIN_RECIPE_VARIANTS = ["sac", "qc", "ac_1step", "first_action_standard"]
RESULT = "result.json"


def variant_flags(variant: Variant) -> list[str]:
    """tools.train flags that turn the main job's policy into `variant` (the recipe stays the main job's)."""
    overrides: dict[str, Any] = dict(variant.overrides)
    if variant.base == "sac":
        overrides["enable_q_chunking"] = False
    return [f"--policy.{k}={json.dumps(v) if isinstance(v, list | dict) else str(v).lower() if isinstance(v, bool) else v}"
            for k, v in overrides.items()]


def cell_command(variant: Variant, seed: int, steps: int, eval_every: int, eval_episodes: int,
                 folder: Path) -> list[str]:
    resume = (folder / "checkpoints").is_dir()
    return [sys.executable, "-m", "tools.train", f"--seed={seed}", f"--steps={steps}", f"--eval_every={eval_every}",
            f"--eval_episodes={eval_episodes}", "--confirm_episodes=0", "--save_every=0", "--save_buffers=false",
            "--num_threads=1", "--progress_bar=false", f"--output_dir={folder}", f"--resume={str(resume).lower()}",
            *variant_flags(variant)]


def read_curve(folder: Path) -> list[dict[str, float]]:
    """The evaluations of a run's metrics.jsonl: [{"env_step", "success_rate"}, ...]."""
    curve = []
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "eval/success_rate" in row:
            curve.append({"env_step": row["env_step"], "success_rate": row["eval/success_rate"]})
    return curve


def run_cell(variant: Variant, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.out) / variant.name / f"s{seed}"
    if (folder / RESULT).is_file():
        return json.loads((folder / RESULT).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    cmd = cell_command(variant, seed, args.steps, args.eval_every, args.eval_episodes, folder)
    with open(folder / "train.log", "a") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} seed {seed} failed (exit {done.returncode}): see {folder / 'train.log'}")
    record = {"variant": variant.name, "seed": seed, "steps": args.steps, "curve": read_curve(folder),
              "command": " ".join(cmd[1:])}
    tmp = folder / f".{RESULT}.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, folder / RESULT)
    return record


def summarise(out: Path) -> str:
    """Markdown: mean success (min-max over seeds) per evaluation step and variant."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out.glob(f"*/s*/{RESULT}")):
        record = json.loads(path.read_text())
        rows.setdefault(record["variant"], []).append(record)
    if not rows:
        return f"no results under {out}"
    steps = sorted({p["env_step"] for records in rows.values() for r in records for p in r["curve"]})
    lines = ["| variant | seeds | " + " | ".join(f"{s / 1000:g}k" for s in steps) + " | mean over the curve |",
             "|---|---|" + "---|" * len(steps) + "---|"]
    order = [v for v in VARIANTS if v in rows]
    for name in order:
        records = rows[name]
        cells, means = [], []
        for s in steps:
            vals = [p["success_rate"] for r in records for p in r["curve"] if p["env_step"] == s]
            if vals:
                means.append(np.mean(vals))
                cells.append(f"{np.mean(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})")
            else:
                cells.append("–")
        lines.append(f"| `{name}` | {len(records)} | " + " | ".join(cells) + f" | {np.mean(means):.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variants", nargs="+", default=MAIN_RECIPE_VARIANTS, choices=sorted(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant (default 3)")
    p.add_argument("--steps", type=int, default=4000, help="online env steps per run (the main job: 8000)")
    p.add_argument("--eval_every", type=int, default=1000)
    p.add_argument("--eval_episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=2, help="runs side by side, one thread each")
    p.add_argument("--out", default="outputs/study_main_recipe")
    p.add_argument("--summarise-only", action="store_true", help="print the table of what is there and stop")
    args = p.parse_args()
    out = Path(args.out)
    if not args.summarise_only:
        cells = [(VARIANTS[v], s) for s in range(args.seeds) for v in args.variants]
        with ThreadPoolExecutor(args.workers) as pool:   # each cell is its own process; threads only wait
            for record in pool.map(lambda c: run_cell(*c, args), cells):
                last = record["curve"][-1]["success_rate"] if record["curve"] else float("nan")
                print(f"{record['variant']} seed {record['seed']}: success {last:.2f} at {record['steps']} steps",
                      flush=True)
    print(summarise(out))


if __name__ == "__main__":
    main()
