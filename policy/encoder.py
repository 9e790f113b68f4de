"""Observation encoder shared by actor and critic (as in LeRobot's SAC): the critic's loss trains
it, the actor's SAC term reads its features detached (the BC term also trains the cameras' encoders
with `bc_trains_encoder`, the default).

* state history s_{t-L+1..t} (B, L, D), normalised by the policy's Normalizer, flattened;
  optionally Linear+LayerNorm+tanh (LeRobot SAC's state encoder) when `state_encoder_dim` is set.
* each camera: a small CNN from scratch (DrQ-style) on uint8 images, converted to float only here,
  then Linear+LayerNorm+tanh to `latent_dim`; or (`image_encoder.backbone="resnet"`) a ResNet-10-style
  backbone, typically pretrained weights from a local file, frozen, with the same trainable head.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from policy.config import ImageEncoderConfig, QChunkSACConfig


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ augmentation: replicate-pad by `pad` pixels and crop back at a random offset (dy, dx) in
    [0, 2 pad]^2 per image. images (B, H, W, C) uint8 -> same shape and dtype.

    Replicate padding then cropping is reading row clamp(i + dy - pad) and column clamp(j + dx - pad) of
    the unpadded image, so no padded float copy is made: whole rows are picked, then columns gathered,
    all in uint8 (about 6x faster on a CPU than padding in float and indexing four ways)."""
    if pad <= 0:
        return images
    b, h, w, c = images.shape
    dev = images.device
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    rows = (dy[:, None] - pad + torch.arange(h, device=dev)[None]).clamp_(0, h - 1)     # (B, H)
    cols = (dx[:, None] - pad + torch.arange(w, device=dev)[None]).clamp_(0, w - 1)     # (B, W)
    picked_rows = images[torch.arange(b, device=dev)[:, None], rows]                     # (B, H, W, C)
    shifted = picked_rows.gather(2, cols[:, None, :, None].expand(b, h, w, c))
    # in channels-first memory, the layout the convolutions read augmented frames in before this gather: another
    # layout rounds the convolutions differently (the gather alone changed no learner's numbers)
    return shifted.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)


class ImageEncoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], cfg: ImageEncoderConfig) -> None:
        super().__init__()
        h, w, c = shape
        if cfg.pool < 1:
            raise ValueError(f"image_encoder.pool must be >= 1, got {cfg.pool}")
        self.pool = cfg.pool
        h, w = h // cfg.pool, w // cfg.pool
        layers: list[nn.Module] = []
        for i in range(cfg.num_layers):
            layers += [nn.Conv2d(c if i == 0 else cfg.channels, cfg.channels, 3, stride=2 if i == 0 else 1),
                       nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        side = (min(h, w) - 3) // 2 + 1 - 2 * (cfg.num_layers - 1)  # 3x3 convs, the first with stride 2
        if side < 1:
            raise ValueError(f"camera images of {shape[0]}x{shape[1]} (pooled by {cfg.pool}: {h}x{w}) are too small "
                             f"for {cfg.num_layers} conv layers; use larger images, a smaller image_encoder.pool "
                             "or fewer image_encoder.num_layers")
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c, h, w)).numel()
        self.head = nn.Sequential(nn.Linear(flat, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, latent)."""
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        return self.head(self.convs(x).flatten(1))


def _group_norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: the same in training and evaluation, and a frozen backbone needs no statistics
    return nn.GroupNorm(min(8, channels), channels)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convs with a residual (a strided 1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _group_norm(c_out)
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _group_norm(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


class ImageBackbone(nn.Module):
    """ResNet-10-style feature extractor: a stride-2 3x3 stem, `num_layers` stages of one basic block
    (widths channels * 2^i, stride 2 after the first), global average pooling -> (B, out_dim).
    Any image size. Its `state_dict()` saved as safetensors is what `pretrained_path` loads."""

    def __init__(self, cfg: ImageEncoderConfig, in_channels: int = 3) -> None:
        super().__init__()
        widths = [cfg.channels * 2 ** i for i in range(cfg.num_layers)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
                                  _group_norm(widths[0]), nn.ReLU())
        self.stages = nn.Sequential(*[BasicBlock(widths[max(i - 1, 0)], w, 1 if i == 0 else 2)
                                      for i, w in enumerate(widths)])
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float -> (B, out_dim)."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))


class ResNetImageEncoder(nn.Module):
    """`ImageBackbone` + the trainable Linear+LayerNorm+tanh head; the backbone frozen when configured
    (its parameters then take no gradient and the learner's optimiser leaves them out)."""

    def __init__(self, shape: tuple[int, int, int], cfg: ImageEncoderConfig) -> None:
        super().__init__()
        self.backbone = ImageBackbone(cfg, in_channels=shape[2])
        self.head = nn.Sequential(nn.Linear(self.backbone.out_dim, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim),
                                  nn.Tanh())
        self.frozen = cfg.freeze_backbone
        self.backbone.requires_grad_(not self.frozen)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, latent)."""
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.head(self.backbone(x))


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a safetensors file of an `ImageBackbone` state dict; a missing file or another architecture
    is a one-line error that says what to do."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image_encoder.pretrained_path={str(path)!r} does not exist: give a local "
                                "safetensors file of encoder weights (nothing is downloaded)")
    state = load_file(str(path))
    expected = backbone.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise ValueError(f"{path} does not fit the image_encoder backbone (channels, num_layers): missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]}, other shapes {wrong[:3]}; save the weights "
                         "of a policy.encoder.ImageBackbone built with the same image_encoder settings")
    backbone.load_state_dict(state)


def make_image_encoder(shape: tuple[int, int, int], cfg: ImageEncoderConfig) -> nn.Module:
    return ResNetImageEncoder(shape, cfg) if cfg.backbone == "resnet" else ImageEncoder(shape, cfg)


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
        self.cameras = nn.ModuleDict({c: make_image_encoder(tuple(cfg.camera_shapes[c]), cfg.image_encoder)
                                      for c in self.camera_names})
        self.pretrained_path = cfg.image_encoder.pretrained_path
        self.image_dim = len(self.camera_names) * cfg.image_encoder.latent_dim
        self.output_dim = state_out + self.image_dim

    def load_pretrained(self) -> None:
        """Load `image_encoder.pretrained_path` into every camera's backbone (a new run; a checkpoint
        carries its weights)."""
        if self.pretrained_path is None:
            return
        for cam in self.camera_names:
            encoder = self.cameras[cam]
            if not isinstance(encoder, ResNetImageEncoder):
                raise ValueError("image_encoder.pretrained_path loads a backbone: set image_encoder.backbone=resnet")
            load_backbone_weights(encoder.backbone, self.pretrained_path)

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
