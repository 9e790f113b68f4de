"""Actors: observation features -> (mean, log_std) of a tanh-Gaussian over the flattened chunk
(B, h*A), in the normalised action space [-1, 1].

* `MLPChunkActor`: the paper's actor (an MLP on the encoded observation).
* `ACTChunkActor`: ACT-style (the seed's `use_act_actor`): a transformer encoder over the
  observation history (one token per time step, plus one per camera) and h learned chunk queries
  decoded against it; each query emits one action's mean and log_std.
"""

from __future__ import annotations

import torch
from torch import nn

from policy.config import QChunkSACConfig

ACTIVATION = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def linear(in_dim: int, out_dim: int) -> nn.Linear:
    """A dense layer initialised as the paper's networks (flax Dense with xavier_uniform, zero bias)."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: list[int], activation: str, layer_norm: bool = False) -> nn.Sequential:
    """Linear -> [LayerNorm] -> activation per hidden layer (activate_final, as the paper's MLP)."""
    layers: list[nn.Module] = []
    for out in hidden:
        layers += [linear(in_dim, out), *([nn.LayerNorm(out)] if layer_norm else []), ACTIVATION[activation]()]
        in_dim = out
    return nn.Sequential(*layers)


class MLPChunkActor(nn.Module):
    """The paper's actor: MLP trunk, then separate mean and log-std heads; log-std clipped to its range."""

    def __init__(self, cfg: QChunkSACConfig, feature_dim: int) -> None:
        super().__init__()
        self.out_dim = cfg.chunk_size * cfg.action_dim
        self.log_std_range = (cfg.log_std_min, cfg.log_std_max)
        self.trunk = mlp(feature_dim, cfg.actor_hidden_dims, cfg.activation, cfg.actor_layer_norm)
        self.mean = linear(cfg.actor_hidden_dims[-1], self.out_dim)
        self.log_std = linear(cfg.actor_hidden_dims[-1], self.out_dim)

    def forward(self, features: torch.Tensor, state_history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(features)
        return self.mean(x), self.log_std(x).clamp(*self.log_std_range)


class ACTChunkActor(nn.Module):
    def __init__(self, cfg: QChunkSACConfig, image_dim: int) -> None:
        super().__init__()
        a = cfg.act
        self.h, self.action_dim, self.image_dim = cfg.chunk_size, cfg.action_dim, image_dim
        self.log_std_range = (cfg.log_std_min, cfg.log_std_max)
        self.state_in = nn.Linear(cfg.state_dim, a.d_model)
        self.image_in = nn.Linear(image_dim, a.d_model) if image_dim else None
        n_tokens = cfg.obs_history_length + (1 if image_dim else 0)
        self.token_pos = nn.Parameter(torch.randn(n_tokens, a.d_model) * 0.02)
        self.chunk_queries = nn.Parameter(torch.randn(self.h, a.d_model) * 0.02)
        layer = dict(d_model=a.d_model, nhead=a.num_heads, dim_feedforward=a.dim_feedforward, dropout=a.dropout,
                     batch_first=True, norm_first=True)
        self.obs_encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), a.num_encoder_layers,
                                                 norm=nn.LayerNorm(a.d_model), enable_nested_tensor=False)
        self.chunk_decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), a.num_decoder_layers,
                                                   norm=nn.LayerNorm(a.d_model))
        self.head = nn.Linear(a.d_model, 2 * cfg.action_dim)
        nn.init.uniform_(self.head.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor, state_history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state_history (B, L, D) normalised; the image features are the last `image_dim` of `features`."""
        tokens = self.state_in(state_history)
        if self.image_in is not None:
            tokens = torch.cat([tokens, self.image_in(features[:, -self.image_dim:]).unsqueeze(1)], 1)
        tokens = tokens + self.token_pos
        queries = self.chunk_queries.expand(tokens.shape[0], -1, -1)
        out = self.head(self.chunk_decoder(queries, self.obs_encoder(tokens)))  # (B, h, 2A)
        mean, log_std = out.chunk(2, -1)
        return mean.flatten(1), log_std.clamp(*self.log_std_range).flatten(1)


def make_actor(cfg: QChunkSACConfig, feature_dim: int, image_dim: int) -> nn.Module:
    return ACTChunkActor(cfg, image_dim) if cfg.use_act_actor else MLPChunkActor(cfg, feature_dim)
