"""chunkbot's learning curves beside the official Q-chunking code's, from both sides' own result files.

    python -m benchmarks.parity.curves --task cube-double [--budget parity_long]

chunkbot's side is a study budget (`benchmarks/study/results/<budget>/<task>/<variant>/seed<k>.json`, made by
`python -m benchmarks.study.run --budget parity --variants qc rlpd --tasks <task>`). The official side is
the `eval.csv` that `main_online.py` writes into its `--save_dir`, kept at
`benchmarks/parity/results/<budget>/<task>/<variant>/seed<k>/eval.csv` (how to run it: docs/parity.md),
run with the same online steps and evaluation interval; both evaluate with 10 episodes sampled from the
policy, so the steps line up.

Prints a markdown table (success per evaluation, mean over the seeds each side has, and each seed's
values) and, with `--plot`, writes one figure with a line per seed and a bold line per mean.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OFFICIAL_RESULTS = REPO / "benchmarks" / "parity" / "results"
CHUNKBOT_RESULTS = REPO / "benchmarks" / "study" / "results"
VARIANTS = {"qc": "QC (h = 5, BC 0.01)", "rlpd": "RLPD (h = 1, no BC)"}

Curve = dict[int, float]   # env step -> success rate


def official_curve(path: Path) -> Curve:
    """main_online.py's eval.csv: one row per evaluation, `step` is the online env step."""
    with path.open() as f:
        return {int(float(row["step"])): float(row["success"]) for row in csv.DictReader(f)}


def chunkbot_curve(path: Path) -> Curve:
    return {int(p["env_step"]): float(p["success_rate"]) for p in json.loads(path.read_text())["curve"]}


def load_curves(task: str, budget: str = "parity", official_dir: Path = OFFICIAL_RESULTS,
                chunkbot_dir: Path = CHUNKBOT_RESULTS) -> dict[tuple[str, str], dict[int, Curve]]:
    """(side, variant) -> seed -> curve, for every result file present."""
    curves: dict[tuple[str, str], dict[int, Curve]] = {}
    for variant in VARIANTS:
        for f in sorted((official_dir / budget / task / variant).glob("seed*/eval.csv")):
            curves.setdefault(("official", variant), {})[int(f.parent.name[4:])] = official_curve(f)
        for f in sorted((chunkbot_dir / budget / task / variant).glob("seed*.json")):
            curves.setdefault(("chunkbot", variant), {})[int(f.stem[4:])] = chunkbot_curve(f)
    return curves


def markdown_table(curves: dict[tuple[str, str], dict[int, Curve]]) -> str:
    steps = sorted({s for seeds in curves.values() for c in seeds.values() for s in c})
    lines = ["| run | seeds | " + " | ".join(f"{s // 1000}k" for s in steps) + " |",
             "|---|---|" + "---|" * len(steps)]
    for variant in VARIANTS:
        for side in ("official", "chunkbot"):
            seeds = curves.get((side, variant))
            if not seeds:
                continue
            cells = []
            for s in steps:
                vals = [c[s] for c in seeds.values() if s in c]
                if not vals:
                    cells.append("–")
                else:   # several seeds: the mean, then each seed's value
                    per_seed = "/".join(f"{v:.1f}" for v in vals)
                    cells.append(f"{np.mean(vals):.2f}" + (f" ({per_seed})" if len(vals) > 1 else ""))
            lines.append(f"| {side} {VARIANTS[variant]} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[tuple[str, str], dict[int, Curve]], task: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colours = {("official", "qc"): "tab:blue", ("chunkbot", "qc"): "tab:orange",
               ("official", "rlpd"): "tab:green", ("chunkbot", "rlpd"): "tab:red"}
    for key, seeds in curves.items():
        steps = sorted({s for c in seeds.values() for s in c})
        for c in seeds.values():
            xs = sorted(c)
            ax.plot([x / 1000 for x in xs], [c[x] for x in xs], color=colours[key], alpha=0.3, lw=1)
        mean = [np.mean([c[s] for c in seeds.values() if s in c]) for s in steps]
        ax.plot([s / 1000 for s in steps], mean, color=colours[key], lw=2.2, marker="o",
                label=f"{key[0]} {VARIANTS[key[1]]}, {len(seeds)} seed{'s' * (len(seeds) > 1)}")
    ax.set_xlabel("online env steps (thousands)")
    ax.set_ylabel("success rate (10 sampled episodes)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"OGBench {task} task1: official code vs chunkbot")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="cube-double", choices=["cube-single", "cube-double"])
    p.add_argument("--budget", default="parity", help="the study budget both sides ran (parity, parity_long)")
    p.add_argument("--official_dir", type=Path, default=OFFICIAL_RESULTS)
    p.add_argument("--chunkbot_dir", type=Path, default=CHUNKBOT_RESULTS)
    p.add_argument("--plot", type=Path, default=None, help="write the figure here (e.g. docs/img/parity_cube_double.png)")
    args = p.parse_args(argv)
    curves = load_curves(args.task, args.budget, args.official_dir, args.chunkbot_dir)
    if not curves:
        p.error(f"no {args.budget} results for {args.task} under {args.official_dir} or {args.chunkbot_dir}")
    print(markdown_table(curves))
    if args.plot:
        plot(curves, args.task, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
