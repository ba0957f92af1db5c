"""Where the networks may run in bf16: one switch for training steps and for frame renders."""

from __future__ import annotations

import torch


def bf16_autocast(enabled: bool) -> torch.autocast:
    """bf16 autocast on CUDA when `enabled`; a disabled context otherwise (also on machines without CUDA).

    The MLPs are small and memory-bound, so bf16 halves their traffic; the fields return fp32, so densities,
    weights, compositing and losses never see bf16.
    """
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)
