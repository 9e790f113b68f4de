"""A sim session on a learned success reward beside one on the sim's own success, same seed, same person.

    .venv/bin/python -m benchmarks.hil_learned_reward --reward-path outputs/reward/lift \
        --output-dir outputs/hil/reward_vs_true --seeds 2000 3000 --episodes 150

For each seed, two `chunkbot-hil-session` runs on the simulated SO-101 Lift that differ only in what ends an
episode and pays the reward: `true` (the sim's success check) or `learned` (`--reward.path`, the classifier on
the front and wrist frames and the joints; the scripted person takes over but presses no key). Both render the
two cameras (64x64) so the classifier has its frames; the policy reads the sim's state (`--obs_mode=state`):
what is compared is the reward, not the policy's input. Then `hil.evaluate` scores every checkpoint on 20
person-free episodes judged by the sim's own check, so both curves measure the same thing. `--summarise-only`
re-reads finished runs. Prints a markdown table and writes `curves.png` in the output dir.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

KINDS = ("true", "learned")   # --name renames the learned one (e.g. learned-round2 for a retrained classifier)
BLOCK = 25   # episodes per row of the session table


def session_command(kind: str, seed: int, episodes: int, reward_path: Path, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "tools.hil_session", "--robot.type=sim_so101", "--robot.task=lift",
           "--robot.cameras=[front,wrist]", "--robot.image_height=64", "--robot.image_width=64",
           "--teleop.type=scripted", f"--episodes={episodes}", f"--seed={seed}", "--progress=false",
           f"--output_dir={out}"]
    return cmd + ([f"--reward.path={reward_path}"] if kind == "learned" else [])


def run(kind: str, seed: int, args: argparse.Namespace) -> Path:
    out = args.output_dir / f"{args.name if kind == 'learned' else kind}-s{seed}"
    if not (out / "episodes.jsonl").exists():
        subprocess.run(session_command(kind, seed, args.episodes, args.reward_path, out), check=True)
    evaluation = out / "evaluation.jsonl"
    if not evaluation.exists():
        rows = subprocess.run([sys.executable, "-m", "hil.evaluate", f"--output_dir={out}",
                               f"--episodes={args.eval_episodes}"], check=True, capture_output=True, text=True)
        evaluation.write_text(rows.stdout)
    return out


def session_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines() if line.strip()]


def eval_rows(out: Path) -> list[dict]:
    path = out / "evaluation.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")] if path.exists() else []


def block_table(runs: dict[tuple[str, int], Path]) -> str:
    """Per block of episodes: true successes (the sim's check), reward-ended episodes the sim calls a failure
    (false successes), policy-only true successes, and the person's share of the steps."""
    lines = ["| seed | reward | episodes | true success | false success (reward ended, sim says no) | "
             "policy alone, true success | person's steps |", "|---|---|---|---|---|---|---|"]
    for (kind, seed), out in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0] != "true", kv[0][0])):
        eps = session_rows(out)
        for start in range(0, len(eps), BLOCK):
            b = eps[start:start + BLOCK]
            true = sum(bool(e["task_success"]) for e in b)
            false = sum(e["success"] and not e["task_success"] for e in b)
            alone = sum(bool(e["task_success"]) and e["intervention_steps"] == 0 for e in b)
            person = sum(e["intervention_steps"] for e in b) / max(1, sum(e["steps"] for e in b))
            lines.append(f"| {seed} | {kind} | {start}-{start + len(b) - 1} | {true}/{len(b)} | {false} | "
                         f"{alone} | {person:.0%} |")
    return "\n".join(lines)


def eval_table(runs: dict[tuple[str, int], Path]) -> str:
    """Person-free success of every checkpoint (the sim's own check), side by side per seed."""
    seeds = sorted({s for _, s in runs})
    lines = []
    for seed in seeds:
        rows = {k: {r["after_episode"]: r["success_rate"] for r in eval_rows(runs[(k, s)])}
                for k, s in sorted(runs, key=lambda r: (r[0] != "true", r[0])) if s == seed}
        lines += [f"| seed {seed}: after episode | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
        for ep in sorted({e for r in rows.values() for e in r}):
            lines.append(f"| {ep} | " + " | ".join(f"{r[ep]:.2f}" if ep in r else "" for r in rows.values()) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(runs: dict[tuple[str, int], Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"true": "tab:blue", "learned": "tab:orange"}
    other = iter(["tab:green", "tab:red", "tab:purple"])
    for (kind, seed), out in sorted(runs.items()):
        rows = eval_rows(out)
        if rows:
            colour = colours.get(kind) or colours.setdefault(kind, next(other))
            ax.plot([r["after_episode"] for r in rows], [r["success_rate"] for r in rows], marker="o", color=colour,
                    alpha=0.8, label=f"{kind} reward, seed {seed}",
                    linestyle="-" if seed == min(s for _, s in runs) else "--")
    ax.set_xlabel("session episode (checkpoint)")
    ax.set_ylabel("person-free success (sim check, 20 episodes)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Sim Lift session: learned success reward vs the sim's own success")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward-path", type=Path, required=True, help="tools.train_reward's output dir (or model.onnx)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/hil/reward_vs_true"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[2000])
    parser.add_argument("--episodes", type=int, default=150)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--name", default="learned", help="the learned-reward runs' name (their folders: NAME-s<seed>)")
    parser.add_argument("--summarise-only", action="store_true", help="only read runs already in --output-dir")
    args = parser.parse_args()
    runs = {}
    if not args.summarise_only:
        for seed in args.seeds:
            for kind in KINDS:
                run(kind, seed, args)
    for out in sorted(args.output_dir.glob("*-s*")):       # every finished session there, of every name
        kind, _, seed = out.name.rpartition("-s")
        if (out / "episodes.jsonl").exists() and seed.isdigit():
            runs[(kind, int(seed))] = out
    if not runs:
        raise SystemExit(f"no finished sessions under {args.output_dir}: run without --summarise-only first")
    print(block_table(runs), "\n")
    print(eval_table(runs))
    plot(runs, args.output_dir / "curves.png")
    print(f"plot: {args.output_dir / 'curves.png'}")


if __name__ == "__main__":
    main()
