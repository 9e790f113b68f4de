"""Study a policy offline: its chunks on recorded observations against the demonstrator's actions, in Rerun.

    python -m tools.visualize_chunks --policy.path=outputs/train/so101_lift \
        --dataset.root=outputs/datasets/so101_lift --dataset.episodes='[0, 1]' --viz.rrd=outputs/viz/lift.rrd
    python -m tools.visualize_chunks --policy.path=actor.onnx --dataset.root=... --viz.display_data=true

Every frame of the chosen episodes goes into the tool's observation history (every frame, so a policy
with an observation history sees what it saw in training), and every `--every` frames (default: the
chunk size, the open-loop cadence the paper trains for) a chunk is predicted from its window.
The view shows each chunk as a TCP path in 3D on the arm drawn from the recorded joints, per joint
the chunk ahead of the frame it was predicted at against the demonstrator's actions (grey), the
mean |chunk - demonstration| per chunk, and the critic's value of each chunk when there is one: a
torch training checkpoint (its `training_state/`) or an ONNX actor exported with its critic.

`--policy.path`: a torch checkpoint (output dir, checkpoint dir or pretrained_model dir;
`QChunkSACPolicy.from_pretrained`) or an exported `.onnx` actor (`export.OnnxChunkPolicy`).
Without `--viz.rrd` or `--viz.display_data`, the recording goes to outputs/viz/<dataset>_chunks.rrd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from robot.features import IMAGE_PREFIX, STATE_KEY
from robot.history import ObservationHistory, window_states
from robot.viz import ChunkView, VizConfig
from robot.viz.arm_model import arm_type_for
from tools._cli import LEROBOT_DISPLAY
from tools._common import init_tool, parse_config, user_errors

log = logging.getLogger("tools.visualize_chunks")


@dataclass
class PolicySource:
    # A torch checkpoint (output dir, checkpoint dir, pretrained_model dir) or an exported .onnx actor.
    path: Path | None = None
    # Score each chunk with the critic when the checkpoint (or the ONNX export) has one.
    critic: bool = True


@dataclass
class DatasetSource:
    # The recorded LeRobotDataset (e.g. from `python -m tools.record`).
    root: Path | None = None
    # Its repo id (default: local/<name of root>); only a label offline.
    repo_id: str | None = None
    # Episodes to show, in order.
    episodes: list[int] = field(default_factory=lambda: [0])


@dataclass
class VisualizeChunksConfig:
    policy: PolicySource = field(default_factory=PolicySource)
    dataset: DatasetSource = field(default_factory=DatasetSource)
    viz: VizConfig = field(default_factory=VizConfig)
    # Predict a chunk every n frames (default: the policy's chunk size).
    every: int | None = None
    # Which arm model draws the robot (default: from the dataset's robot type, e.g. sim_so101 -> so101).
    arm: str | None = None
    # Show the dataset's camera frames (decoding them is the slow part of this tool).
    images: bool = True


# ---------------------------------------------------------------------- policies
def load_policy(path: Path) -> Any:
    """`export.OnnxChunkPolicy` for a .onnx file, else `QChunkSACPolicy.from_pretrained` (torch)."""
    if not path.exists():
        raise FileNotFoundError(f"no policy at {path}: give a training output / checkpoint dir or an exported .onnx")
    if path.suffix == ".onnx":
        try:
            from export.onnx_policy import OnnxChunkPolicy
        except ImportError as e:
            raise RuntimeError(f"cannot run {path}: the ONNX runtime policy is unavailable ({e}); "
                               "install onnxruntime or pass a torch checkpoint dir") from e
        return OnnxChunkPolicy(path)
    from policy.qchunk_sac import QChunkSACPolicy

    return QChunkSACPolicy.from_pretrained(path)


def _checkpoint_dir(path: Path) -> Path | None:
    """The training checkpoint (with training_state/) that `path` names, if any."""
    from policy.checkpoint import learner_state_path  # a checkpoint dir names a torch policy: torch is loaded

    for candidate in (path, path.parent, path / "checkpoints" / "last"):
        if learner_state_path(candidate).is_file():
            return candidate
    return None


class TorchChunkValue:
    """The critic's value of a chunk, Q(s, a_{0:h}) aggregated over the ensemble as the learner does,
    for a torch policy and the online critic of its training checkpoint."""

    def __init__(self, policy: Any, checkpoint: Path):
        import torch

        from policy.checkpoint import load_critic
        from policy.learner import aggregate_critics, critic_actions

        self.torch = torch
        self.policy = policy
        self.critic = load_critic(policy, checkpoint)
        self.critic_actions, self.aggregate_critics = critic_actions, aggregate_critics

    def __call__(self, frame: dict[str, np.ndarray], chunk: np.ndarray) -> float:
        """`frame`: the window the chunk was predicted from (robot.history.ObservationHistory.frame())."""
        torch, pol = self.torch, self.policy
        with torch.no_grad():
            states = torch.as_tensor(window_states(frame, pol.history_length))[None]
            images = [torch.as_tensor(frame[IMAGE_PREFIX + c])[None] for c in pol.camera_names]
            features = pol.features(states, images)
            unit = pol.chunk_to_unit(torch.as_tensor(chunk, dtype=torch.float32)[None], states)
            q = self.critic(torch.cat([features, self.critic_actions(pol.config, unit)], -1))  # (K, 1)
            return float(self.aggregate_critics(pol.config, q, dim=0)[0])


# ---------------------------------------------------------------------- dataset
def _frames(ds: Any, lo: int, hi: int, cameras: list[str]) -> Callable[[int], dict[str, np.ndarray]]:
    """frame(i) -> camera images (H, W, 3) uint8 of dataset row i (decoded on demand)."""

    def frame(i: int) -> dict[str, np.ndarray]:
        if not cameras:
            return {}
        item = ds[i]
        out = {}
        for cam in cameras:
            img = item[IMAGE_PREFIX + cam]  # (3, H, W) float in [0, 1]
            out[cam] = (img.permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        return out

    return frame


def visualize_chunks(cfg: VisualizeChunksConfig) -> Path | None:
    """Log the policy's chunks on the recorded episodes; returns the .rrd written (None: viewer only)."""
    from robot.recording import open_dataset

    if cfg.policy.path is None or cfg.dataset.root is None:
        raise ValueError("--policy.path and --dataset.root are required")
    root = Path(cfg.dataset.root)
    ds = open_dataset(cfg.dataset.repo_id or f"local/{root.name}", root)
    policy = load_policy(Path(cfg.policy.path))
    state_names = list(ds.features[STATE_KEY]["names"])
    action_names = tuple(ds.features["action"]["names"])
    if tuple(policy.action_names) != action_names:
        raise ValueError(f"the policy acts on {list(policy.action_names)} but the dataset's actions are "
                         f"{list(action_names)}: was it trained on this robot?")
    fps = float(ds.fps)
    if abs(float(policy.fps) - fps) > 1e-6:
        log.warning("the policy was trained at %g fps and the dataset is at %g fps: chunks are drawn at the "
                    "dataset's rate", policy.fps, fps)
    h = int(policy.chunk_size)
    every = cfg.every or h
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")

    dataset_cams = [k[len(IMAGE_PREFIX):] for k in ds.features if k.startswith(IMAGE_PREFIX)]
    policy_cams = list(getattr(policy, "camera_names", []) or [])
    missing = [c for c in policy_cams if c not in dataset_cams]
    if missing:
        raise ValueError(f"the policy needs cameras {missing} that the dataset does not have ({dataset_cams})")
    shown_cams = dataset_cams if cfg.images else []
    decode_cams = sorted(set(shown_cams) | set(policy_cams))

    value_fn = None
    if cfg.policy.critic and Path(cfg.policy.path).suffix != ".onnx":
        checkpoint = _checkpoint_dir(Path(cfg.policy.path))
        if checkpoint is not None:
            value_fn = TorchChunkValue(policy, checkpoint)
        else:
            log.info("no training_state/ next to %s: chunks are shown without the critic's value", cfg.policy.path)

    viz = cfg.viz
    if not viz.enabled:
        viz = VizConfig(**{**viz.__dict__, "rrd": Path("outputs/viz") / f"{root.name}_chunks.rrd"})
    arm = cfg.arm or arm_type_for(str(ds.meta.robot_type or ""))
    view = ChunkView(viz, fps=fps, chunk_size=h, action_names=action_names, arm=arm, cameras=shown_cams,
                     name=f"{Path(cfg.policy.path).name} on {root.name}", lossless=True)

    # the tool steps the episodes, so it owns the observation history (the policy and the critic read its window)
    history = ObservationHistory(int(getattr(policy, "history_length", 1) or 1))
    data = ds.hf_dataset.with_format("numpy")
    states = np.stack(data[STATE_KEY]).astype(np.float32)
    actions = np.stack(data["action"]).astype(np.float32)
    starts = [int(i) for i in ds.meta.episodes["dataset_from_index"]]
    ends = [int(i) for i in ds.meta.episodes["dataset_to_index"]]
    errors: list[float] = []
    with view:
        for episode in cfg.dataset.episodes:
            if not 0 <= episode < len(starts):
                raise ValueError(f"episode {episode} is not in the dataset (it has {len(starts)} episodes)")
            lo, hi = starts[episode], ends[episode]
            frame_images = _frames(ds, lo, hi, decode_cams)
            policy.reset()
            history.clear()
            view.start_episode(str(episode))
            for i in range(lo, hi):
                k = i - lo
                images = frame_images(i)
                frame = {STATE_KEY: states[i]}
                frame.update({IMAGE_PREFIX + c: images[c] for c in policy_cams})
                history.push(frame)   # every frame, so a history policy's window is consecutive steps
                if k % every == 0:
                    window = history.frame()
                    chunk = np.asarray(policy.predict_chunk(window), dtype=np.float32)
                    value = value_fn(window, chunk) if value_fn is not None else getattr(policy, "last_value", None)
                    demo = actions[i:min(i + h, hi)]
                    errors.append(float(np.abs(chunk[: len(demo)] - demo).mean()))
                    view.log_chunk(chunk, origin=k, value=value, demo=demo)
                measured = dict(zip(state_names, states[i].tolist()))
                view.log_step(k, k / fps, measured, demo=actions[i],
                              images={c: images[c] for c in shown_cams} if view.wants_images(k) else None)
    log.info("%d chunks on %d episode(s); mean |chunk - demonstration| %.3f (robot units)", len(errors),
             len(cfg.dataset.episodes), float(np.mean(errors)) if errors else float("nan"))
    if viz.rrd is not None:
        log.info("recording: %s (open it with `rerun %s`)", viz.rrd, viz.rrd)
    return viz.rrd


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_config(VisualizeChunksConfig, argv, tool="visualize_chunks", doc=__doc__, aliases=LEROBOT_DISPLAY)
    log.info("predicting chunks of %s on episodes %s of %s", cfg.policy.path, cfg.dataset.episodes, cfg.dataset.root)
    with user_errors(RuntimeError):
        visualize_chunks(cfg)


if __name__ == "__main__":
    main()
