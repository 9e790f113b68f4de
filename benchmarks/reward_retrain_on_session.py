"""One HIL-SERL round on the sim: retrain a success classifier with a session's false successes as negatives.

    .venv/bin/python -m benchmarks.reward_retrain_on_session --session outputs/hil/learned_reward \
        --datasets outputs/datasets/reward_train_noise003_after120 \
        outputs/datasets/reward_train_noise003_seed14_after120 \
        --eval-datasets outputs/datasets/reward_heldout_noise003 outputs/datasets/reward_heldout_noise006 \
        --output-dir outputs/reward/lift_round2

On a real arm the person's failure key labels an episode the classifier ended wrongly; in the sim the task's
own check (`task_success` in the session's episodes.jsonl) plays that person: every frame of an episode the
classifier ended as a success while the sim says it was not is relabelled negative, the session's other frames
keep their labels. The classifier is then trained as tools.train_reward does (same defaults), on the training
datasets plus those session frames, and scored on the same held-out datasets; saved with its metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--session", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--eval-datasets", nargs="+", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--kinematics", default=None, help="as tools.train_reward --model.kinematics (so101 | koch)")
    parser.add_argument("--label", default="after_action", help="as tools.train_reward --label (at_frame | after_action)")
    args = parser.parse_args()

    import torch

    from hil.reward import joint_selection
    from policy.reward_classifier import RewardClassifierConfig
    from policy.reward_training import (
        LabelledFrames,
        RewardTrainingConfig,
        evaluate,
        load_labelled_frames,
        probabilities,
        train_classifier,
    )

    torch.set_num_threads(1)
    train = load_labelled_frames(args.datasets, label=args.label)
    session = load_labelled_frames([args.session / "dataset"], first_episode=int(train.episodes.max()) + 1,
                                   label=args.label)
    # a state policy's session records the sim's privileged state: the classifier's joints, by name
    select = joint_selection(train.state_names, session.state_names)
    if select is not None:
        session.states, session.state_names = session.states[:, select], list(train.state_names)
    episodes = [json.loads(line) for line in (args.session / "episodes.jsonl").read_text().splitlines()]
    false_success = [e["episode"] for e in episodes if e["success"] and e.get("task_success") is False]
    ids = np.unique(session.episodes)            # session episode i -> its id in `session`, in order
    wrong = np.isin(session.episodes, ids[false_success])
    session.labels = session.labels & ~wrong
    print(f"session: {len(session)} frames of {len(ids)} episodes; {len(false_success)} false successes "
          f"({int(wrong.sum())} frames) relabelled negative")
    heldout = load_labelled_frames(args.eval_datasets, first_episode=int(session.episodes.max()) + 1, label=args.label)
    cfg = RewardTrainingConfig(steps=args.steps, batch_size=64, lr=1e-3)
    model = train_classifier(LabelledFrames.concat([train, session]), RewardClassifierConfig(kinematics=args.kinematics),
                             cfg)
    probs = probabilities(model, heldout)
    metrics = {"heldout": evaluate(probs, heldout, model.threshold, 2), "session": str(args.session),
               "false_successes_relabelled": len(false_success), "datasets": args.datasets,
               "eval_datasets": args.eval_datasets, "training": {"steps": args.steps, "batch_size": 64, "lr": 1e-3}}
    model.save_pretrained(args.output_dir, metrics)
    h = metrics["heldout"]
    print(json.dumps({"precision": h["precision"], "recall": h["recall"], "episode_ends": h["episode_ends"]}))


if __name__ == "__main__":
    main()
