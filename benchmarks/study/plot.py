"""Figures and tables of the study from its result files.

    python -m benchmarks.study.plot --budget full

reads `benchmarks/study/results/<budget>/<task>/<variant>/seed<k>.json`, writes
`docs/img/study_<budget>_success.png` (success rate vs env steps, mean over seeds with a 95 %
confidence band per variant, one panel per task) and `docs/img/study_<budget>_wallclock.png`, and
`docs/img/study_<budget>_return.png` (the same for the evaluation return), and
rewrites the block between the `study:<budget>` markers in docs/study.md (the hand-written text
around the block is kept; a missing block is appended).

Statistics (n = seeds): mean +- t_{0.975, n-1} * sd / sqrt(n) (Student t: with 3 seeds the band
is wide, which is the honest width). "Steps to X %": per seed, the first evaluation at which the
success rate reaches X; the table gives the median over seeds that reached it and how many did.
"AUC": the mean success rate over all evaluations of a run (area under the curve / its length),
a sample-efficiency summary that does not depend on a threshold. Differences between two variants
use Welch's t interval on the per-seed AUCs; "separated" means that interval excludes 0.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.study.run import DEFAULT_RESULTS
from benchmarks.study.tasks import BUDGETS, TASKS
from benchmarks.study.variants import VARIANTS, variant_name

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "study.md"
BENCHMARKS_DOC = REPO / "docs" / "benchmarks.md"
IMG_DIR = REPO / "docs" / "img"
THRESHOLDS = (0.5, 0.8)
# two-sided 95 % Student t quantiles, df = 1..30 (above 30 the normal 1.96 is within 4 %)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def t975(df: float) -> float:
    """Conservative quantile for a fractional df (Welch): use floor(df)."""
    if df < 1:
        return float("inf")
    d = int(math.floor(df))
    return _T975[d - 1] if d <= len(_T975) else 1.96


def mean_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the half-width of its 95 % t interval over `axis` (NaN half-width for n = 1)."""
    values = np.asarray(values, float)
    n = values.shape[axis]
    mean = values.mean(axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, t975(n - 1) * values.std(axis, ddof=1) / math.sqrt(n)


def welch_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """mean(a) - mean(b) and the half-width of Welch's 95 % interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float(a.mean() - b.mean()), float("nan")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return float(a.mean() - b.mean()), 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(a.mean() - b.mean()), t975(df) * se


@dataclass
class CellSet:
    """All seeds of one (task, variant)."""

    task: str
    variant: str
    steps: np.ndarray          # (E,) env steps of the evaluations (shared by the seeds)
    success: np.ndarray        # (S, E)
    returns: np.ndarray        # (S, E) mean episode return at each evaluation
    final_mean_action: np.ndarray  # (S,) success of the final policy acting with its mean (NaN if not recorded)
    wall_s: np.ndarray         # (S,)
    learner_s: np.ndarray      # (S,)
    updates: np.ndarray        # (S,)
    online_steps: np.ndarray   # (S,)

    @property
    def seeds(self) -> int:
        return len(self.success)

    def auc(self) -> np.ndarray:
        return self.success.mean(1)

    def steps_to(self, threshold: float) -> list[int | None]:
        out: list[int | None] = []
        for row in self.success:
            hit = np.nonzero(row >= threshold - 1e-9)[0]
            out.append(int(self.steps[hit[0]]) if len(hit) else None)
        return out


def load_results(results_dir: Path, budget: str) -> dict[tuple[str, str], CellSet]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted((results_dir / budget).glob("*/*/seed*.json")):
        record = json.loads(path.read_text())
        # a result recorded under a variant's former name (seed_*) is that variant's
        groups.setdefault((record["task"], variant_name(record["variant"], notice=False)), []).append(record)
    out = {}
    for key, records in groups.items():
        lengths = {len(r["curve"]) for r in records}
        e = min(lengths)  # the same budget gives the same schedule; guard against a mixed folder anyway
        out[key] = CellSet(
            task=key[0], variant=key[1],
            steps=np.array([p["env_step"] for p in records[0]["curve"][:e]]),
            success=np.array([[p["success_rate"] for p in r["curve"][:e]] for r in records]),
            returns=np.array([[p["return_mean"] for p in r["curve"][:e]] for r in records]),
            final_mean_action=np.array([r.get("final_mean_action", {}).get("success_rate", np.nan) for r in records]),
            wall_s=np.array([r["wall_s"]["total"] for r in records]),
            learner_s=np.array([r["wall_s"]["learner"] for r in records]),
            updates=np.array([r["updates"] for r in records]),
            online_steps=np.array([r["online_steps"] for r in records]))
    return out


def _ordered(cells: dict[tuple[str, str], CellSet]) -> tuple[list[str], list[str]]:
    tasks = [t for t in TASKS if any(k[0] == t for k in cells)]
    variants = [v for v in VARIANTS if any(k[1] == v for k in cells)]
    return tasks, variants


def plot_curves(cells: dict[tuple[str, str], CellSet], path: Path, budget: str, metric: str = "success") -> None:
    """One panel per task: `metric` ("success" or "returns") vs env steps, mean and 95 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, variants = _ordered(cells)
    cols = min(2, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.0 * rows), squeeze=False)
    colors = dict(zip(VARIANTS, plt.get_cmap("tab10").colors))
    for ax, task in zip(axes.flat, tasks):
        for v in variants:
            c = cells.get((task, v))
            if c is None:
                continue
            values = getattr(c, metric)
            mean, half = mean_ci(values)
            ax.plot(c.steps, mean, color=colors[v], label=VARIANTS[v].label, lw=1.6)
            if c.seeds > 1:
                lo, hi = (np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1)) if metric == "success" else \
                    (mean - half, mean + half)
                ax.fill_between(c.steps, lo, hi, color=colors[v], alpha=0.15, lw=0)
        counts = sorted({cells[(task, v)].seeds for v in variants if (task, v) in cells})
        seeds = f"{counts[0]}–{counts[-1]}" if len(counts) > 1 else f"{counts[0]}"
        ax.set_title(f"{TASKS[task].label} ({seeds} seeds)")
        ax.set_xlabel("online env steps")
        if metric == "success":
            ax.set_ylabel("success rate")
            ax.set_ylim(-0.03, 1.03)
        else:
            ax.set_ylabel("episode return (evaluation)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    what = "Success" if metric == "success" else "Return"
    fig.suptitle(f"{what} vs env steps, mean and 95 % CI over seeds (budget {budget})")
    fig.tight_layout(rect=(0, 0.08 if len(labels) > 3 else 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_wallclock(cells: dict[tuple[str, str], CellSet], path: Path, budget: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, variants = _ordered(cells)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        means = [cells[(task, v)].wall_s.mean() if (task, v) in cells else np.nan for v in variants]
        ax.bar(np.arange(len(variants)) + i * width, means, width, label=TASKS[task].label)
    ax.set_xticks(np.arange(len(variants)) + width * (len(tasks) - 1) / 2)
    ax.set_xticklabels(variants, rotation=20, fontsize=8)
    ax.set_ylabel("seconds per run (one core)")
    ax.set_title(f"Wall-clock per run, mean over seeds (budget {budget})")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_ci(mean: float, half: float, pct: bool = True) -> str:
    s = 100.0 if pct else 1.0
    return f"{s * mean:.0f}" if not np.isfinite(half) else f"{s * mean:.0f} ± {s * half:.0f}"


def _fmt_steps(values: list[int | None], horizon: int) -> str:
    hit = [v for v in values if v is not None]
    if not hit:
        return f"> {horizon} (0/{len(values)})"
    return f"{int(np.median(hit))} ({len(hit)}/{len(values)})"


def tables(cells: dict[tuple[str, str], CellSet], budget: str) -> str:
    tasks, variants = _ordered(cells)
    lines: list[str] = []
    for task in tasks:
        present = [v for v in variants if (task, v) in cells]
        horizon = int(max(cells[(task, v)].steps.max() for v in present))
        lines += [f"#### {TASKS[task].label}", "",
                  "| variant | seeds | final success % | AUC % | steps to 50 % | steps to 80 % "
                  "| final success %, mean action | final return | wall-clock s/run |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for v in present:
            c = cells[(task, v)]
            final = mean_ci(c.success[:, -1])
            auc = mean_ci(c.auc())
            wall = mean_ci(c.wall_s)
            final_ret = mean_ci(c.returns[:, -1])
            det = mean_ci(c.final_mean_action) if np.all(np.isfinite(c.final_mean_action)) else None
            lines.append(f"| {v} | {c.seeds} | {_fmt_ci(*final)} | {_fmt_ci(*auc)} | "
                         f"{_fmt_steps(c.steps_to(0.5), horizon)} | {_fmt_steps(c.steps_to(0.8), horizon)} | "
                         f"{_fmt_ci(*det) if det else '–'} | {_fmt_ci(*final_ret, pct=False)} | "
                         f"{_fmt_ci(*wall, pct=False)} |")
        lines.append("")

    lines += ["#### Cost per variant (all tasks)", "",
              "| variant | runs | learner updates/s (one core) | wall-clock s/run, mean over tasks |", "|---|---|---|---|"]
    for v in variants:
        sets = [cells[(t, v)] for t in tasks if (t, v) in cells]
        ups = np.concatenate([s.updates / np.maximum(s.learner_s, 1e-9) for s in sets])
        wall = np.mean([s.wall_s.mean() for s in sets])
        lines.append(f"| {v} | {sum(s.seeds for s in sets)} | {ups.mean():.0f} | {wall:.0f} |")
    lines.append("")

    lines += ["#### Differences in AUC against SAC (percentage points, Welch 95 % interval)", ""]
    lines += _against_sac(cells, tasks, variants, lambda c: 100 * c.auc(), "{:+.0f}")
    lines += ["#### Differences in mean evaluation return against SAC (over all evaluations; Welch 95 % interval)", "",
              "Where success stays at 0 the shaped return is the only signal left: it says which variant moves "
              "towards the goal faster, not which one solves the task.", ""]
    lines += _against_sac(cells, tasks, variants, lambda c: c.returns.mean(1), "{:+.1f}")[:-1]
    lines.append("")
    lines += return_efficiency_lines(cells, tasks)
    lines += seed_claim_lines(cells, tasks)
    return "\n".join(lines)


def _against_sac(cells: dict[tuple[str, str], CellSet], tasks: list[str], variants: list[str],
                 per_seed: Callable[[CellSet], np.ndarray], fmt: str) -> list[str]:
    """A task x variant table of `per_seed` minus SAC's (Welch 95 % interval; bold where it excludes 0)."""
    others = [v for v in variants if v != "sac"]
    lines = ["| task | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for task in tasks:
        if (task, "sac") not in cells:
            continue
        row = []
        for v in others:
            if (task, v) not in cells:
                row.append("–")
                continue
            d, half = welch_diff(per_seed(cells[(task, v)]), per_seed(cells[(task, "sac")]))
            if not np.isfinite(half):
                row.append(fmt.format(d))
                continue
            sep = " **separated**" if abs(d) > half else ""
            row.append(f"{fmt.format(d)} ± {fmt.format(half).lstrip('+')}{sep}")
        lines.append(f"| {TASKS[task].label} | " + " | ".join(row) + " |")
    return lines + [""]


def first_reach(steps: np.ndarray, curve: np.ndarray, level: float) -> int | None:
    hit = np.nonzero(curve >= level)[0]
    return int(steps[hit[0]]) if len(hit) else None


def return_efficiency_lines(cells: dict[tuple[str, str], CellSet], tasks: list[str]) -> list[str]:
    """Sample efficiency on the return: env steps until the seed-mean evaluation return first reaches
    SAC's final seed-mean return, relative to the steps SAC itself needed (< 1: fewer steps than SAC)."""
    out = ["#### Env steps to reach SAC's final evaluation return (seed means; ratio < 1 is fewer steps than SAC)", "",
           "| task | SAC's final return | " + " | ".join(v for v in VARIANTS) + " |",
           "|---|---|" + "---|" * len(VARIANTS)]
    for task in tasks:
        if (task, "sac") not in cells:
            continue
        sac = cells[(task, "sac")]
        level = float(sac.returns.mean(0)[-1])
        base = first_reach(sac.steps, sac.returns.mean(0), level)
        row = []
        for v in VARIANTS:
            c = cells.get((task, v))
            reach = None if c is None else first_reach(c.steps, c.returns.mean(0), level)
            row.append("–" if c is None else (f"> {int(c.steps[-1])}" if reach is None else
                                              f"{reach} ({reach / base:.2f})"))
        out.append(f"| {TASKS[task].label} | {level:.1f} | " + " | ".join(row) + " |")
    return out + [""]


def seed_claim_lines(cells: dict[tuple[str, str], CellSet], tasks: list[str]) -> list[str]:
    """The seed's claim in numbers: env steps to 50 % success of each chunked variant relative to SAC,
    where both reached it on at least half of the seeds (ratio < 1: fewer steps than SAC)."""
    out = ["#### Steps to 50 % success relative to SAC (median over seeds; < 1 is more sample-efficient)", ""]
    rows = []
    for task in tasks:
        if (task, "sac") not in cells:
            continue
        base = [s for s in cells[(task, "sac")].steps_to(0.5) if s is not None]
        for v in VARIANTS:
            if v == "sac" or (task, v) not in cells:
                continue
            c = cells[(task, v)]
            hit = [s for s in c.steps_to(0.5) if s is not None]
            if len(base) * 2 >= cells[(task, "sac")].seeds and len(hit) * 2 >= c.seeds and base:
                rows.append(f"| {TASKS[task].label} | {v} | {np.median(hit) / np.median(base):.2f} |")
    if not rows:
        return out + ["No task had SAC and a chunked variant both reach 50 % on at least half of the seeds: "
                      "the budget cannot test the seed's claim on steps-to-threshold.", ""]
    return out + ["| task | variant | steps ratio vs SAC |", "|---|---|---|"] + rows + [""]


def budget_note(name: str) -> str:
    """How this budget's curves were made: what an evaluation runs and what differs from the paper."""
    b = BUDGETS.get(name)
    if b is None:
        return ""
    evaluation = "the mean action (what the robot runs)" if b.eval_mean_action else "samples of the policy (as the paper)"
    recipe = {k: v for k, v in b.network.items() if k in ("bc_weight", "temperature_init", "entropy_coefficient")}
    parts = [f"Evaluations run {evaluation}", f"exploration {'samples the policy' if b.actor_noise >= 1 else f'at {b.actor_noise:g} of the policy spread'}"]  # noqa: E501
    if recipe:
        parts.append("policy settings " + ", ".join(f"`{k}={v:g}`" for k, v in recipe.items()))
    return "; ".join(parts) + "."


SUMMARY_BUDGETS = ("tuned", "full", "small")   # `long` is a one-seed probe, `smoke` a test


def summary_table(results_dir: Path, budgets: tuple[str, ...] = SUMMARY_BUDGETS) -> str:
    """Every variant on every task, one column per (task, budget) that has results: success AUC %,
    final success %, env steps to 50 % (median over the seeds that got there), and the mean
    evaluation return against SAC's (the signal left where success stays at 0)."""
    columns: list[tuple[str, str, dict[tuple[str, str], CellSet]]] = []
    for budget in budgets:
        cells = load_results(results_dir, budget)
        columns += [(task, budget, cells) for task in _ordered(cells)[0]]
    if not columns:
        return "No study results yet: run `python -m benchmarks.study.run` first."
    variants = [v for v in VARIANTS if any((t, v) in c for t, _, c in columns)]
    head = [f"{TASKS[t].label}, `{b}`" for t, b, _ in columns]
    lines = ["Each cell: success AUC % / final success % / env steps to 50 % success (median of the seeds that "
             "reached it, with how many did) / mean evaluation return minus SAC's.", "",
             "| variant | " + " | ".join(head) + " |", "|---|" + "---|" * len(columns)]
    for v in variants:
        row = []
        for task, _, cells in columns:
            c, sac = cells.get((task, v)), cells.get((task, "sac"))
            if c is None:
                row.append("–")
                continue
            hit = [x for x in c.steps_to(0.5) if x is not None]
            to50 = f"{int(np.median(hit))} ({len(hit)}/{c.seeds})" if hit else f"– (0/{c.seeds})"
            d_ret = "" if sac is None or v == "sac" else f" / {c.returns.mean() - sac.returns.mean():+.1f}"
            row.append(f"{100 * c.auc().mean():.0f} / {100 * c.success[:, -1].mean():.0f} / {to50}{d_ret}")
        lines.append(f"| {v} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def update_doc(doc: Path, budget: str, block: str) -> None:
    begin, end = f"<!-- study:{budget}:begin -->", f"<!-- study:{budget}:end -->"
    text = doc.read_text() if doc.is_file() else "# Sample-efficiency study\n\n"
    new = f"{begin}\n{block}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: new, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + new + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="full")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--img-dir", type=Path, default=IMG_DIR)
    p.add_argument("--summary", type=Path, nargs="?", const=BENCHMARKS_DOC, default=None,
                   help="instead of one budget's block: write the every-variant-on-every-task table into this "
                        "file (default docs/benchmarks.md)")
    args = p.parse_args(argv)
    if args.summary is not None:
        update_doc(args.summary, "summary", summary_table(args.results_dir))
        print(f"wrote the study summary block of {args.summary}")
        return 0
    cells = load_results(args.results_dir, args.budget)
    if not cells:
        raise SystemExit(f"no results under {args.results_dir / args.budget}; run "
                         f"`python -m benchmarks.study.run --budget {args.budget}` first")
    success_png = args.img_dir / f"study_{args.budget}_success.png"
    return_png = args.img_dir / f"study_{args.budget}_return.png"
    wall_png = args.img_dir / f"study_{args.budget}_wallclock.png"
    plot_curves(cells, success_png, args.budget, "success")
    plot_curves(cells, return_png, args.budget, "returns")
    plot_wallclock(cells, wall_png, args.budget)
    rel = lambda p: Path(p).resolve().relative_to(args.doc.resolve().parent, walk_up=True)  # noqa: E731
    block = "\n".join([
        f"### Results: budget `{args.budget}` (generated by `python -m benchmarks.study.plot --budget {args.budget}`)",
        "", f"![success vs env steps]({rel(success_png)})", "", f"![return vs env steps]({rel(return_png)})", "",
        budget_note(args.budget), "",
        tables(cells, args.budget),
        f"![wall-clock per run]({rel(wall_png)})"])
    update_doc(args.doc, args.budget, block)
    print(f"wrote {success_png}, {return_png}, {wall_png} and the '{args.budget}' block of {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
