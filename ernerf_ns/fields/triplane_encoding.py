"""ER-NeRF's tri-plane hash encoding: three 2D hash grids instead of one 3D grid."""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.fields import hash_grid_triton
from ernerf_ns.fields.hash_grid import HashGrid2D

PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (0, 2))
"""Coordinates each plane sees, in ER-NeRF's concatenation order: xy, yz, xz."""


class TriPlaneHashEncoding(nn.Module):
    """Project a 3D point onto the xy, yz and xz planes and concatenate their hash-grid features.

    ER-NeRF factorises the head volume this way: three 2D tables collide far less than one 3D table of
    the same size, which matters for the fine detail of a face.

    Args:
        num_levels: levels per plane.
        features_per_level: features per level.
        log2_hashmap_size: log2 of the largest table per level.
        base_resolution: coarsest resolution.
        bound: positions are expected in [-bound, bound]^3; the finest resolution is 512 * bound.
        implementation: "tcnn", "triton" or "torch" (see `HashGrid2D`); with Triton the three planes are
            encoded in one fused launch.
    """

    def __init__(
        self,
        num_levels: int = 12,
        features_per_level: int = 1,
        log2_hashmap_size: int = 14,
        base_resolution: int = 64,
        bound: float = 1.0,
        implementation: Literal["tcnn", "triton", "torch"] = "tcnn",
    ) -> None:
        super().__init__()
        self.bound = bound
        self.planes = nn.ModuleList(
            HashGrid2D(
                num_levels=num_levels,
                features_per_level=features_per_level,
                log2_hashmap_size=log2_hashmap_size,
                base_resolution=base_resolution,
                max_resolution=512 * bound,
                implementation=implementation,
            )
            for _ in PLANE_AXES
        )

    @property
    def use_compile(self) -> bool:
        """With implementation "torch" on CUDA, whether the planes' lookups run under torch.compile."""
        return all(plane.use_compile for plane in self.planes)

    @use_compile.setter
    def use_compile(self, flag: bool) -> None:
        for plane in self.planes:
            plane.use_compile = flag

    @property
    def n_output_dims(self) -> int:
        return sum(plane.n_output_dims for plane in self.planes)

    def forward(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs output_dim"]:
        """Encode positions in [-bound, bound]^3 (mapped to [0, 1]^3 first, as ER-NeRF does)."""
        unit = (positions + self.bound) / (2 * self.bound)
        first = self.planes[0]
        if first.backend(unit) == "triton":
            features = hash_grid_triton.encode_planes(
                unit.reshape(-1, 3),
                [plane.params for plane in self.planes],
                first._kernel_scales,
                first._kernel_levels,
                first.features_per_level,
            )
            return features.reshape(*positions.shape[:-1], self.n_output_dims)
        features = [plane(unit[..., list(axes)]) for plane, axes in zip(self.planes, PLANE_AXES, strict=True)]
        return torch.cat(features, dim=-1)
