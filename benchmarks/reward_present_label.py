"""How much of a success classifier's error is the one-step lag of its label: train and score it with each
frame labelled by the success *at* that frame instead of after its action.

A recorded frame t holds the observation the action was chosen from and `next.success`, the success after
the action (what a session's classifier is asked on that frame: `hil.scene` judges the observation the step
started from against the success the step ended in). Between the two the arm moves (the held cube ~4 mm
per step while lifting), which no single frame can show. Here frame t gets frame t-1's `next.success` (the
success of its own observation; the first frame of an episode: none), on the training and the held-out
frames alike, and the classifier is trained as tools.train_reward trains it.

    .venv/bin/python -m benchmarks.reward_present_label \
        --datasets outputs/datasets/reward_train_noise003_after120 outputs/datasets/reward_train_noise003_seed14_after120 \
        --eval-datasets outputs/datasets/reward_heldout_noise003 outputs/datasets/reward_heldout_noise006 \
        --output-dir outputs/reward/lift_present_label --kinematics so101
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def present_labels(labels: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Each frame's success at its own observation: the previous frame's `next.success`, False at an
    episode's first frame."""
    out = np.zeros_like(labels)
    out[1:] = labels[:-1]
    out[np.r_[True, episodes[1:] != episodes[:-1]]] = False
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", required=True, type=Path)
    parser.add_argument("--eval-datasets", nargs="+", required=True, type=Path)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--kinematics", default=None, help="the arm for --model.kinematics (so101, koch) or none")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    import torch

    from policy.reward_classifier import RewardClassifierConfig
    from policy.reward_training import RewardTrainingConfig, evaluate, load_labelled_frames, probabilities, train_classifier

    torch.set_num_threads(1)
    train = load_labelled_frames(args.datasets)
    heldout = load_labelled_frames(args.eval_datasets, first_episode=int(train.episodes.max()) + 1)
    for frames in (train, heldout):
        frames.labels = present_labels(frames.labels, frames.episodes)
    model = train_classifier(train, RewardClassifierConfig(kinematics=args.kinematics),
                             RewardTrainingConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr))
    probs = probabilities(model, heldout)
    metrics = {t: evaluate(probs, heldout, t, consecutive_frames=2) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)}
    model.save_pretrained(args.output_dir, {"heldout_present_label": {str(t): m for t, m in metrics.items()}})
    print(f"held out, labelled at the present frame: {len(heldout)} frames, {int(heldout.labels.sum())} success")
    for t, m in metrics.items():
        e = m["episode_ends"]
        print(f"{t:5.2f}  precision {100 * m['precision']:.1f} %  recall {100 * m['recall']:.1f} %  episode ends "
              f"{e['ended_on_a_success_frame']} / {e['ended_early']} / {e['missed']}")
    grid = np.round(np.arange(0.05, 0.996, 0.005), 3)
    met = [float(t) for t in grid if (m := evaluate(probs, heldout, float(t)))["precision"] is not None
           and m["precision"] >= 0.95 and m["recall"] >= 0.90]
    print(json.dumps({"thresholds_meeting_95_90": [met[0], met[-1]] if met else None}))


if __name__ == "__main__":
    main()
