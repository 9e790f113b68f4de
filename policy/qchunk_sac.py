"""QChunkSACPolicy: what gets saved, loaded and deployed (normaliser, encoder, actor).

The critics, targets and temperature belong to the learner (policy/learner.py), as in LeRobot
where the policy is the actor side and the algorithm owns the rest.

Inference is stateless: one window frame in (the newest policy frame plus, when the actor reads
L > 1 states, the previous L-1 as `state_history`), one (h, A) chunk out. The caller owns the
observation history (`robot.history.ObservationHistory`: the executor on an arm, the runner and
trainer in training, the HIL session), so one policy serves any number of episodes at once.
`action_chunk` / `exploration_chunk` / `random_chunk` return tensors, `predict_chunk` numpy
(`contract.ChunkPolicy`). `deterministic_chunk(state, *images)` is a plain tensor function (raw
state history, uint8 images -> robot-unit chunk) for ONNX export. LeRobot's stateful per-step API
(`select_action`, `predict_action_chunk`, `reset`) lives only on LeRobot's face of the policy
(policy/lerobot_plugin), which keeps a history for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from contract import IMAGE_PREFIX
from policy.actor import make_actor
from policy.config import QChunkSACConfig
from policy.distributions import sample_tanh_gaussian
from policy.encoder import ObservationEncoder
from policy.hub import CONFIG_NAME, WEIGHTS_NAME, pretrained_dir
from policy.normalize import Normalizer, max_action_step
from robot.history import window_states


class QChunkSACPolicy(nn.Module):
    name = "qchunk_sac"
    config_class = QChunkSACConfig  # what from_pretrained decodes config.json into (LeRobot's name for it)

    def __init__(self, config: QChunkSACConfig) -> None:
        # not super().__init__(): LeRobot's face of this policy (policy/lerobot_plugin) also inherits
        # PreTrainedPolicy, whose __init__ wants the config and checks its type itself
        nn.Module.__init__(self)
        if config.state_dim <= 0 or config.action_dim <= 0:
            raise ValueError("the config has no features yet: build it with config.with_features(state_dim, "
                             "action_names, camera_shapes, fps) from the env or the dataset")
        self.config = config
        self.normalizer = Normalizer(config.state_dim, config.action_dim, config.normalize_state,
                                     config.relative_actions, config.chunk_size)
        self.encoder = ObservationEncoder(config)
        self.actor = make_actor(config, self.encoder.output_dim, self.encoder.image_dim)

    # --- ChunkPolicy attributes ---
    @property
    def chunk_size(self) -> int:
        return self.config.chunk_size

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self.config.action_names)

    @property
    def fps(self) -> float:
        return self.config.fps

    @property
    def history_length(self) -> int:
        """L: states the actor reads. The caller keeps the window (robot/history.py) and hands the
        previous L-1 over as frame["state_history"]."""
        return self.config.obs_history_length

    @property
    def camera_names(self) -> list[str]:
        return self.encoder.camera_names

    # --- training-side pieces (used by the learner) ---
    def features(self, state: torch.Tensor, images: list[torch.Tensor]) -> torch.Tensor:
        """Encoder features f(s) (B, F) of a raw state history (B, L, D) and uint8 images."""
        return self.encoder(self.normalizer.state(state), images)

    def distribution(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std), each (B, h*A) in [-1, 1] action units; `state` is the raw history (B, L, D)."""
        return self.actor(features, self.normalizer.state(state))

    def sample(self, features: torch.Tensor, state: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi(.|s) as (B, h*A) unit actions and the chunk's joint log-prob (B,)."""
        return sample_tanh_gaussian(*self.distribution(features, state), generator=generator)

    def chunk_to_unit(self, chunk: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, h, A) robot-unit chunks observed at raw state histories (B, L, D) -> (B, h*A) in [-1, 1]."""
        return self.normalizer.action_to_unit(chunk, state[:, -1, : self.config.action_dim]).flatten(1)

    def chunk_from_unit(self, unit: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, h*A) in [-1, 1] at raw state histories (B, L, D) -> (B, h, A) robot units."""
        a = self.config.action_dim
        return self.normalizer.action_from_unit(unit.view(-1, self.chunk_size, a), state[:, -1, :a])

    @torch.no_grad()
    def fit_normalizer(self, data: Any, action_low: np.ndarray, action_high: np.ndarray) -> None:
        """State statistics of a replay buffer's observations; with relative actions, the largest
        per-step joint motion of its chunks (no data: a default fraction of the joint ranges)."""
        self.normalizer.fit(data.stored_states(), action_low, action_high, self.relative_action_step(data))

    @torch.no_grad()
    def relative_action_step(self, data: Any) -> np.ndarray | None:
        """With relative actions, the largest per-step joint motion of a replay buffer's chunks (the
        normaliser's step); None without relative actions or data (the normaliser's default)."""
        if not self.config.relative_actions or not len(data):
            return None
        w = data.all_windows(self.chunk_size, self.chunk_size, 1.0)
        return max_action_step(w.actions, w.state[:, -1, : self.config.action_dim])

    # --- deployment: plain tensors in, robot-unit chunk out ---
    def deterministic_chunk(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        """state (B, L, D) raw history, images (B, H, W, 3) uint8 per camera (sorted by name) ->
        (B, h, A) joint targets in robot units (tanh of the mean)."""
        mean, _ = self.distribution(self.features(state, list(images)), state)
        return self.chunk_from_unit(torch.tanh(mean), state)

    def stochastic_chunk(self, state: torch.Tensor, *images: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        a, _ = self.sample(self.features(state, list(images)), state, generator)
        return self.chunk_from_unit(a, state)

    @torch.no_grad()
    def random_chunk(self, frame: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """A uniform random chunk in the actor's unit space at the frame's observation (the warm-up's
        exploration): uniform over the joint ranges (absolute actions) or a local random motion from
        the present joints (relative actions)."""
        device = self.normalizer.state_mean.device
        state = self._window_state(frame)
        unit = torch.rand((1, self.chunk_size * self.config.action_dim), generator=generator, device=device) * 2 - 1
        return self.chunk_from_unit(unit, state)[0]

    # --- inference on one window: stateless (the caller owns the history, robot/history.py) ---
    def _window_state(self, frame: dict[str, Any]) -> torch.Tensor:
        """(1, L, D) raw states of a window frame (`state_history` + `observation.state`), on the device."""
        state = torch.as_tensor(window_states(frame, self.config.obs_history_length))
        if state.shape[1] != self.config.state_dim:
            raise ValueError(f"observation.state has {state.shape[1]} values; the policy expects "
                             f"{self.config.state_dim}")
        return state.unsqueeze(0).to(self.normalizer.state_mean.device)

    def _window_images(self, frame: dict[str, Any]) -> list[torch.Tensor]:
        """(1, H, W, 3) uint8 per camera (sorted by name) of the window's newest frame, on the device."""
        device = self.normalizer.state_mean.device
        images = []
        for cam in self.camera_names:
            key = IMAGE_PREFIX + cam
            if key not in frame:
                raise KeyError(f"observation lacks {key!r}; the policy was trained with cameras {self.camera_names}")
            images.append(torch.as_tensor(np.asarray(frame[key]), dtype=torch.uint8).unsqueeze(0).to(device))
        return images

    @torch.no_grad()
    def action_chunk(self, frame: dict[str, Any], deterministic: bool = True) -> torch.Tensor:
        """One window frame (`robot.history.ObservationHistory.frame()`: the newest frame, and
        `state_history` when the policy reads L > 1 states) -> (h, A) joint targets in robot units:
        tanh of the mean (`deterministic`) or a sample."""
        state, images = self._window_state(frame), self._window_images(frame)
        chunk = self.deterministic_chunk(state, *images) if deterministic else self.stochastic_chunk(state, *images)
        return chunk[0]

    @torch.no_grad()
    def exploration_chunk(self, frame: dict[str, Any], noise: float = 1.0) -> torch.Tensor:
        """A chunk to explore with: `noise` 1 samples the policy, 0 plays its mean, in between moves
        the sample that fraction of the way from the mean. Full samples of a BC-shaped chunk policy
        spoil grasps on the sim tasks; 0.2 is what succeeds there (docs/study.md, budget `tuned`)."""
        if noise >= 1.0:
            return self.action_chunk(frame, False)
        mean = self.action_chunk(frame, True)
        if noise <= 0.0:
            return mean
        return mean + noise * (self.action_chunk(frame, False) - mean)

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """contract.ChunkPolicy: window frame -> (h, A) float32 numpy (the mean chunk)."""
        return self.action_chunk(observation).cpu().numpy().astype(np.float32)

    def reset(self) -> None:
        """contract.ChunkPolicy: nothing to forget, the policy keeps no state between calls."""

    # --- persistence (LeRobot's pretrained_model layout) ---
    def save_pretrained(self, directory: str | Path) -> None:
        """config.json (with the LeRobot policy `type`) and model.safetensors, as LeRobot's policies."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._write_pretrained(directory)

    def _write_pretrained(self, directory: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        self.config.save(directory / CONFIG_NAME)
        tensors = self.state_dict() if state_dict is None else state_dict
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(directory / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | torch.device = "cpu", *,
                        revision: str | None = None) -> "QChunkSACPolicy":
        """A `pretrained_model` folder, a checkpoint folder holding one, an output dir (its last
        checkpoint), or a Hugging Face Hub repo id (`owner/name`; `revision` pins a commit or tag)."""
        directory = pretrained_dir(name_or_path, revision)
        return cls.from_files(directory, cls.config_class.load(directory / CONFIG_NAME), device)

    @classmethod
    def from_files(cls, directory: Path, config: QChunkSACConfig, device: str | torch.device) -> "QChunkSACPolicy":
        """The policy of `config` with the weights of directory/model.safetensors, in eval mode."""
        policy = cls(config)
        policy.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return policy.to(device).eval()

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload config.json, model.safetensors and LeRobot's model card to a Hub model repo, as
        LeRobot's policies do; returns the commit URL. Keywords: those of
        `ChunkbotQCSACPolicy.push_to_hub` (private, token, dataset_repo_id, train_config, ...)."""
        from policy.lerobot_plugin.modeling_chunkbot_qc_sac import ChunkbotQCSACPolicy  # LeRobot: only to push

        return ChunkbotQCSACPolicy.from_chunkbot(self).push_to_hub(repo_id, **kwargs)

