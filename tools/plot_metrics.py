"""Plot a training run's metrics: `python -m tools.plot_metrics --output_dir=DIR [--keys=a,b] [--out=FILE.png]`.

Reads <output_dir>/metrics.jsonl (written by `python -m tools.train`) and draws one panel per
metric against env steps into a PNG (default <output_dir>/metrics.png).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import draccus

from tools._common import fail, init_tool

DEFAULT_KEYS = ("eval/success_rate", "eval/return_mean", "train/return", "loss_critic", "loss_actor", "q_mean",
                "alpha", "q_chunking/joint_log_prob", "q_chunking/n_step_returns")


@dataclass
class PlotConfig:
    output_dir: str = "outputs/train"
    keys: str = ",".join(DEFAULT_KEYS)   # comma-separated metric names; missing ones are skipped
    out: str | None = None               # PNG path; default <output_dir>/metrics.png


def load_metrics(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    series: dict[str, tuple[list[float], list[float]]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        step = record.get("env_step", 0)
        for k, v in record.items():
            if isinstance(v, (int, float)) and k not in ("env_step", "update_step", "time_s"):
                xs, ys = series.setdefault(k, ([], []))
                xs.append(step)
                ys.append(float(v))
    return series


def plot(cfg: PlotConfig) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics_file = Path(cfg.output_dir) / "metrics.jsonl"
    if not metrics_file.is_file():
        raise FileNotFoundError(f"{metrics_file} not found; point --output_dir at a `python -m tools.train` run")
    series = load_metrics(metrics_file)
    keys = [k for k in cfg.keys.split(",") if k in series]
    if not keys:
        raise ValueError(f"none of {cfg.keys} in {metrics_file}; it has {sorted(series)}")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs, ys = series[key]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3)
        ax.set_title(key)
        ax.set_xlabel("env step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "metrics.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main() -> None:
    init_tool()
    cfg = draccus.parse(PlotConfig)
    try:
        print(plot(cfg))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))


if __name__ == "__main__":
    main()
