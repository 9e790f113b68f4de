"""`ChunkbotQCSACConfig`: chunkbot's `QChunkSACConfig` registered with LeRobot's `PreTrainedConfig` as
`chunkbot_qc_sac` (see policy/lerobot_plugin/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.optim import AdamConfig
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE
from lerobot.utils.device_utils import auto_select_torch_device

from policy.config import POLICY_TYPE, QChunkSACConfig
from policy.hub import CONFIG_NAME


@PreTrainedConfig.register_subclass(POLICY_TYPE)
@dataclass
class ChunkbotQCSACConfig(QChunkSACConfig, PreTrainedConfig):
    """chunkbot's fields plus LeRobot's runtime ones (device, repo_id, input/output features, ...).

    Saved, it writes chunkbot's config.json (its own fields and `type`), so both loaders read every
    checkpoint; LeRobot's fields are derived (features, n_obs_steps) or chosen at run time (device)."""

    def __post_init__(self) -> None:
        QChunkSACConfig.__post_init__(self)
        if self.device is None:  # chunkbot's config.json does not keep a device: pick one as LeRobot does
            self.device = auto_select_torch_device().type
        PreTrainedConfig.__post_init__(self)
        self.n_obs_steps = self.obs_history_length
        if not self.input_features and self.state_dim:
            self.input_features = {OBS_STATE: PolicyFeature(FeatureType.STATE, (self.state_dim,))}
            for cam, (h, w, c) in sorted(self.camera_shapes.items()):
                self.input_features[f"{OBS_IMAGES}.{cam}"] = PolicyFeature(FeatureType.VISUAL, (c, h, w))
        if not self.output_features and self.action_dim:
            self.output_features = {ACTION: PolicyFeature(FeatureType.ACTION, (self.action_dim,))}

    @classmethod
    def from_chunkbot(cls, config: QChunkSACConfig, **lerobot_fields: object) -> "ChunkbotQCSACConfig":
        """The same knobs and features as `config`, with LeRobot's fields (device=..., repo_id=...)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(QChunkSACConfig)}, **lerobot_fields)

    # --- what LeRobot's dataset and training code asks a policy config ---
    @property
    def observation_delta_indices(self) -> list[int] | None:
        """The actor reads the last L states (obs_history_length)."""
        return list(range(1 - self.obs_history_length, 1)) if self.obs_history_length > 1 else None

    @property
    def action_delta_indices(self) -> list[int]:
        """A sample's action is the chunk of h actions from its step on."""
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None  # as LeRobot's SAC: rewards come from the RL loop, not from dataset windows

    def get_optimizer_preset(self) -> AdamConfig:
        """The policy's own parameters are the actor's (the critics and temperature are the learner's)."""
        return AdamConfig(lr=self.actor_lr, grad_clip_norm=self.grad_clip_norm)

    def get_scheduler_preset(self) -> None:
        return None

    def validate_features(self) -> None:
        """The state and action sizes LeRobot hands over must be the ones the policy was built for."""
        state, action = self.robot_state_feature, self.action_feature
        if state is not None and self.state_dim and tuple(state.shape) != (self.state_dim,):
            raise ValueError(f"{OBS_STATE} has shape {tuple(state.shape)}; this chunkbot policy reads "
                             f"{self.state_dim} state values")
        if action is not None and self.action_dim and tuple(action.shape) != (self.action_dim,):
            raise ValueError(f"{ACTION} has shape {tuple(action.shape)}; this chunkbot policy drives "
                             f"{self.action_dim} joints ({', '.join(self.action_names)})")

    def _save_pretrained(self, save_directory: Path) -> None:
        """chunkbot's config.json (LeRobot's would add its runtime fields, which chunkbot's loader refuses)."""
        self.save(Path(save_directory) / CONFIG_NAME)
