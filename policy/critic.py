"""K critics in one batched forward: stacked weights (K, in, out), torch.baddbmm per layer.

Each critic is Linear -> LayerNorm -> activation per hidden layer, then Linear -> 1 (the same
function as K separate MLPs; `tests/test_policy_critic.py` checks it against nn.Linear/LayerNorm
modules). Target critics are a second ensemble updated by one fused `torch._foreach_lerp_`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

_ACT = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh}


class CriticEnsemble(nn.Module):
    def __init__(self, in_dim: int, hidden_dims: list[int], num_critics: int, activation: str = "silu") -> None:
        super().__init__()
        self.num_critics, self.act = num_critics, _ACT[activation]
        dims = [in_dim, *hidden_dims, 1]
        k = num_critics
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.ln_weights = nn.ParameterList()
        self.ln_biases = nn.ParameterList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init, per critic
            self.weights.append(nn.Parameter(torch.empty(k, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(k, 1, d_out).uniform_(-bound, bound)))
            if i < len(hidden_dims):
                self.ln_weights.append(nn.Parameter(torch.ones(k, 1, d_out)))
                self.ln_biases.append(nn.Parameter(torch.zeros(k, 1, d_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in) shared by all critics -> Q (K, B)."""
        w0, b0 = self.weights[0], self.biases[0]
        # first layer: one matmul for all critics, x @ [W_1 | ... | W_K]
        h = (x @ w0.permute(1, 0, 2).reshape(w0.shape[1], -1)).view(x.shape[0], self.num_critics, -1)
        h = h.transpose(0, 1) + b0
        n_hidden = len(self.ln_weights)
        for i in range(n_hidden):
            if i > 0:
                h = torch.baddbmm(self.biases[i], h, self.weights[i])
            h = self.act(F.layer_norm(h, h.shape[-1:]) * self.ln_weights[i] + self.ln_biases[i])
        if n_hidden == 0:
            return h.squeeze(-1)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]).squeeze(-1)


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau online, one fused call over all tensors."""
    torch._foreach_lerp_(target, online, tau)
