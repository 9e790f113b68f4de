"""Training a success classifier (`policy.reward_classifier`) on labelled frames of LeRobotDatasets.

A frame's label is its `next.success`: tools.record labels sim frames itself (with
`--dataset.steps_after_success` an episode goes on past the success, so it has more than one positive
frame), a HIL session labels the frame its person pressed the success key on. Episodes are never split:
the held-out set is whole episodes (picked separately among episodes with and without a success, so both
kinds are held out), or whole other datasets (`eval_roots`, e.g. recorded with another seed).

Class balance: every batch is half positive frames, half negative (sampled with replacement), so a few
success frames among thousands still teach as much as the rest. Images get the DrQ random shift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from contract.features import IMAGE_PREFIX, STATE_KEY
from policy.encoder import random_shift
from policy.kinematics import ForwardKinematics
from policy.replay import to_hwc_uint8
from policy.reward_classifier import RewardClassifier, RewardClassifierConfig

log = logging.getLogger(__name__)

SUCCESS_KEY = "next.success"
# What a frame's label says. A recorded frame is the observation an action was chosen from, and its
# next.success the success *after* that action ("after_action", what a session's classifier is asked on
# that frame). "at_frame": the success of the frame's own observation (the previous frame's next.success;
# an episode's first frame: none), a property of the image alone. Between the two the arm moves (a held cube
# ~4 mm a step while lifting), which no single frame shows: docs/benchmarks.md measures what that costs.
LABELS = ("after_action", "at_frame")


@dataclass
class LabelledFrames:
    """Frames of one or more datasets: joints, camera images, success labels, and an episode id unique
    across the datasets."""

    states: np.ndarray                 # (N, D) float32
    images: dict[str, np.ndarray]      # camera -> (N, H, W, 3) uint8
    labels: np.ndarray                 # (N,) bool
    episodes: np.ndarray               # (N,) int64
    state_names: list[str] = field(default_factory=list)   # the names of the D joint values ([]: unknown)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> "LabelledFrames":
        return LabelledFrames(self.states[rows], {c: x[rows] for c, x in self.images.items()}, self.labels[rows],
                              self.episodes[rows], list(self.state_names))

    @staticmethod
    def concat(parts: list["LabelledFrames"]) -> "LabelledFrames":
        return LabelledFrames(np.concatenate([p.states for p in parts]),
                              {c: np.concatenate([p.images[c] for p in parts]) for c in parts[0].images},
                              np.concatenate([p.labels for p in parts]), np.concatenate([p.episodes for p in parts]),
                              list(parts[0].state_names))


def at_frame_labels(after_action: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Each frame's success at its own observation: the previous frame's next.success (frames in the order
    LeRobot stores them: episode by episode, in time), False at an episode's first frame."""
    out = np.zeros_like(after_action)
    out[1:] = after_action[:-1]
    out[np.r_[True, episodes[1:] != episodes[:-1]]] = False
    return out


def load_labelled_frames(roots: list[str | Path], first_episode: int = 0, label: str = "after_action"
                         ) -> LabelledFrames:
    """Every frame of the datasets at `roots` (local LeRobotDatasets), labelled as `label` says (LABELS).
    A missing dataset, one without success labels or cameras, or datasets with other cameras or joints than
    the first: one-line errors."""
    from robot.recording import open_dataset

    if label not in LABELS:
        raise ValueError(f"--label={label} is not a frame label; choose one of {', '.join(LABELS)}")
    if not roots:
        raise ValueError("no dataset given: --datasets='[outputs/datasets/so101_lift]' (local LeRobotDatasets "
                         "whose frames carry next.success)")
    parts: list[LabelledFrames] = []
    next_episode = first_episode
    for root in roots:
        root = Path(root)
        dataset = open_dataset(f"local/{root.name}", root)
        features = dataset.features
        if SUCCESS_KEY not in features:
            raise ValueError(f"{root} has no {SUCCESS_KEY} labels: record it with tools.record or a HIL session "
                             "(their frames carry them)")
        cameras = sorted(k[len(IMAGE_PREFIX):] for k in features if k.startswith(IMAGE_PREFIX))
        if not cameras:
            raise ValueError(f"{root} holds no camera frames: record with cameras (the sim arm: "
                             "--robot.obs_mode=pixels)")
        hf = dataset.hf_dataset
        cols = hf.select_columns([STATE_KEY, SUCCESS_KEY, "episode_index"]).with_format("numpy")[:]
        episodes = np.asarray(cols["episode_index"]).reshape(-1).astype(np.int64)
        images = {}
        for cam in cameras:
            key = IMAGE_PREFIX + cam
            if key in hf.column_names:     # stored as images: read the column without decoding video
                column = hf.select_columns([key]).with_format("numpy")[:][key]
                images[cam] = np.stack([to_hwc_uint8(x) for x in column])
            else:                          # stored as video: decode frame by frame
                images[cam] = np.stack([to_hwc_uint8(dataset[i][key]) for i in range(len(dataset))])
        labels = np.asarray(cols[SUCCESS_KEY]).reshape(-1).astype(bool)
        if label == "at_frame":
            labels = at_frame_labels(labels, episodes)
        part = LabelledFrames(np.asarray(cols[STATE_KEY], np.float32), images, labels,
                              np.unique(episodes, return_inverse=True)[1] + next_episode,
                              list(features[STATE_KEY].get("names") or []))
        if parts:
            _check_same_inputs(parts[0], part, Path(roots[0]), root)
        next_episode = int(part.episodes.max()) + 1
        parts.append(part)
    return LabelledFrames.concat(parts)


def _check_same_inputs(first: LabelledFrames, other: LabelledFrames, first_root: Path, root: Path) -> None:
    shapes = {c: x.shape[1:] for c, x in first.images.items()}
    other_shapes = {c: x.shape[1:] for c, x in other.images.items()}
    if shapes != other_shapes or first.states.shape[1] != other.states.shape[1]:
        raise ValueError(f"{root} (cameras {other_shapes}, {other.states.shape[1]} joint values) does not match "
                         f"{first_root} (cameras {shapes}, {first.states.shape[1]} joint values): train on "
                         "recordings of one robot set-up")


def split_by_episode(frames: LabelledFrames, heldout_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, held out): `heldout_fraction` of the episodes with a success frame and of
    those without, each at least one where the group has two or more episodes."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"--heldout_fraction must be between 0 and 1, got {heldout_fraction}")
    rng = np.random.default_rng(seed)
    episodes = np.unique(frames.episodes)
    if len(episodes) < 2:
        raise ValueError("one episode cannot be split into training and held-out episodes: record more, or "
                         "give held-out recordings with --eval_datasets")
    positive = {int(e) for e in np.unique(frames.episodes[frames.labels])}
    heldout: list[int] = []
    for group in ([e for e in episodes if e in positive], [e for e in episodes if e not in positive]):
        n = int(round(heldout_fraction * len(group)))
        n = max(n, 1) if len(group) >= 2 else 0
        heldout += [int(e) for e in rng.permutation(group)[:n]]
    if not heldout:
        heldout = [int(rng.choice(episodes))]
    mask = np.isin(frames.episodes, heldout)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def check_trainable(frames: LabelledFrames) -> None:
    n_pos = int(frames.labels.sum())
    if n_pos == 0:
        raise ValueError("no training frame is labelled a success: record successful episodes (tools.record "
                         "--dataset.steps_after_success=30) or press the success key in a session")
    if n_pos == len(frames):
        raise ValueError("every training frame is labelled a success: record failures too (tools.record "
                         "--teleop.noise=0.03) or the frames before a success")


@dataclass
class RewardTrainingConfig:
    steps: int = 1500
    batch_size: int = 64               # half positive frames, half negative
    lr: float = 3e-4
    weight_decay: float = 1e-4
    seed: int = 0


def train_classifier(frames: LabelledFrames, model_config: RewardClassifierConfig, cfg: RewardTrainingConfig,
                     device: str | torch.device = "cpu",
                     on_step: Callable[[int, float], None] | None = None) -> RewardClassifier:
    """A classifier fitted to `frames` (check_trainable first); `on_step(step, loss)` after each step."""
    check_trainable(frames)
    torch.manual_seed(cfg.seed)
    model_config.cameras = {c: list(x.shape[1:]) for c, x in sorted(frames.images.items())}
    model_config.state_dim = int(frames.states.shape[1])
    model_config.state_names = list(frames.state_names)
    model = RewardClassifier(model_config)
    model.set_state_normalisation(frames.states.mean(0), frames.states.std(0))
    if model_config.kinematics:
        model.set_kinematics(ForwardKinematics.from_sim_arm(model_config.kinematics, model_config.kinematics_degrees),
                             frames.states)
    model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    positives = torch.from_numpy(np.flatnonzero(frames.labels))
    negatives = torch.from_numpy(np.flatnonzero(~frames.labels))
    states = torch.from_numpy(frames.states)
    images = {c: torch.from_numpy(x) for c, x in frames.images.items()}
    pad = model_config.image_encoder.random_shift_pad
    half = cfg.batch_size // 2
    for step in range(cfg.steps):
        rows = torch.cat([positives[torch.randint(len(positives), (half,), generator=generator)],
                          negatives[torch.randint(len(negatives), (cfg.batch_size - half,), generator=generator)]])
        target = torch.cat([torch.ones(half), torch.zeros(cfg.batch_size - half)]).to(device)
        batch = [random_shift(images[c][rows], pad, generator).to(device) for c in model.camera_names]
        loss = F.binary_cross_entropy_with_logits(model(states[rows].to(device), *batch), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if on_step is not None:
            on_step(step, loss.item())
    return model.eval()


@torch.no_grad()
def probabilities(model: RewardClassifier, frames: LabelledFrames, batch_size: int = 256) -> np.ndarray:
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(frames), batch_size):
        rows = slice(start, start + batch_size)
        out.append(model.probability(torch.from_numpy(frames.states[rows]).to(device),
                                     *(torch.from_numpy(frames.images[c][rows]).to(device)
                                       for c in model.camera_names)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def first_detection(probs: np.ndarray, threshold: float, consecutive_frames: int) -> int | None:
    """Index of the frame at which `consecutive_frames` frames in a row have reached `threshold` (what
    ends a session's episode), or None."""
    run = 0
    for i, p in enumerate(probs):
        run = run + 1 if p >= threshold else 0
        if run >= consecutive_frames:
            return i
    return None


def evaluate(probs: np.ndarray, frames: LabelledFrames, threshold: float, consecutive_frames: int = 1
             ) -> dict[str, Any]:
    """Frame precision / recall at `threshold`, and per episode: does the classifier end it (with
    `consecutive_frames`) on a frame labelled a success, too early, or not at all."""
    predicted = probs >= threshold
    tp = int((predicted & frames.labels).sum())
    fp = int((predicted & ~frames.labels).sum())
    fn = int((~predicted & frames.labels).sum())
    out: dict[str, Any] = {
        "frames": len(frames), "positive_frames": int(frames.labels.sum()), "threshold": threshold,
        "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
        "accuracy": float((predicted == frames.labels).mean()) if len(frames) else None,
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
    }
    ends = {"episodes": 0, "successful_episodes": 0, "ended_on_a_success_frame": 0, "ended_early": 0,
            "missed": 0, "consecutive_frames": consecutive_frames}
    for e in np.unique(frames.episodes):
        rows = np.flatnonzero(frames.episodes == e)
        labels = frames.labels[rows]
        hit = first_detection(probs[rows], threshold, consecutive_frames)
        ends["episodes"] += 1
        ends["successful_episodes"] += int(labels.any())
        if hit is None:
            ends["missed"] += int(labels.any())
        elif labels[hit]:
            ends["ended_on_a_success_frame"] += 1
        else:
            ends["ended_early"] += 1
    out["episode_ends"] = ends
    return out
