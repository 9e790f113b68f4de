"""Observation and action normalisation, stored as buffers so it travels with the weights.

States: (x - mean) / std, clipped to +-10 (a sensor glitch must not blow up the network), or passed
through unchanged when the policy does not normalise them (`normalize_state=False`, the paper's way).
Actions: robot units in [low, high] <-> [-1, 1], the range of the tanh-squashed actor.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STATE_CLIP = 10.0
MIN_STD = 1e-2  # a feature that never moved in the data (std 0) is passed through, not divided by 0


class Normalizer(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, normalize_state: bool = True) -> None:
        super().__init__()
        self.normalize_state = normalize_state
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.register_buffer("state_clip", torch.tensor(STATE_CLIP if normalize_state else float("inf")))
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))

    @torch.no_grad()
    def fit(self, states: np.ndarray | torch.Tensor, action_low, action_high) -> "Normalizer":
        """State statistics from data; action bounds from the env's Box (or the data's min/max)."""
        s = torch.as_tensor(np.asarray(states), dtype=torch.float32).reshape(-1, self.state_mean.numel())
        low = torch.as_tensor(np.asarray(action_low), dtype=torch.float32)
        high = torch.as_tensor(np.asarray(action_high), dtype=torch.float32)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (high > low).all()):
            raise ValueError(f"action bounds must be finite with high > low; got low={low.tolist()}, "
                             f"high={high.tolist()}")
        if self.normalize_state:
            self.state_mean.copy_(s.mean(0))
            self.state_std.copy_(s.std(0, unbiased=False).clamp_min(MIN_STD) if len(s) > 1 else torch.ones_like(s[0]))
        self.action_low.copy_(low)
        self.action_high.copy_(high)
        return self

    def state(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.state_mean) / self.state_std).clamp(-self.state_clip, self.state_clip)

    def action_to_unit(self, a: torch.Tensor) -> torch.Tensor:
        """Robot units -> [-1, 1] (per joint)."""
        return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0

    def action_from_unit(self, u: torch.Tensor) -> torch.Tensor:
        return self.action_low + 0.5 * (u + 1.0) * (self.action_high - self.action_low)
