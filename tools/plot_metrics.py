"""Plot a training run's metrics (metrics.jsonl of tools.train or a HIL session) into one PNG.

    python -m tools.plot_metrics --output_dir=outputs/train
    python -m tools.plot_metrics --output_dir=outputs/train --panels=success,critic,alpha --out=run.png

One panel per quantity against environment steps, each with its unit: success rate (pinned to
[0, 1]; the evaluation of the mean chunk beside the training episodes, which explore), episode
return (left out when it equals the success, as with the sparse sim tasks), the critic's and
actor's losses, the Q values, the temperature alpha (log scale) and the policy's entropy. Panels
whose metrics the run does not have are skipped. The title gives the run's wall time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tools._common import init_tool, parse_config, user_errors


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    series: tuple[tuple[str, str], ...]   # (metric key, legend label)
    ylim: tuple[float, float] | None = None
    log: bool = False


PANELS: dict[str, Panel] = {
    "success": Panel("success rate", "fraction of episodes", (
        ("eval/success_rate", "evaluation (mean chunk, fresh episodes)"),
        ("train/success_rate", "training episodes (exploring, last 10)"),
    ), ylim=(-0.03, 1.03)),
    "return": Panel("episode return", "sum of rewards per episode", (
        ("eval/return_mean", "evaluation"),
        ("train/return", "training episodes (last 10)"),
    )),
    "length": Panel("evaluation episode length", "control steps", (("eval/episode_length", "evaluation"),)),
    "critic": Panel("critic loss", "TD error² (Q units²)", (("loss_critic", "critic"),), log=True),
    "actor": Panel("actor loss", "α log π − Q + BC term", (("loss_actor", "actor"), ("loss_bc", "BC term"))),
    "q": Panel("Q values", "discounted return", (
        ("q_mean", "Q(s, a) on the batch"), ("q_target_mean", "TD target"), ("q_pi_mean", "Q(s, π(s))"),
        ("q_chunking/n_step_returns", "h-step reward sum"),
    )),
    "alpha": Panel("temperature α", "α (log scale)", (("alpha", "α"),), log=True),
    "entropy": Panel("policy entropy", "nats per chunk", (
        ("entropy", "−log π(chunk)"), ("q_chunking/adjusted_entropy", "target entropy"),
    )),
}
NOT_SERIES = ("env_step", "update_step", "time_s")
# a return series and the success rate it repeats on sparse tasks (reward 1 at success, which ends the episode)
SUCCESS_OF = {"eval/return_mean": "eval/success_rate", "train/return": "train/success_rate"}


@dataclass
class PlotConfig:
    # The run's folder (holds metrics.jsonl).
    output_dir: str = "outputs/train"
    # Panels to draw, comma-separated, in order: success, return, length, critic, actor, q, alpha, entropy.
    panels: str = ",".join(PANELS)
    # Metric names to draw one panel each (as written in metrics.jsonl), after the panels; e.g. loss_temperature.
    keys: str = ""
    # PNG to write (default: <output_dir>/metrics.png).
    out: str | None = None


def load_metrics(path: Path) -> tuple[dict[str, tuple[list[float], list[float]]], float]:
    """Each numeric metric as (env steps, values), and the run's wall time in seconds."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    wall = 0.0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write: the rest of the run still plots
        step = record.get("env_step", 0)
        wall = max(wall, float(record.get("time_s", 0.0) or 0.0))
        for k, v in record.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_SERIES:
                xs, ys = series.setdefault(k, ([], []))
                xs.append(step)
                ys.append(float(v))
    return series, wall


def _repeats_success(series: dict, key: str) -> bool:
    success = SUCCESS_OF.get(key)
    return key in series and success in series and series[key][1] == series[success][1]


def panels_for(cfg: PlotConfig, series: dict) -> list[Panel]:
    names = [n.strip() for n in cfg.panels.split(",") if n.strip()]
    unknown = [n for n in names if n not in PANELS]
    if unknown:
        raise ValueError(f"unknown panel(s) {unknown}; choose from {', '.join(PANELS)}")
    chosen = []
    for name in names:
        panel = PANELS[name]
        if name == "return":  # drop the series that only repeat the success rate
            kept = tuple(s for s in panel.series if not _repeats_success(series, s[0]))
            panel = Panel(panel.title, panel.ylabel, kept, panel.ylim, panel.log)
        if any(key in series for key, _ in panel.series):
            chosen.append(panel)
    for key in (k.strip() for k in cfg.keys.split(",") if k.strip()):
        if key in series:
            chosen.append(Panel(key, key, ((key, key),)))
    return chosen


def plot(cfg: PlotConfig) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics_file = Path(cfg.output_dir) / "metrics.jsonl"
    if not metrics_file.is_file():
        raise FileNotFoundError(f"{metrics_file} not found; point --output_dir at a tools.train run's folder")
    series, wall = load_metrics(metrics_file)
    panels = panels_for(cfg, series)
    if not panels:
        raise ValueError(f"none of the panels {cfg.panels} (or --keys) has data in {metrics_file}; it has "
                         f"{', '.join(sorted(series))}")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for key, label in panel.series:
            if key not in series:
                continue
            xs, ys = series[key]
            if panel.log:
                xs, ys = zip(*[(x, y) for x, y in zip(xs, ys) if y > 0]) if any(y > 0 for y in ys) else ([], [])
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label)
        ax.set_title(panel.title)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(panel.ylabel)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        if panel.log:
            ax.set_yscale("log")
        if len(panel.series) > 1:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{Path(cfg.output_dir).resolve().name}: {wall / 60:.1f} min of wall time", fontsize="medium")
    fig.tight_layout()
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "metrics.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_config(PlotConfig, argv, tool="plot_metrics", doc=__doc__)
    with user_errors():
        print(plot(cfg))


if __name__ == "__main__":
    main()
