"""The networks of a training step replayed as CUDA graphs (torch.compile "reduce-overhead").

On a GPU a training step is bound by the host: every eager op of the MLPs, the region attention and the audio
encoder, and of their backward, is a kernel launch of a few microseconds' work, and every matrix product or
convolution pays cuBLAS's or cuDNN's host heuristics. Replaying a captured graph launches all of them at once.
A graph is captured per input shape: the audio encoder's is the same every step, the head field pads its
samples to `bucket_rows` sizes first (a few dozen shapes over a whole run). Inference
(the viewer, renders, occupancy updates) and CPU tensors always run eagerly: the same function, op by op.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, TypeVar

import torch
from nerfstudio.utils.rich_utils import CONSOLE
from torch import nn

F = TypeVar("F", bound=Callable[..., Any])

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


def graphs_on(module: nn.Module, first: torch.Tensor) -> bool:
    """`use_graphs` for a module with a boolean `graph_networks` attribute, in training mode."""
    return use_graphs(module.graph_networks and module.training, first)


def graphed_while_training(method: F) -> F:
    """Run `method` (of a module with a `graph_networks` attribute) through `graphed` when `graphs_on` holds
    for its first tensor argument, else eagerly. The unbound function is compiled, once."""

    @functools.wraps(method)
    def dispatch(module: nn.Module, first: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if graphs_on(module, first):
            return graphed(method)(module, first, *args, **kwargs)
        return method(module, first, *args, **kwargs)

    return dispatch  # type: ignore[return-value]


def mark_step() -> None:
    """Tell CUDA-graph trees a new training step begins, so the previous step's graph outputs may be reused."""
    if _GRAPHED:
        torch.compiler.cudagraph_mark_step_begin()
