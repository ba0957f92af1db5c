"""ER-NeRF's optimiser: AdamW with β1 = 0 (every step's gradient counts fully for sparse hash entries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple, Type

import torch
from nerfstudio.engine.optimizers import OptimizerConfig


@dataclass
class AdamWOptimizerConfig(OptimizerConfig):
    """AdamW with configurable betas; ER-NeRF uses betas (0, 0.99), eps 1e-8."""

    _target: Type = field(default_factory=lambda: torch.optim.AdamW)
    betas: Tuple[float, float] = (0.0, 0.99)
    """Adam moment decay rates."""
    weight_decay: float = 0.0
    """Decoupled weight decay (ER-NeRF leaves AdamW's 1e-2 on the grids and 0 on the networks)."""
