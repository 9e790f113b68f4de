"""`ChunkbotQCSACPolicy`: chunkbot's `QChunkSACPolicy` as a LeRobot `PreTrainedPolicy`, what
`lerobot.policies.factory.get_policy_class("chunkbot_qc_sac")` returns (see __init__.py).

Same modules, same weight names, same stateless inference as chunkbot's class; loading goes
through chunkbot's `policy.hub` (a local folder or a Hub repo id, one-line errors) and pushing writes
what LeRobot's `push_model_to_hub` writes: config.json, model.safetensors, LeRobot's model card as
README.md, and the training config when there is one.
Training is chunkbot's learner's (critics, temperature, chunk replay), not `lerobot-train`'s.

LeRobot's inference API is per control step and stateful (`select_action(obs)` from a queue of the
last chunk, `predict_action_chunk(obs)`, `reset()` between episodes), so this face, and only this
one, keeps an observation history and an action queue for it: the thin adapter LeRobot's interface
needs. chunkbot's own loops hand windows to the stateless `predict_chunk` / `action_chunk` instead.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from lerobot.policies.pretrained import PreTrainedPolicy

from policy.config import POLICY_TYPE
from policy.hub import CONFIG_NAME, pretrained_dir
from policy.lerobot_plugin.configuration_chunkbot_qc_sac import ChunkbotQCSACConfig
from policy.qchunk_sac import QChunkSACPolicy
from robot.history import ObservationHistory

log = logging.getLogger(__name__)

# what LeRobot's push_model_to_hub uploads (and skips), and its commit message
UPLOAD_PATTERNS = ["*.safetensors", "*.json", "*.yaml", "*.md"]
IGNORE_PATTERNS = ["*.tmp", "*.log"]
COMMIT_MESSAGE = "Upload policy weights, train config and readme"


class ChunkbotQCSACPolicy(QChunkSACPolicy, PreTrainedPolicy):
    config_class = ChunkbotQCSACConfig
    name = POLICY_TYPE

    def __init__(self, config: ChunkbotQCSACConfig, **_dataset: Any) -> None:
        # make_policy also passes dataset_stats / dataset_meta: the normaliser's statistics are in the
        # weights (fitted by chunkbot's training), so they are not needed here
        if not isinstance(config, ChunkbotQCSACConfig):
            raise ValueError(f"{type(self).__name__} needs a ChunkbotQCSACConfig, got {type(config).__name__}; "
                             f"use {type(self).__name__}.from_pretrained(path) or ChunkbotQCSACConfig.from_chunkbot")
        QChunkSACPolicy.__init__(self, config)
        self.history = ObservationHistory(config.obs_history_length)  # LeRobot's per-step API only
        self._queue: deque[torch.Tensor] = deque()

    @classmethod
    def from_chunkbot(cls, policy: QChunkSACPolicy) -> "ChunkbotQCSACPolicy":
        """The LeRobot face of a chunkbot policy: same config and weights, on the same device."""
        if isinstance(policy, cls):
            return policy
        device = next(policy.parameters()).device
        out = cls(ChunkbotQCSACConfig.from_chunkbot(policy.config, device=device.type))
        out.load_state_dict(policy.state_dict())
        return out.to(device).train(policy.training)

    # --- LeRobot's per-step inference: this adapter owns the episode's history and action queue ---
    def reset(self) -> None:
        """A new episode: forget the observation history and the rest of the last chunk."""
        self.history.clear()
        self._queue.clear()

    @torch.no_grad()
    def predict_action_chunk(self, observation: dict[str, Any], deterministic: bool = True) -> torch.Tensor:
        """This control step's unbatched policy frame (into the history) -> (h, A) float32 joint
        targets in robot units, from the history's window."""
        self.history.push(observation)
        return self.action_chunk(self.history.frame(), deterministic)

    @torch.no_grad()
    def select_action(self, observation: dict[str, Any], deterministic: bool = True) -> torch.Tensor:
        """The next action of the current chunk; a new chunk is predicted when the queue is empty.
        Call it every control step (the history sees each frame)."""
        self.history.push(observation)
        if not self._queue:
            self._queue.extend(self.action_chunk(self.history.frame(), deterministic))
        return self._queue.popleft()

    # --- persistence: LeRobot's signatures, chunkbot's files ---
    save_pretrained = PreTrainedPolicy.save_pretrained

    def _save_pretrained(self, save_directory: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        self._write_pretrained(Path(save_directory), state_dict)

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path: str | Path, *, config: ChunkbotQCSACConfig | None = None,
                        revision: str | None = None, strict: bool = True, **kwargs: Any) -> "ChunkbotQCSACPolicy":
        """A local folder (pretrained_model, checkpoint, output dir) or a Hub repo id, on `config.device`.
        The weights load strictly whatever `strict` says: a chunkbot checkpoint names every tensor."""
        downloads = {k: kwargs[k] for k in ("token", "cache_dir", "force_download", "local_files_only") if k in kwargs}
        directory = pretrained_dir(pretrained_name_or_path, revision, **downloads)
        if config is None:
            config = cls.config_class.load(directory / CONFIG_NAME)
        return cls.from_files(directory, config, config.device or "cpu")

    # --- LeRobot's training entry points: chunkbot trains with its own learner ---
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict | None]:
        raise NotImplementedError(
            "chunkbot's Q-chunking SAC trains with its own learner (critic ensemble, temperature, chunk "
            "replay): run chunkbot-train (python -m tools.train); lerobot-train cannot train it")

    def get_optim_params(self) -> Iterator[torch.nn.Parameter]:
        return self.parameters()

    # --- the Hub, as LeRobot's push_model_to_hub ---
    def push_to_hub(self, repo_id: str | None = None, *, private: bool | None = None, token: str | None = None,
                    branch: str | None = None, create_pr: bool | None = None, commit_message: str | None = None,
                    dataset_repo_id: str | None = None, train_config: dict[str, Any] | None = None,
                    license: str | None = None, tags: list[str] | None = None) -> str:
        """Create (or reuse) the model repo and upload config.json, model.safetensors, LeRobot's model
        card (README.md) and `train_config` (train_config.json) in one commit; returns its URL."""
        from huggingface_hub import HfApi  # network stack: only to push

        repo_id = repo_id or self.config.repo_id
        if not repo_id:
            raise ValueError("push_to_hub needs a repo id (owner/name): pass repo_id or set config.repo_id")
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id=repo_id, private=self.config.private if private is None else private,
                                  exist_ok=True).repo_id
        with TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            saved = Path(tmp) / repo_id
            self.save_pretrained(saved)
            card = self.generate_model_card(dataset_repo_id, self.config.type, license or self.config.license,
                                            tags or self.config.tags)
            card.save(str(saved / "README.md"))
            if train_config is not None:
                (saved / "train_config.json").write_text(json.dumps(train_config, indent=2))
            commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=saved,
                                       commit_message=commit_message or COMMIT_MESSAGE, revision=branch,
                                       create_pr=create_pr, allow_patterns=UPLOAD_PATTERNS,
                                       ignore_patterns=IGNORE_PATTERNS)
        log.info("Model pushed to %s", commit.repo_url.url)
        return str(commit.commit_url)
