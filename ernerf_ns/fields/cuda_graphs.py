"""The networks of a training step replayed as CUDA graphs (torch.compile "reduce-overhead").

On a GPU a training step is bound by the host: every eager op of the MLPs, the region attention and the audio
encoder, and of their backward, is a kernel launch of a few microseconds' work, and every matrix product or
convolution pays cuBLAS's or cuDNN's host heuristics. Replaying a captured graph launches all of them at once.
A graph is captured per input shape: the audio encoder's is the same every step, the head field pads its
samples to `bucket_rows` sizes first (a few dozen shapes over a whole run). Inference
(the viewer, renders, occupancy updates) and CPU tensors always run eagerly: the same function, op by op.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import torch
from nerfstudio.utils.rich_utils import CONSOLE

_GRAPHED: Dict[Callable[..., Any], Callable[..., Any]] = {}


def graphed(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` under `torch.compile(mode="reduce-overhead", dynamic=True)`, compiled once per function.

    One dynamic-shape compilation serves every bucket size; CUDA-graph trees record one graph per size
    and share one memory pool among them."""
    compiled = _GRAPHED.get(function)
    if compiled is None:
        # The compilation runs at the first call, right after this: say why the first step stalls.
        CONSOLE.print(f"graph_networks: compiling {function.__qualname__} for CUDA graphs (once; tens of seconds)")
        compiled = _GRAPHED[function] = torch.compile(function, mode="reduce-overhead", dynamic=True)
    return compiled


def use_graphs(enabled: bool, first: torch.Tensor) -> bool:
    """Whether a call with `first` as its first tensor takes the graphed path: enabled (callers add that their
    module is in training mode: nerfstudio's evaluation batches keep gradients on), on CUDA, with gradients,
    and not already inside a graph being traced."""
    return enabled and first.is_cuda and torch.is_grad_enabled() and not torch.compiler.is_compiling()


def mark_step() -> None:
    """Tell CUDA-graph trees a new training step begins, so the previous step's graph outputs may be reused."""
    if _GRAPHED:
        torch.compiler.cudagraph_mark_step_begin()
