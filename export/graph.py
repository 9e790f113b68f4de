"""The torch module that becomes the ONNX graph: raw robot observations in, raw joint targets out.

    state (B, D) raw ─┬─ [state_history (B, L-1, D)] ─► concat ─► s_{t-L+1..t} ─► normalise ─┐
                      └──────────────────────────────────────────► next_state_history         ├─► encoder ─► actor mean
    images (B, H, W, 3) uint8 ─► NCHW float (the /255 - 0.5 folded into the first conv) ──────┘
    actor mean ─► tanh ─► [-1, 1] chunk ─► action un-normalisation ─► action_chunk (B, h, A) robot units
                                      └─► [critic ensemble on (features, chunk) ─► chunk_q_values (B, K), chunk_value (B,)]

Built from the policy's own pieces (`features`, `distribution`, `normalizer`) around a deep copy, and
the critic's layout from the learner's (`policy.learner.critic_actions`, `aggregate_critics`; the critic
itself from `policy.checkpoint.load_critic`), so the training code is untouched and nothing here
re-derives it; the exporter's parity check compares the graph against
`QChunkSACPolicy.deterministic_chunk`, the policy's reference deployment function.

Imports torch: only `export.exporter` (and the benchmark) import this module.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

from policy.learner import aggregate_critics, critic_actions

log = logging.getLogger("export.graph")


class NormalisationFusedImageEncoder(nn.Module):
    """An `ImageEncoder` whose input scaling x/255 - 0.5 is folded into its first convolution:
    W' = W / 255, b' = b - 0.5 * sum(W). Exact for an unpadded first conv (a padded one would pad
    raw zeros where the original pads normalised zeros, so it is not fused). An input average pool
    (`image_encoder.pool`) commutes with the affine scaling, so it stays in front of the fused conv."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.pool = int(getattr(encoder, "pool", 1))
        self.convs = copy.deepcopy(encoder.convs)
        self.head = encoder.head
        conv = self.convs[0]
        with torch.no_grad():
            bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
            new_bias = bias - 0.5 * conv.weight.sum(dim=(1, 2, 3))
            conv.weight.div_(255.0)
            conv.bias = nn.Parameter(new_bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        if self.pool > 1:
            x = nn.functional.avg_pool2d(x, self.pool)
        return self.head(self.convs(x).flatten(1))


def _fusable(encoder: nn.Module) -> bool:
    convs = getattr(encoder, "convs", None)
    if not isinstance(convs, nn.Sequential) or not hasattr(encoder, "head") or len(convs) == 0:
        return False
    first = convs[0]
    if not isinstance(first, nn.Conv2d):
        return False
    pad = first.padding
    return pad == "valid" or (isinstance(pad, tuple) and all(p == 0 for p in pad))


def fuse_image_normalisation(encoder: nn.Module, shape: tuple[int, int, int], tolerance: float = 1e-4) -> nn.Module:
    """The fused encoder when it provably computes the same features (checked on random images),
    else the original (the policy's preprocessing may have changed: then nothing is assumed)."""
    if not _fusable(encoder):
        log.info("image encoder %s is not a plain unpadded conv stack: keeping its preprocessing as is",
                 type(encoder).__name__)
        return encoder
    fused = NormalisationFusedImageEncoder(encoder).eval()
    images = torch.randint(0, 256, (4, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (fused(images) - encoder(images)).abs().max().item()
    if diff > tolerance:
        log.warning("folding the image scaling into the first conv changed the features by %.2e: not fused", diff)
        return encoder
    return fused


class ChunkActorGraph(nn.Module):
    """forward(state, [state_history], *images) -> (action_chunk, [next_state_history], [q_values, value])."""

    def __init__(self, policy: nn.Module, critic: nn.Module | None = None, fuse_images: bool = True) -> None:
        super().__init__()
        cfg = policy.config
        self.policy = copy.deepcopy(policy).eval()
        self.chunk_size, self.action_dim = int(cfg.chunk_size), int(cfg.action_dim)
        self.history_length = int(cfg.obs_history_length)
        self.camera_names = list(self.policy.camera_names)
        if fuse_images:
            for cam in self.camera_names:
                shape = tuple(int(x) for x in cfg.camera_shapes[cam])
                self.policy.encoder.cameras[cam] = fuse_image_normalisation(self.policy.encoder.cameras[cam], shape)
        self.critic = critic.eval() if critic is not None else None

    def forward(self, state: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.history_length > 1:
            history, images = rest[0], list(rest[1:])
            states = torch.cat([history, state.unsqueeze(1)], 1)        # (B, L, D), oldest first
        else:
            history, images = None, list(rest)
            states = state.unsqueeze(1)
        pol = self.policy
        features = pol.features(states, images)                          # normalises the states itself
        mean, _ = pol.distribution(features, states)
        unit_chunk = torch.tanh(mean)                                    # (B, h*A) in [-1, 1]
        chunk = pol.chunk_from_unit(unit_chunk, states)
        outputs: list[torch.Tensor] = [chunk]
        if history is not None:
            outputs.append(states[:, 1:])
        if self.critic is not None:
            cfg = pol.config
            q = self.critic(torch.cat([features, critic_actions(cfg, unit_chunk)], -1)).transpose(0, 1)  # (B, K)
            outputs += [q, aggregate_critics(cfg, q, dim=-1)]
        return tuple(outputs)


def reference_chunk(policy: nn.Module, state: torch.Tensor, history: torch.Tensor | None,
                    images: list[torch.Tensor]) -> torch.Tensor:
    """What the torch policy deploys: `deterministic_chunk` on the assembled history (the parity reference)."""
    states = state.unsqueeze(1) if history is None else torch.cat([history, state.unsqueeze(1)], 1)
    with torch.no_grad():
        return policy.deterministic_chunk(states, *images)


def critic_description(policy: nn.Module) -> dict[str, Any]:
    cfg = policy.config
    return {"mode": cfg.critic_mode, "aggregation": cfg.critic_aggregation, "num_critics": int(cfg.num_critics),
            "action_space": "normalised [-1, 1] chunk (the actor's tanh output)"}
