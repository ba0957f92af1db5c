"""ER-NeRF's optimiser and learning-rate schedule as Nerfstudio configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple, Type

import torch
from nerfstudio.engine.optimizers import OptimizerConfig
from nerfstudio.engine.schedulers import Scheduler, SchedulerConfig
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


@dataclass
class AdamWOptimizerConfig(OptimizerConfig):
    """AdamW with configurable betas; ER-NeRF uses betas (0, 0.99), eps 1e-8.

    β1 = 0 lets each step's gradient count fully for hash entries that are touched only now and then.
    """

    _target: Type = field(default_factory=lambda: torch.optim.AdamW)
    betas: Tuple[float, float] = (0.0, 0.99)
    """Adam moment decay rates."""
    weight_decay: float = 0.0
    """Decoupled weight decay (ER-NeRF leaves AdamW's 1e-2 on the grids and 0 on the networks)."""
    fused: Optional[bool] = True
    """One fused kernel for the whole update instead of a launch per tensor and operation (None: torch's
    default). The step is launch-bound on a GPU: most of the model's tensors are small."""


@dataclass
class PiecewiseGeometricSchedulerConfig(SchedulerConfig):
    """Rate multiplier through (step, ratio) milestones, geometric between them, held outside them.

    One run holds ER-NeRF's three stages, each with its own decay: the head groups decay to 0.5× over the
    head stage and on to 0.05× over the lips fine-tune, the torso groups to 0.5× over the torso stage.
    """

    _target: Type = field(default_factory=lambda: PiecewiseGeometricScheduler)
    milestones: Tuple[Tuple[int, float], ...] = ((0, 1.0), (100_000, 0.5))
    """(step, multiplier) pairs with increasing steps; before the first the first multiplier holds."""


def piecewise_geometric(milestones: Tuple[Tuple[int, float], ...], step: int) -> float:
    """The multiplier at `step`: log-linear between the milestones around it."""
    if step <= milestones[0][0]:
        return float(milestones[0][1])
    for (s0, r0), (s1, r1) in zip(milestones[:-1], milestones[1:], strict=True):
        if step <= s1:
            if s1 == s0:
                return float(r1)
            return float(r0) * (float(r1) / float(r0)) ** ((step - s0) / (s1 - s0))
    return float(milestones[-1][1])


class PiecewiseGeometricScheduler(Scheduler):
    """Python-float rates: nerfstudio's numpy-valued schedulers leave numpy scalars in checkpoints, which
    torch >= 2.6 refuses to load by default (`ns-viewer`, `ns-eval`, `ns-render` would fail)."""

    config: PiecewiseGeometricSchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> LRScheduler:
        milestones = tuple((int(s), float(r)) for s, r in self.config.milestones)
        steps = [s for s, _ in milestones]
        if steps != sorted(steps) or any(r <= 0 for _, r in milestones):
            raise ValueError(f"milestones need increasing steps and positive multipliers, got {milestones}")
        return LambdaLR(optimizer, lambda step: piecewise_geometric(milestones, step))
