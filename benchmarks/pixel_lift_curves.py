"""Pixel Lift runs side by side: evaluation success and the critic's mean Q against env steps.

    .venv/bin/python -m benchmarks.pixel_lift_curves RUN_DIR[=LABEL] ... --out docs/img/pixel_lift.png

Each RUN_DIR is a `tools.train --obs_mode=pixels` output folder (its metrics.jsonl). Prints a markdown table
(success at each evaluation, mean Q and critic loss at the same steps) and writes one PNG of two panels. The
sparse Lift reward ends an episode at its success, so no chunk's value exceeds 1: the Q panel marks that line.
Runs given the same LABEL (seeds of one setting) are drawn as one curve, their mean, with their range shaded;
the table keeps a row per run and ends with each group's mean.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_run(folder: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float, float]]]:
    """([(env_step, eval success)], [(env_step, q_mean, loss_critic)]) of one run's metrics.jsonl."""
    evals, q = [], []
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "eval/success_rate" in row:
            evals.append((row["env_step"], row["eval/success_rate"]))
        if "q_mean" in row:
            q.append((row["env_step"], row["q_mean"], row["loss_critic"]))
    return evals, q


Run = tuple[str, Path, tuple[list, list]]   # (label, folder, read_run(folder))


def load(runs: list[tuple[str, Path]]) -> list[Run]:
    return [(label, folder, read_run(folder)) for label, folder in runs]


def table(data: list[Run]) -> str:
    steps = sorted({s for _, _, (evals, _) in data for s, _ in evals})
    lines = ["| run | " + " | ".join(f"{s / 1000:g}k" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    groups = _groups(data)
    for label, folder, (evals, q) in data:
        cells = []
        for s in steps:
            succ = dict(evals).get(s)
            near = min(q, key=lambda r: abs(r[0] - s)) if q else None
            cells.append("–" if succ is None else
                         f"{succ:.2f} (Q {near[1]:.1f}, TD {near[2]:.2f})" if near else f"{succ:.2f}")
        name = f"{label} ({folder.name})" if len(groups[label]) > 1 else label
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for label, group in groups.items():
        if len(group) > 1:
            at, mean, _, _ = _mean_curve([evals for evals, _ in group])
            mean_at = dict(zip(at.tolist(), mean.tolist()))
            cells = [f"{mean_at[s]:.2f}" if s in mean_at else "–" for s in steps]
            lines.append(f"| **{label}: mean of {len(group)}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _groups(data: list[Run]) -> dict[str, list[tuple[list, list]]]:
    """label -> the (evals, q) of every run given it, in order."""
    groups: dict[str, list[tuple[list, list]]] = defaultdict(list)
    for label, _, curves in data:
        groups[label].append(curves)
    return dict(groups)


def _mean_curve(curves: list[list[tuple]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps every curve has, mean, min, max) of curves given as [(step, value, ...)]."""
    common = sorted(set.intersection(*({r[0] for r in c} for c in curves)))
    values = np.array([[dict((r[0], r[1]) for r in c)[s] for s in common] for c in curves])
    return np.array(common), values.mean(0), values.min(0), values.max(0)


def plot(data: list[Run], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_q) = plt.subplots(1, 2, figsize=(11, 4))
    for label, read in _groups(data).items():
        if len(read) == 1:
            (evals, q), = read
            line, = ax_s.plot([s for s, _ in evals], [v for _, v in evals], marker="o", label=label)
            ax_q.plot([r[0] for r in q], [r[1] for r in q], color=line.get_color(), label=label)
            continue
        name = f"{label} (mean of {len(read)}, range shaded)"
        at, mean, lo, hi = _mean_curve([evals for evals, _ in read])
        line, = ax_s.plot(at, mean, marker="o", label=name)
        ax_s.fill_between(at, lo, hi, color=line.get_color(), alpha=0.2)
        at, mean, lo, hi = _mean_curve([q for _, q in read])
        ax_q.plot(at, mean, color=line.get_color(), label=name)
        ax_q.fill_between(at, lo, hi, color=line.get_color(), alpha=0.2)
    ax_s.set(title="evaluation success (mean chunk, 20 episodes)", xlabel="env steps", ylabel="fraction",
             ylim=(-0.03, 1.03))
    ax_q.axhline(1.0, color="grey", ls="--", lw=1, label="largest true value")
    ax_q.set(title="critic: mean Q of the batch", xlabel="env steps", ylabel="Q")
    ax_s.legend(fontsize=7)
    ax_q.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR=LABEL; runs sharing a LABEL are averaged in the plot")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default: no plot)")
    args = p.parse_args(argv)
    runs = []
    for spec in args.runs:
        folder, _, label = spec.partition("=")
        runs.append((label or Path(folder).name, Path(folder)))
    data = load(runs)
    print(table(data))
    if args.out is not None:
        plot(data, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
