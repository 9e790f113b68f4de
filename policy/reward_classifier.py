"""A learned success reward: a small image classifier that says whether a frame shows the task done
(HIL-SERL's reward classifier), so a person need not judge every episode.

    model = RewardClassifier.from_pretrained("outputs/reward/lift")   # config.json + model.safetensors
    p = model.predict_proba(frame)        # a policy frame (observation.state + observation.images.<cam>)

Each camera goes through the policy's image encoder (`policy.encoder.make_image_encoder`: the DrQ CNN or
the ResNet-10-shaped backbone, uint8 in, float only inside), the joint positions are normalised with the
training data's mean and std (kept as buffers, so saved and exported with the weights), and an MLP gives
one logit. With `kinematics` (the arm) the head also gets the gripper's position, the arm's forward
kinematics of the joints (`policy.kinematics`, its chain saved with the weights), normalised the same way.
`tools.train_reward` trains it (`policy.reward_training`), `export.reward_exporter` exports it.
The folder also holds `metrics.json`: precision and recall on the held-out episodes it was trained beside.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from contract.features import IMAGE_PREFIX, STATE_KEY
from policy.config import ImageEncoderConfig
from policy.encoder import make_image_encoder
from policy.kinematics import CHAIN_JOINTS, ForwardKinematics

MODEL_TYPE = "chunkbot_reward_classifier"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.json"


def _reward_image_encoder() -> ImageEncoderConfig:
    # the policy's DrQ CNN at half its width and three layers deep (on the pooled images, see image_pool):
    # a CPU trains it in minutes
    return ImageEncoderConfig(channels=16, num_layers=3, latent_dim=64, random_shift_pad=2)


@dataclass
class RewardClassifierConfig:
    """What the classifier looks at and its size. `cameras` and `state_dim` come from the data."""

    cameras: dict[str, list[int]] = field(default_factory=dict)   # name -> [H, W, 3], sorted by name
    state_dim: int = 0                    # joint positions read beside the images (0: images only)
    # their names, in order (the dataset's observation.state names): a robot that reports more values (the
    # sim arm's privileged state) gives the classifier these, picked by name. [] (older models): by count
    state_names: list[str] = field(default_factory=list)
    use_state: bool = True                # read the joints too (where the gripper is says a lot about a grasp)
    # the arm ("so101" | "koch") whose forward kinematics (policy.kinematics) turns the joints into the
    # gripper's position for the head, so the images need only show the cube in the jaws, not its height
    # to a centimetre (HIL-SERL gives its classifier the end-effector pose); None: no kinematics. The
    # chain is read off the sim arm's model when training and saved with the weights.
    kinematics: str | None = None
    # the joints' units for the kinematics: degrees (true) or [-100, 100] (false); None: the arm's
    # LeRobot default (so101 degrees, koch [-100, 100])
    kinematics_degrees: bool | None = None
    image_encoder: ImageEncoderConfig = field(default_factory=_reward_image_encoder)
    # average-pool each image by this factor before the encoder (1: full resolution): whether the cube is
    # up shows at a quarter of the pixels, and a CPU trains 2x2-pooled 64x64 frames many times faster
    image_pool: int = 2
    hidden_dim: int = 128
    # probability at or above which a frame counts as a success (the session's default; metrics use it)
    threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"type": MODEL_TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RewardClassifierConfig":
        data = dict(data)
        kind = data.pop("type", None)
        if kind != MODEL_TYPE:
            raise ValueError(f"config.json is of type {kind!r}, not a reward classifier ({MODEL_TYPE}): give the "
                             "folder tools.train_reward wrote")
        data["image_encoder"] = ImageEncoderConfig(**data.get("image_encoder", {}))
        return cls(**data)


class RewardClassifier(nn.Module):
    """frames -> success logit. forward(state (B, D) float, *images (B, H, W, 3) uint8 in `camera_names`
    order) -> (B,) logits; `probability` is its sigmoid."""

    def __init__(self, config: RewardClassifierConfig) -> None:
        super().__init__()
        if not config.cameras:
            raise ValueError("a reward classifier needs at least one camera")
        self.config = config
        if config.image_pool < 1:
            raise ValueError(f"image_pool must be >= 1, got {config.image_pool}")
        self.camera_names = sorted(config.cameras)
        self.pool = config.image_pool
        self.encoders = nn.ModuleDict({c: make_image_encoder(self._pooled_shape(config.cameras[c]), config.image_encoder)
                                       for c in self.camera_names})
        state_dim = config.state_dim if config.use_state else 0
        self.register_buffer("state_mean", torch.zeros(max(state_dim, 1)))
        self.register_buffer("state_std", torch.ones(max(state_dim, 1)))
        width = len(self.camera_names) * config.image_encoder.latent_dim + state_dim
        if config.kinematics:
            if config.state_dim <= len(CHAIN_JOINTS):
                raise ValueError(f"--model.kinematics={config.kinematics} needs the arm's joints in the state "
                                 f"({len(CHAIN_JOINTS)} body joints and the gripper), got {config.state_dim} values")
            # filled from the sim arm when training (set_kinematics), from the saved weights when loading
            self.kinematics = ForwardKinematics()
            self.register_buffer("tcp_mean", torch.zeros(3))
            self.register_buffer("tcp_std", torch.ones(3))
            width += 3
        self.head = nn.Sequential(nn.Linear(width, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, 1))

    def _pooled_shape(self, shape: list[int]) -> tuple[int, int, int]:
        h, w, c = shape
        return h // self.pool, w // self.pool, c

    def _pooled(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> pooled, still uint8 (what the policy's encoders take)."""
        if self.pool == 1:
            return images
        x = F.avg_pool2d(images.permute(0, 3, 1, 2).float(), self.pool)
        return x.round().to(torch.uint8).permute(0, 2, 3, 1)

    @property
    def state_names(self) -> list[str]:
        """The joint values it reads, in order ([]: a model saved before names were kept)."""
        return self.config.state_names

    @property
    def threshold(self) -> float:
        """The probability a frame needs to count as a success (as trained and evaluated)."""
        return self.config.threshold

    def set_state_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        if self.config.use_state and self.config.state_dim:
            self.state_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.state_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def set_kinematics(self, kinematics: ForwardKinematics, states: np.ndarray) -> None:
        """Use `kinematics` (the arm's chain) and normalise its TCP with the mean and std over `states`
        (the training frames' joints)."""
        self.kinematics = kinematics.to(self.tcp_mean.device)
        with torch.no_grad():
            tcp = self.kinematics(torch.as_tensor(states, dtype=torch.float32, device=self.tcp_mean.device))
        self.tcp_mean.copy_(tcp.mean(0))
        self.tcp_std.copy_(tcp.std(0).clamp_min(1e-3))      # metres: a millimetre at least

    def forward(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        parts = [self.encoders[c](self._pooled(x)) for c, x in zip(self.camera_names, images)]
        if self.config.use_state and self.config.state_dim:
            parts.append(((state.float() - self.state_mean) / self.state_std).clamp(-10, 10))
        if self.config.kinematics:
            parts.append(((self.kinematics(state) - self.tcp_mean) / self.tcp_std).clamp(-10, 10))
        return self.head(torch.cat(parts, -1)).squeeze(-1)

    def probability(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(state, *images))

    # ------------------------------------------------------------------ one frame at a time (a session)
    def predict_proba(self, frame: dict[str, np.ndarray]) -> float:
        """The success probability of one policy frame."""
        state, images = frame_inputs(frame, self.camera_names, self.config.state_dim)
        with torch.no_grad():
            p = self.probability(torch.from_numpy(state), *(torch.from_numpy(x) for x in images))
        return float(p[0])

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """config.json + model.safetensors (+ metrics.json) written into a temp folder and renamed into
        place: a kill leaves the previous model or the new one, never half of one."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".tmp-{directory.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2))
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp / WEIGHTS_NAME))
        if metrics is not None:
            (tmp / METRICS_NAME).write_text(json.dumps(metrics, indent=2))
        old = directory.parent / f".old-{directory.name}-{os.getpid()}"
        if directory.exists():
            os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "RewardClassifier":
        """The classifier in a folder tools.train_reward wrote, in eval mode."""
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"no reward classifier at {path} ({CONFIG_NAME} + {WEIGHTS_NAME} missing): give "
                                    "the folder `python -m tools.train_reward --output_dir=...` wrote")
        model = cls(RewardClassifierConfig.from_dict(json.loads((path / CONFIG_NAME).read_text())))
        model.load_state_dict(load_file(str(path / WEIGHTS_NAME)))
        return model.to(device).eval()


def frame_inputs(frame: dict[str, np.ndarray], cameras: list[str], state_dim: int
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """One policy frame as a batch of one: state (1, D) float32 and (1, H, W, 3) uint8 per camera; a frame
    without a camera or with another state size is a one-line error naming it."""
    missing = [c for c in cameras if IMAGE_PREFIX + c not in frame]
    if missing:
        raise ValueError(f"the reward classifier reads cameras {cameras} but the robot gives no {missing}: "
                         "give the robot those cameras (the sim arm: --robot.obs_mode=pixels)")
    state = np.asarray(frame.get(STATE_KEY, np.zeros(0)), np.float32).reshape(1, -1)
    if state_dim and state.shape[1] != state_dim:
        raise ValueError(f"the reward classifier reads {state_dim} joint values but the robot gives "
                         f"{state.shape[1]}: train it on this robot's recordings")
    if not state_dim:
        state = np.zeros((1, 1), np.float32)
    return state, [np.ascontiguousarray(frame[IMAGE_PREFIX + c], dtype=np.uint8)[None] for c in cameras]
