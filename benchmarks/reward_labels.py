"""Why a success classifier misses on sim Lift frames: replay a tools.record recording in the sim and say,
per frame, how high the cube was and which jaw pads touched it.

    .venv/bin/python -m benchmarks.reward_labels \
        --dataset outputs/datasets/reward_heldout_noise003 --noise 0.03 --seed 1000 --steps-after-success 30 \
        --model outputs/reward/lift

The recording must have been made by tools.record with the scripted expert on the sim SO-101 (pixel mode,
64x64) with the seed, noise and --dataset.steps_after_success given here: the replay runs the same scenes
and the same expert (episode i: seed + i) and checks that every frame's success matches the recorded
`next.success` label before it reports anything. Prints, over the episodes with a success, how the label
changes after the first success (positive / negative frames, flips) and why each negative frame after it is
negative: the cube below the 5 cm line while both pads hold it, the cube up with a pad off it (contact
flicker), or the cube dropped. With --model, the classifier's false positives and false negatives at its
threshold, counted by cube height (cm above its resting height) and grasp. And the ceiling the label's
one-step lag sets: a frame is the observation an action was chosen from, its label the success after that
action, so even a perfect reader of the frame's own cube height misses where the arm crosses the line.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

HEIGHT_BINS_CM = (-5.0, 2.0, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 20.0)


def replay(noise: float, seed: int, episodes: int, steps_after_success: int, size: int = 64
           ) -> list[np.ndarray]:
    """Per episode, rows of (cube height above rest in m, fixed pad touches, moving pad touches, success)."""
    from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, register_for_cli
    from robot.sim.mjcf import CUBE_HALF

    register_for_cli()
    robot = make_robot(RobotConfig.get_choice_class("sim_so101")(task="lift", obs_mode="pixels", image_height=size,
                                                                   image_width=size))
    robot.connect()
    teleop = make_teleoperator(TeleoperatorConfig.get_choice_class("scripted")(noise=noise, seed=seed), robot=robot)
    teleop.connect()
    out = []
    try:
        for i in range(episodes):
            robot.reset(seed + i)
            teleop.expert.reset(seed + i)
            rows, end, succeeded = [], robot.task.max_episode_steps, False
            for k in range(robot.task.max_episode_steps):   # tools.record's loop, without the recorder
                robot.get_observation()
                robot.send_action(teleop.get_action())
                fixed, moving = robot.arm.pad_contacts()
                success = bool(robot.is_success())
                rows.append((float(robot.arm.cube_position()[2]) - CUBE_HALF, fixed, moving, success))
                if success and not succeeded:
                    succeeded, end = True, min(end, k + 1 + steps_after_success)
                if succeeded and k + 1 >= end:
                    break
            out.append(np.asarray(rows, np.float64))
    finally:
        robot.disconnect()
    return out


def lag_ceiling(episodes: list[np.ndarray], lines_cm: tuple[float, ...] = (4.8, 4.9, 5.0, 5.1, 5.2, 5.3)
                ) -> list[str]:
    """Precision / recall of "held by both pads and at least h up" judged on each frame's *own* state (the
    replay row before it; an episode's first frame: the cube at rest), against its label (the state after
    its action): what reading each frame's own height and grasp perfectly gives. A frame shows no motion,
    so a classifier of single frames has little to do better with."""
    now, label = [], []
    for ep in episodes:
        now.append(np.vstack([[0.0, 0.0, 0.0, 0.0], ep[:-1]]))
        label.append(ep[:, 3].astype(bool))
    now_rows, labels = np.concatenate(now), np.concatenate(label)
    held_now = (now_rows[:, 1] > 0) & (now_rows[:, 2] > 0)
    out = []
    for h in lines_cm:
        predicted = held_now & (now_rows[:, 0] >= h / 100)
        tp, fp = int((predicted & labels).sum()), int((predicted & ~labels).sum())
        fn = int((~predicted & labels).sum())
        precision = f"{100 * tp / (tp + fp):.1f} %" if tp + fp else "n/a"
        recall = f"{100 * tp / (tp + fn):.1f} %" if tp + fn else "n/a"
        out.append(f"held and >= {h:.1f} cm: precision {precision}, recall {recall} (tp {tp}, fp {fp}, fn {fn})")
    return out


def why_negative(height: float, fixed: bool, moving: bool) -> str:
    if fixed and moving:
        return "held, below 5 cm" if height < 0.05 else "held, 5 cm up (?)"
    if height >= 0.05:
        return "up, a pad off it (contact flicker)"
    return "dropped or let go, below 5 cm"


def height_counts(heights_m: np.ndarray) -> str:
    cm = 100 * heights_m
    return " ".join(f"[{a:g},{b:g}):{int(((cm >= a) & (cm < b)).sum())}"
                    for a, b in zip(HEIGHT_BINS_CM[:-1], HEIGHT_BINS_CM[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--noise", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps-after-success", type=int, required=True)
    parser.add_argument("--model", type=Path, help="a tools.train_reward folder: its errors by cube height")
    args = parser.parse_args()

    import torch

    from policy.reward_training import load_labelled_frames

    torch.set_num_threads(1)
    frames = load_labelled_frames([args.dataset])
    n_episodes = int(frames.episodes.max()) + 1
    episodes = replay(args.noise, args.seed, n_episodes, args.steps_after_success)
    for e, rows in enumerate(episodes):
        labels = frames.labels[frames.episodes == e]
        if len(labels) != len(rows) or (labels != rows[:, 3].astype(bool)).any():
            raise SystemExit(f"episode {e}: the replay does not reproduce the recorded labels; give the seed, noise "
                             "and steps after success the recording was made with")
    rows = np.concatenate(episodes)
    print(f"{args.dataset}: {len(rows)} frames of {n_episodes} episodes, replayed; labels match")

    after = Counter()
    reasons = Counter()
    for ep in episodes:
        s = ep[:, 3].astype(bool)
        if not s.any():
            after["episodes without a success"] += 1
            continue
        tail = ep[int(np.argmax(s)):]
        after["episodes with a success"] += 1
        after["flips after the first success"] += int((np.diff(tail[:, 3]) != 0).sum())
        after["positive frames after it"] += int(tail[:, 3].sum())
        after["negative frames after it"] += int((tail[:, 3] == 0).sum())
        after["episodes whose label flips"] += int((np.diff(tail[:, 3]) != 0).any())
        for h, f, m, ok in tail:
            if not ok:
                reasons[why_negative(h, bool(f), bool(m))] += 1
    print("after the first success:", dict(after))
    print("negative frames after the first success, why:", dict(reasons))
    held = (rows[:, 1] > 0) & (rows[:, 2] > 0)
    print("held frames by cube height (cm):", height_counts(rows[held, 0]))
    print("a perfect reader of each frame's own cube height and grasp (the label is the state after the frame's "
          "action):")
    for line in lag_ceiling(episodes):
        print("  " + line)

    if args.model is not None:
        from policy.reward_classifier import RewardClassifier
        from policy.reward_training import probabilities

        model = RewardClassifier.from_pretrained(args.model)
        predicted = probabilities(model, frames) >= model.threshold
        for name, wrong in (("false positives", predicted & ~frames.labels),
                            ("false negatives", ~predicted & frames.labels)):
            print(f"{name}: {int(wrong.sum())} ({int((wrong & held).sum())} held by both pads); by cube height (cm):",
                  height_counts(rows[wrong, 0]))


if __name__ == "__main__":
    main()
