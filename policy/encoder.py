"""Observation encoder shared by actor and critic (as in LeRobot's SAC): the critic's loss trains
it, the actor reads its features detached.

* state history s_{t-L+1..t} (B, L, D), normalised by the policy's Normalizer, flattened;
  optionally Linear+LayerNorm+tanh (LeRobot SAC's state encoder) when `state_encoder_dim` is set.
* each camera: a small CNN from scratch (DrQ-style) on uint8 images, converted to float only here,
  then Linear+LayerNorm+tanh to `latent_dim`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from policy.config import ImageEncoderConfig, QChunkSACConfig


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ augmentation: replicate-pad by `pad` pixels and crop back at a random offset per image.
    images (B, H, W, C) uint8 -> same shape and dtype."""
    if pad <= 0:
        return images
    b, h, w, _ = images.shape
    x = F.pad(images.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=images.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None])          # (B, H)
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None])          # (B, W)
    dev = images.device
    x = x[torch.arange(b, device=dev)[:, None, None, None], torch.arange(x.shape[1], device=dev)[None, :, None, None],
          rows[:, None, :, None], cols[:, None, None, :]]
    return x.permute(0, 2, 3, 1).to(images.dtype)


class ImageEncoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], cfg: ImageEncoderConfig) -> None:
        super().__init__()
        h, w, c = shape
        layers: list[nn.Module] = []
        for i in range(cfg.num_layers):
            layers += [nn.Conv2d(c if i == 0 else cfg.channels, cfg.channels, 3, stride=2 if i == 0 else 1),
                       nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        side = (min(h, w) - 3) // 2 + 1 - 2 * (cfg.num_layers - 1)  # 3x3 convs, the first with stride 2
        if side < 1:
            raise ValueError(f"camera images of {h}x{w} are too small for {cfg.num_layers} conv layers; "
                             "use larger images or fewer image_encoder.num_layers")
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c, h, w)).numel()
        self.head = nn.Sequential(nn.Linear(flat, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, latent)."""
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.head(self.convs(x).flatten(1))


class ObservationEncoder(nn.Module):
    def __init__(self, cfg: QChunkSACConfig) -> None:
        super().__init__()
        self.camera_names = sorted(cfg.camera_shapes) if cfg.use_images else []
        flat_state = cfg.state_dim * cfg.obs_history_length
        if cfg.state_encoder_dim:
            self.state_net = nn.Sequential(nn.Linear(flat_state, cfg.state_encoder_dim),
                                           nn.LayerNorm(cfg.state_encoder_dim), nn.Tanh())
            state_out = cfg.state_encoder_dim
        else:
            self.state_net = nn.Identity()
            state_out = flat_state
        self.cameras = nn.ModuleDict({c: ImageEncoder(tuple(cfg.camera_shapes[c]), cfg.image_encoder)
                                      for c in self.camera_names})
        self.image_dim = len(self.camera_names) * cfg.image_encoder.latent_dim
        self.output_dim = state_out + self.image_dim

    def image_features(self, images: list[torch.Tensor]) -> torch.Tensor | None:
        if not self.camera_names:
            return None
        return torch.cat([self.cameras[c](x) for c, x in zip(self.camera_names, images)], -1)

    def forward(self, state: torch.Tensor, images: list[torch.Tensor]) -> torch.Tensor:
        """state (B, L, D) normalised, images [(B, H, W, 3) uint8 per camera, sorted by name] -> (B, F)."""
        parts = [self.state_net(state.flatten(1))]
        img = self.image_features(images)
        if img is not None:
            parts.append(img)
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)
