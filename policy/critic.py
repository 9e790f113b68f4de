"""K critics in one batched forward: stacked weights, one matmul for the first layer and torch.baddbmm
for the others.

Each critic is Linear -> LayerNorm -> activation per hidden layer, then Linear -> 1 (the same
function as K separate MLPs; tests/test_policy_networks.py checks it against nn.Linear/LayerNorm
modules), initialised as the paper's critics (xavier_uniform weights, zero biases, per critic).
Target critics are a second ensemble updated by one fused `torch._foreach_lerp_`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

LAYER_NORM_EPS = 1e-6  # flax's LayerNorm default, as the paper's critics
_ACT = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh}
_ACT_INPLACE = {"silu": lambda x: F.silu(x, inplace=True), "gelu": F.gelu, "relu": torch.relu_, "tanh": torch.tanh_}


class CriticEnsemble(nn.Module):
    def __init__(self, in_dim: int, hidden_dims: list[int], num_critics: int, activation: str = "relu") -> None:
        super().__init__()
        self.num_critics, self.act, self.act_ = num_critics, _ACT[activation], _ACT_INPLACE[activation]
        dims = [in_dim, *hidden_dims, 1]
        k = num_critics
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.ln_weights = nn.ParameterList()
        self.ln_biases = nn.ParameterList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            bound = math.sqrt(6.0 / (d_in + d_out))  # xavier_uniform of each critic's (d_in, d_out) matrix
            # layer 0 is stored (in, K, out) so that x @ W0.view(in, K*out) runs all critics in one
            # matmul with no weight copy; deeper layers are (K, in, out) for baddbmm
            shape = (d_in, k, d_out) if i == 0 else (k, d_in, d_out)
            self.weights.append(nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(k, 1, d_out)))
            if i < len(hidden_dims):
                self.ln_weights.append(nn.Parameter(torch.ones(k, 1, d_out)))
                self.ln_biases.append(nn.Parameter(torch.zeros(k, 1, d_out)))

    def forward(self, x: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Q (K, B) of the input x (B, in), shared by all critics, or of [x, actions] given apart:
        the first layer then runs as x @ W_x + actions @ W_a, so a detached x costs no gradient work
        (the actor loss only needs d Q / d actions)."""
        w0 = self.weights[0]
        k, out0 = w0.shape[1], w0.shape[2]
        b0 = self.biases[0].view(1, k * out0)
        if actions is None:
            h = torch.addmm(b0, x, w0.view(w0.shape[0], k * out0))
        else:
            f = x.shape[-1]
            h = torch.addmm(torch.addmm(b0, x, w0[:f].view(f, k * out0)), actions, w0[f:].view(-1, k * out0))
        h = h.view(-1, k, out0)                                                   # (B, K, out)
        n_hidden = len(self.ln_weights)
        if n_hidden == 0:
            return h.squeeze(-1).transpose(0, 1)
        h = self._norm_act(h, self.ln_weights[0].squeeze(1), self.ln_biases[0].squeeze(1)).transpose(0, 1)
        for i in range(1, n_hidden):                                              # (K, B, out)
            h = self._norm_act(torch.baddbmm(self.biases[i], h, self.weights[i]), self.ln_weights[i],
                               self.ln_biases[i])
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]).squeeze(-1)

    def _norm_act(self, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Per-critic LayerNorm (its affine in one addcmul) and activation; in place without autograd
        (the target critics), where nothing needs the intermediate values."""
        h = F.layer_norm(h, h.shape[-1:], eps=LAYER_NORM_EPS)
        if torch.is_grad_enabled():
            return self.act(torch.addcmul(bias, h, weight))
        return self.act_(h.mul_(weight).add_(bias))


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau online, one fused call over all tensors."""
    torch._foreach_lerp_(target, online, tau)
