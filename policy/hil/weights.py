"""Policy weights as one safetensors blob (config JSON in its metadata): what the learner sends.

safetensors holds only tensors and string metadata, so loading a blob from the network can never
run code (unlike a pickled state dict)."""

from __future__ import annotations

import json
import struct

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from policy.config import QChunkSACConfig
from policy.qchunk_sac import QChunkSACPolicy


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
