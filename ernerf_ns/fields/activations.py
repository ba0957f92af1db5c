"""The density activation: exp forward, a gradient bounded as in instant-ngp (nerfstudio's `trunc_exp`)."""

from __future__ import annotations

import torch
from torch import Tensor

EXP_GRADIENT_BOUND = 15.0
"""The backward uses exp(clamp(x, ±15)): large raw densities early in training would otherwise overflow it."""


class _TruncExp(torch.autograd.Function):
    """nerfstudio's `trunc_exp` without its autocast decorators, which torch.compile cannot trace through:
    callers pass float32 (the head field casts the density logit first)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(-EXP_GRADIENT_BOUND, EXP_GRADIENT_BOUND))


def trunc_exp(x: Tensor) -> Tensor:
    """exp(x), with the gradient of exp(clamp(x, -15, 15))."""
    return _TruncExp.apply(x)
