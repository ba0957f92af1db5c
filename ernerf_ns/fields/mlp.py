"""The bias-free MLP that every ER-NeRF network uses."""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


class MLP(nn.Module):
    """Linear layers without biases, ReLU between them and nothing after the last (ER-NeRF's `MLP`).

    ER-NeRF drops the biases everywhere; its tiny networks rely on the hash features and codes instead.

    Args:
        in_dim: input width.
        out_dim: output width.
        hidden_dim: width of every hidden layer.
        num_layers: number of linear layers (1 means a single linear map).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        widths = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, x: Float[Tensor, "*bs in_dim"]) -> Float[Tensor, "*bs out_dim"]:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
