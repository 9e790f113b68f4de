"""A saved success classifier's held-out precision, recall and episode ends at several thresholds, and the
thresholds (if any) at which it meets given targets.

    .venv/bin/python -m benchmarks.reward_thresholds --model outputs/reward/lift \
        --eval-datasets outputs/datasets/reward_heldout_noise003 outputs/datasets/reward_heldout_noise006

Scores with `policy.reward_training.evaluate` (what tools.train_reward writes into metrics.json at the
trained threshold), on every frame of the given recordings; "episode ends" counts, over the episodes with a
success, where `--consecutive-frames` frames in a row at or above the threshold end a session's episode: on
a success frame / too early / never.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="a tools.train_reward folder")
    parser.add_argument("--eval-datasets", required=True, nargs="+", type=Path)
    parser.add_argument("--thresholds", nargs="+", type=float, default=THRESHOLDS)
    parser.add_argument("--consecutive-frames", type=int, default=2)
    parser.add_argument("--label", default="after_action", help="the frame label the model was trained on "
                        "(tools.train_reward --label; metrics.json says)")
    parser.add_argument("--precision-target", type=float, default=0.95)
    parser.add_argument("--recall-target", type=float, default=0.90)
    args = parser.parse_args()

    import torch

    from policy.reward_classifier import RewardClassifier
    from policy.reward_training import evaluate, load_labelled_frames, probabilities

    torch.set_num_threads(1)
    model = RewardClassifier.from_pretrained(args.model)
    frames = load_labelled_frames(args.eval_datasets, label=args.label)
    probs = probabilities(model, frames)
    print(f"{args.model}: {len(frames)} frames, {int(frames.labels.sum())} success")
    print("threshold  precision  recall   episode ends (success frame / early / never)")
    for t in args.thresholds:
        m = evaluate(probs, frames, t, args.consecutive_frames)
        e = m["episode_ends"]
        print(f"{t:9.2f}  {100 * (m['precision'] or 0):8.1f} %  {100 * (m['recall'] or 0):5.1f} %   "
              f"{e['ended_on_a_success_frame']} / {e['ended_early']} / {e['missed']}")
    # every threshold that meets both targets, on a fine grid
    grid = np.round(np.arange(0.05, 0.996, 0.005), 3)
    met = [t for t in grid if (m := evaluate(probs, frames, float(t)))["precision"] is not None
           and m["precision"] >= args.precision_target and m["recall"] >= args.recall_target]
    print(f"thresholds meeting precision >= {args.precision_target:.0%} and recall >= {args.recall_target:.0%}: "
          + (f"{met[0]:.3f} .. {met[-1]:.3f} ({len(met)} of {len(grid)} on a 0.005 grid)" if met else "none"))


if __name__ == "__main__":
    main()
