"""Policy weights as one safetensors blob (config JSON in its metadata): what the learner publishes,
and the actor's policy that loads them only when they are sound.

safetensors holds only tensors and string metadata, so loading a blob from the network can never
run code (unlike a pickled state dict). The actor checks a new version before it replaces the
policy it runs: every tensor finite, the same names and shapes as the running policy (or, for the
first weights, the chunk size and actions this actor drives); otherwise it keeps what it had.
"""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from policy.config import QChunkSACConfig
from policy.qchunk_sac import QChunkSACPolicy

log = logging.getLogger(__name__)


def policy_to_bytes(policy: QChunkSACPolicy, version: int) -> bytes:
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}
    return save_tensors(tensors, metadata={"config": json.dumps(policy.config.to_dict()), "version": str(version)})


def read_metadata(blob: bytes) -> dict[str, str]:
    if len(blob) < 8:
        raise ValueError("weights blob too short to be a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("weights blob header is longer than the blob")
    return json.loads(blob[8:8 + n]).get("__metadata__", {})


def policy_from_bytes(blob: bytes, into: QChunkSACPolicy | None = None) -> QChunkSACPolicy:
    """Load weights into `into` (same config) or into a new policy built from the blob's config."""
    if into is None:
        into = QChunkSACPolicy(QChunkSACConfig.from_dict(json.loads(read_metadata(blob)["config"]))).eval()
    with torch.no_grad():
        into.load_state_dict(load_tensors(blob))
    return into


def check_weights(blob: bytes, like: QChunkSACPolicy | None) -> dict[str, torch.Tensor]:
    """The blob's tensors, if every one is finite and (given `like`) named and shaped as its state."""
    try:
        tensors = load_tensors(blob)
    except Exception as e:  # safetensors raises its own error type for a malformed file  # noqa: BLE001
        raise ValueError(f"not a safetensors file ({e})") from None
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"non-finite values in {len(bad)} tensor(s), e.g. {bad[0]} (the learner diverged?)")
    if like is not None:
        mine = {k: tuple(v.shape) for k, v in like.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in tensors.items()}
        if mine != theirs:
            diff = sorted(set(mine.items()) ^ set(theirs.items()))[:3]
            raise ValueError(f"tensor names or shapes differ from the running policy (e.g. {diff})")
    return tensors


class ActorPolicy:
    """The `ChunkPolicy` the executor runs: the latest sound weights from the learner, sampled
    (exploration) or deterministic. Holds no weights until the learner publishes the first."""

    def __init__(self, chunk_size: int, action_names: tuple[str, ...], fps: float, noise: float = 1.0,
                 history_length: int = 1) -> None:
        self.chunk_size = int(chunk_size)
        self.action_names = tuple(action_names)
        self.fps = float(fps)
        self.history_length = int(history_length)  # L: the executor keeps the window and hands it over
        self.deterministic = False
        # Exploration: 1 samples the policy's own distribution, 0 plays its mean, in between moves the
        # sample that fraction of the way from the mean (a person is there to correct it anyway).
        self.noise = float(noise)
        self.policy: QChunkSACPolicy | None = None
        self.version = 0

    def load(self, version: int, blob: bytes) -> bool:
        """Switch to these weights if they are sound; otherwise keep the running policy (False)."""
        try:
            tensors = check_weights(blob, self.policy)
            policy = self.policy
            if policy is None:
                config = QChunkSACConfig.from_dict(json.loads(read_metadata(blob)["config"]))
                policy = QChunkSACPolicy(config).eval()
                if (policy.chunk_size != self.chunk_size or tuple(policy.action_names) != self.action_names
                        or policy.history_length != self.history_length):
                    raise ValueError(f"the learner's policy predicts {policy.chunk_size} x {policy.action_names} "
                                     f"from {policy.history_length} states; this actor runs {self.chunk_size} x "
                                     f"{self.action_names} from {self.history_length}: use the same policy config "
                                     "on both")
            with torch.no_grad():
                policy.load_state_dict(tensors)
        except (ValueError, KeyError, RuntimeError) as e:
            log.warning("refused weights v%d, keeping v%d: %s", version, self.version, e)
            return False
        self.policy, self.version = policy, int(version)
        return True

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        if self.policy is None:
            raise RuntimeError("no policy weights yet (the person drives until the learner publishes some)")
        chunk = self.policy.exploration_chunk(observation, 0.0 if self.deterministic else self.noise)
        return chunk.cpu().numpy().astype(np.float32)

    def reset(self) -> None:
        """contract.ChunkPolicy: nothing to forget (the episode's executor keeps the observation history)."""
