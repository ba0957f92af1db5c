"""torch.compile for the small per-sample networks on CUDA.

On a GPU a training step is bound by the host: each eager op of the MLPs, the region attention and their
backward is a kernel launch of a few microseconds' work (about 550 launches per step). Compiled, the chain
between two matrix products becomes one fused kernel, forward and backward. CPU tensors (tests, CI, the CPU
path) always run eagerly: the same function, op by op.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])

_COMPILED: Dict[Callable[..., Any], Callable[..., Any]] = {}


def compiled_on_cuda(method: F) -> F:
    """Run `method` (of a module with a boolean `compile_networks` attribute) through
    `torch.compile(dynamic=True)` when that attribute is set and its first tensor argument is on CUDA.

    The unbound function is compiled once and called with the module, so copies of a module (to the CPU, in
    tests) hold no compiled state; sample counts change every step, hence dynamic shapes. Called while
    another compiled function is being traced, it is traced inline into that graph.
    """

    @functools.wraps(method)
    def dispatch(module: torch.nn.Module, first: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if not (module.compile_networks and first.is_cuda) or torch.compiler.is_compiling():
            return method(module, first, *args, **kwargs)
        compiled = _COMPILED.get(method)
        if compiled is None:
            compiled = _COMPILED[method] = torch.compile(method, dynamic=True)
        return compiled(module, first, *args, **kwargs)

    return dispatch  # type: ignore[return-value]
