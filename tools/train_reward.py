r"""Train a success classifier (a learned reward) on labelled camera frames, so a session's episodes end
on success without a person pressing the success key.

    python -m tools.train_reward --datasets='[outputs/datasets/lift_pixels]' --output_dir=outputs/reward/lift

    # held out: whole recordings of another seed instead of a share of the training episodes
    python -m tools.train_reward --datasets='[outputs/datasets/lift_pixels]' \
        --eval_datasets='[outputs/datasets/lift_pixels_seed1000]' --output_dir=outputs/reward/lift

    # an SO-101 (sim_so101 or so101_follower, joints in degrees): give the classifier the gripper's position,
    # computed from the joints by the arm's forward kinematics (Koch: --model.kinematics=koch)
    python -m tools.train_reward --datasets='[outputs/datasets/lift_pixels]' --model.kinematics=so101 \
        --output_dir=outputs/reward/lift

Datasets: local LeRobotDatasets with camera frames whose frames carry `next.success`: tools.record's
(on the sim arm: --robot.obs_mode=pixels --teleop.noise=0.03 --dataset.steps_after_success=30 gives both
classes) and HIL sessions' (<output_dir>/dataset: the frames a person pressed the success key on).
Episodes stay whole: `--heldout_fraction` of them (with and without a success alike) are held out,
unless `--eval_datasets` are given. Batches are half success frames, half others.

Output (<output_dir>): config.json + model.safetensors (`RewardClassifier.from_pretrained`),
metrics.json (precision / recall on the held-out episodes, also printed) and model.onnx (for the robot
side, checked against torch). A session uses it with `--reward.path=<output_dir>` (or .../model.onnx).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from policy.reward_classifier import RewardClassifierConfig
from policy.reward_training import RewardTrainingConfig
from tools._common import init_tool, parse_config, user_errors

log = logging.getLogger("tools.train_reward")


@dataclass
class TrainRewardConfig:
    # Local LeRobotDatasets (their root folders) whose frames carry next.success labels.
    datasets: list[str] = field(default_factory=list)
    # Held-out recordings (e.g. another seed); empty: hold out --heldout_fraction of the training episodes.
    eval_datasets: list[str] = field(default_factory=list)
    heldout_fraction: float = 0.2
    # What a frame's label says (training and held-out alike): "after_action", the recorded next.success
    # (the success after the frame's action); "at_frame", the success of the frame's own observation (the
    # image shows it: the targets are met with it, docs/benchmarks.md). A session asks the classifier on the
    # frame each step starts from, so with "at_frame" an episode ends one step after the success itself.
    label: str = "after_action"
    output_dir: Path = Path("outputs/reward")
    # The classifier (cameras and joint count come from the datasets). --model.kinematics=so101 (or koch)
    # gives it the gripper's position from the joints (forward kinematics). --model.threshold is the
    # probability a frame needs to count as a success, in the metrics and (by default) in a session.
    model: RewardClassifierConfig = field(default_factory=RewardClassifierConfig)
    training: RewardTrainingConfig = field(default_factory=RewardTrainingConfig)
    # Frames in a row at or above the threshold that end an episode, for the episode metrics.
    consecutive_frames: int = 2
    export_onnx: bool = True
    overwrite: bool = False            # replace a classifier already in output_dir
    device: str = "cpu"
    num_threads: int | None = None     # torch CPU threads (default: torch's)
    progress: bool = True


def train_reward(cfg: TrainRewardConfig) -> dict:
    """Train, evaluate on held-out episodes, save (and export); returns the metrics."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from policy.reward_training import (
        check_trainable,
        evaluate,
        load_labelled_frames,
        probabilities,
        split_by_episode,
        train_classifier,
    )

    out = Path(cfg.output_dir)
    if (out / "config.json").exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a reward classifier: add --overwrite=true to replace it, or "
                              "choose another --output_dir")
    if cfg.consecutive_frames < 1:
        raise ValueError(f"--consecutive_frames must be >= 1, got {cfg.consecutive_frames}")
    if not 0.0 < cfg.model.threshold < 1.0:
        raise ValueError(f"--model.threshold must be between 0 and 1, got {cfg.model.threshold}")
    if cfg.model.kinematics:
        from robot.sim.mjcf import ARM_SPECS

        if cfg.model.kinematics not in ARM_SPECS:
            raise ValueError(f"--model.kinematics={cfg.model.kinematics} is no arm with a kinematic model; known: "
                             f"{', '.join(sorted(ARM_SPECS))}")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    frames = load_labelled_frames(cfg.datasets, label=cfg.label)
    if cfg.eval_datasets:
        train, heldout = frames, load_labelled_frames(cfg.eval_datasets, first_episode=int(frames.episodes.max()) + 1,
                                                     label=cfg.label)
        shapes = {c: x.shape[1:] for c, x in frames.images.items()}
        if {c: x.shape[1:] for c, x in heldout.images.items()} != shapes or heldout.states.shape[1] != frames.states.shape[1]:
            raise ValueError("--eval_datasets hold other cameras or joints than --datasets: evaluate on recordings "
                             "of the same set-up")
    else:
        train_rows, heldout_rows = split_by_episode(frames, cfg.heldout_fraction, cfg.training.seed)
        train, heldout = frames.subset(train_rows), frames.subset(heldout_rows)
    check_trainable(train)
    log.info("training on %d frames (%d success) of %d episodes; holding out %d frames (%d success) of %d "
             "episodes", len(train), int(train.labels.sum()), len(np.unique(train.episodes)), len(heldout),
             int(heldout.labels.sum()), len(np.unique(heldout.episodes)))
    bar = tqdm(total=cfg.training.steps, desc="training the reward classifier", unit="step",
               disable=not cfg.progress)

    def on_step(step: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    try:
        model = train_classifier(train, cfg.model, cfg.training, cfg.device, on_step)
    finally:
        bar.close()
    threshold = cfg.model.threshold
    metrics = {"heldout": evaluate(probabilities(model, heldout), heldout, threshold, cfg.consecutive_frames),
               "train": evaluate(probabilities(model, train), train, threshold, cfg.consecutive_frames),
               "datasets": [str(d) for d in cfg.datasets], "eval_datasets": [str(d) for d in cfg.eval_datasets],
               "heldout_episodes": "eval_datasets" if cfg.eval_datasets else cfg.heldout_fraction,
               "training": {"steps": cfg.training.steps, "batch_size": cfg.training.batch_size,
                            "lr": cfg.training.lr, "seed": cfg.training.seed},
               "kinematics": cfg.model.kinematics, "label": cfg.label}
    model.cpu().save_pretrained(out, metrics)
    if cfg.export_onnx:
        from export.reward_exporter import ONNX_NAME, export_reward_classifier

        n = min(len(heldout), 16)
        feeds = {"observation.state": heldout.states[:n],
                 **{f"observation.images.{c}": x[:n] for c, x in heldout.images.items()}}
        diff = export_reward_classifier(model, out / ONNX_NAME, feeds)
        log.info("exported %s (onnxruntime matches torch within %.1g)", out / ONNX_NAME, diff)
    h = metrics["heldout"]
    log.info("held out: precision %s, recall %s at threshold %.2f (%d frames, %d success); %s",
             _pct(h["precision"]), _pct(h["recall"]), threshold, h["frames"], h["positive_frames"],
             json.dumps(h["episode_ends"]))
    return metrics


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_config(TrainRewardConfig, argv, tool="train_reward", doc=__doc__)
    with user_errors():
        metrics = train_reward(cfg)
    print(json.dumps({"precision": metrics["heldout"]["precision"], "recall": metrics["heldout"]["recall"],
                      "output_dir": str(cfg.output_dir)}))


if __name__ == "__main__":
    main()
