"""Tanh-squashed diagonal Gaussian over a flattened action chunk.

u ~ N(mean, diag(std^2)) in R^{h*A}, a = tanh(u) in (-1, 1)^{h*A}. The chunk's joint log-prob is
the sum over all h*A dimensions (Q-chunking's `log pi(a_{t:t+h} | s_t)`), with the change of
variables  log pi(a) = log N(u) - sum log(1 - tanh(u)^2)  and the stable form
log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
# data actions on the bounds would give atanh(+-1) = inf; the paper clips them to 1 - 1e-5 for the BC term
_ATANH_EDGE = 1.0 - 1e-5


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """sum_i log(1 - tanh(u_i)^2) over the last dim."""
    return (2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)


def sample_tanh_gaussian(mean: torch.Tensor, log_std: torch.Tensor,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised sample and its joint log-prob: (a (..., d), log pi(a) (...,))."""
    eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
    return tanh_gaussian_from_noise(mean, log_std, eps)


def tanh_gaussian_from_noise(mean: torch.Tensor, log_std: torch.Tensor,
                             eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sample a = tanh(mean + std * eps) of given standard-normal noise, and log pi(a)."""
    u = mean + log_std.exp() * eps
    # log N(u; mean, std) written with eps = (u - mean) / std, exact and cheaper
    log_normal = (-0.5 * eps.square() - log_std).sum(-1) - 0.5 * _LOG_2PI * mean.shape[-1]
    return torch.tanh(u), log_normal - tanh_log_det(u)


def tanh_gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Joint log-prob of given squashed actions (e.g. demonstration chunks for the BC term)."""
    u = torch.atanh(action.clamp(-_ATANH_EDGE, _ATANH_EDGE))
    z = (u - mean) * torch.exp(-log_std)
    log_normal = (-0.5 * z.square() - log_std).sum(-1) - 0.5 * _LOG_2PI * mean.shape[-1]
    return log_normal - tanh_log_det(u)
