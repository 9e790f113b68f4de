"""Observation and action normalisation, stored as buffers so it travels with the weights.

States: (x - mean) / std, clipped to +-10 (a sensor glitch must not blow up the network), or passed
through unchanged when the policy does not normalise them (`normalize_state=False`, the paper's way).
Actions, to and from [-1, 1] (the range of the tanh-squashed actor), in one of two parametrisations:

* absolute: robot units in [low, high] <-> [-1, 1] per joint (the paper's; right for actions that are
  not joint targets, such as OGBench's end-effector motions);
* relative (`relative_actions=True`, for arms commanded with absolute joint targets): action i of a
  chunk observed at joint positions q is  a_i = q + u_i * step * (i + 1),  clipped to [low, high],
  with `step` the largest per-step motion of each joint in the demonstrations (times a margin). A
  position-controlled arm's next target sits within a few degrees of where the joint is, so in absolute
  units a policy spends its precision on reproducing q; relative to q the unit range covers exactly the
  motions that happen, and a uniform random chunk is a local random motion instead of a jump across the
  joint range. The joints q are the first A entries of the state (chunkbot's robots put `<motor>.pos`
  there, in the action order; training checks the names).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STATE_CLIP = 10.0
MIN_STD = 1e-2  # a feature that never moved in the data (std 0) is passed through, not divided by 0
STEP_MARGIN = 1.25       # relative actions: the demonstrations' largest step sits at 0.8 in unit space
DEFAULT_STEP_FRACTION = 0.05  # relative actions with no demonstrations: 5 % of each joint's range per step


class Normalizer(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, normalize_state: bool = True,
                 relative_actions: bool = False, chunk_size: int = 1) -> None:
        super().__init__()
        self.normalize_state, self.relative_actions = normalize_state, relative_actions
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.register_buffer("state_clip", torch.tensor(STATE_CLIP if normalize_state else float("inf")))
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))
        self.register_buffer("action_step", torch.full((action_dim,), 2.0 * DEFAULT_STEP_FRACTION))
        self.register_buffer("step_count", torch.arange(1, chunk_size + 1, dtype=torch.float32)[:, None])  # (h, 1)

    @torch.no_grad()
    def fit(self, states: np.ndarray | torch.Tensor | None, action_low, action_high,
            action_step: np.ndarray | torch.Tensor | None = None) -> "Normalizer":
        """State statistics from data; action bounds from the env's Box (or the data's min/max); for
        relative actions the largest per-step joint motion of the demonstrations (`max_action_step`),
        else a default fraction of each joint's range."""
        low = torch.as_tensor(np.asarray(action_low), dtype=torch.float32)
        high = torch.as_tensor(np.asarray(action_high), dtype=torch.float32)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (high > low).all()):
            raise ValueError(f"action bounds must be finite with high > low; got low={low.tolist()}, "
                             f"high={high.tolist()}")
        if self.normalize_state and states is not None:   # None: action bounds only (before any data)
            s = torch.as_tensor(np.asarray(states), dtype=torch.float32).reshape(-1, self.state_mean.numel())
            self.state_mean.copy_(s.mean(0))
            self.state_std.copy_(s.std(0, unbiased=False).clamp_min(MIN_STD) if len(s) > 1 else torch.ones_like(s[0]))
        self.action_low.copy_(low)
        self.action_high.copy_(high)
        if action_step is None:
            step = DEFAULT_STEP_FRACTION * (high - low)
        else:
            step = STEP_MARGIN * torch.as_tensor(np.asarray(action_step), dtype=torch.float32)
            step = torch.maximum(step, 1e-3 * (high - low))   # a joint that never moved still gets a range
        self.action_step.copy_(step)
        return self

    def state(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.state_mean) / self.state_std).clamp(-self.state_clip, self.state_clip)

    def action_to_unit(self, a: torch.Tensor, joints: torch.Tensor | None = None) -> torch.Tensor:
        """Robot units -> [-1, 1]: a (B, h, A) chunks; `joints` (B, A) where they were observed (relative)."""
        if not self.relative_actions:
            return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0
        return ((a - joints[:, None]) / (self.action_step * self.step_count)).clamp(-1.0, 1.0)

    def action_from_unit(self, u: torch.Tensor, joints: torch.Tensor | None = None) -> torch.Tensor:
        """[-1, 1] -> robot units, the inverse of `action_to_unit` (clipped to the bounds when relative)."""
        if not self.relative_actions:
            return self.action_low + 0.5 * (u + 1.0) * (self.action_high - self.action_low)
        a = joints[:, None] + u * self.action_step * self.step_count
        return torch.maximum(torch.minimum(a, self.action_high), self.action_low)


def max_action_step(actions: torch.Tensor, joints: torch.Tensor) -> np.ndarray:
    """Largest per-step joint motion in demonstration chunks: max over windows and i of
    |a_i - q| / (i + 1), per joint; actions (B, h, A), joints (B, A) at each window's start."""
    steps = (actions - joints[:, None]).abs() / torch.arange(1, actions.shape[1] + 1, dtype=actions.dtype)[:, None]
    return steps.amax(dim=(0, 1)).cpu().numpy()
