"""2D multiresolution hash grid with tiny-cuda-nn's exact layout and hashing, plus a pure-PyTorch path.

The parameter table is laid out exactly as tiny-cuda-nn's "HashGrid" encoding lays it out (one flat
vector, levels one after the other, `features_per_level` values per entry), and the PyTorch path
reads it with the same indices and weights. So a table trained with tinycudann on a GPU renders the
same with the PyTorch path on a CPU (up to fp16 rounding), and checkpoints move freely between them.

What is mirrored from tiny-cuda-nn (include/tiny-cuda-nn/common_device.h: `grid_scale`,
`grid_resolution`, `pos_fract`, `coherent_prime_hash`, `grid_index`; encodings/grid.h: the
constructor's per-level parameter count):

- scale of level l: ``2**(l * log2(per_level_scale)) * base_resolution - 1`` in float32;
- resolution: ``ceil(scale) + 1`` vertices per side;
- position: ``x * scale + 0.5``; corner ``floor(pos)`` and ``+1``; bilinear weights in ``frac(pos)``;
- entries per level: ``min(next_multiple(resolution**2, 8), 2**log2_hashmap_size)``;
- index: ``i + j * resolution`` when ``resolution**2`` fits the level's table, else the "coherent
  prime" hash ``(i * 1) ^ (j * 2654435761)`` in uint32 arithmetic; then modulo the table size.
  Dense levels wrap at the far edge (corner ``i = resolution`` reads the next row), as in tcnn.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from nerfstudio.utils.external import TCNN_EXISTS, tcnn
from torch import Tensor, nn

from ernerf_ns.fields import hash_grid_triton
from ernerf_ns.fields.compact_tables import fits_half, pack_half, unpack_half
from ernerf_ns.fields.tcnn_hashing import HASH_PRIME_Y, MAX_DENSE_RESOLUTION_2D, UINT32_MASK


def per_level_scale(base_resolution: float, max_resolution: float, num_levels: int) -> float:
    """Growth factor b between levels so that level L-1 reaches `max_resolution` (instant-ngp's formula)."""
    if num_levels <= 1:
        return 1.0
    return math.exp((math.log(max_resolution) - math.log(base_resolution)) / (num_levels - 1))


def level_scales(num_levels: int, base_resolution: int, growth: float) -> list[float]:
    """Per-level `scale` computed in float32 like tcnn's `grid_scale`, so `ceil` lands on the same side."""
    log2_growth = np.log2(np.float32(growth))
    levels = np.arange(num_levels, dtype=np.float32)
    scales = np.exp2(levels * log2_growth) * np.float32(base_resolution) - np.float32(1.0)
    return [float(s) for s in scales.astype(np.float32)]


def level_resolution(scale: float) -> int:
    """Vertices per side of a level (tcnn's `grid_resolution`)."""
    return int(math.ceil(scale)) + 1


def level_table_size(resolution: int, log2_hashmap_size: int) -> int:
    """Entries of a level: the dense grid rounded up to 8 (aligned access), capped at the hash table size."""
    dense = -(-(resolution * resolution) // 8) * 8
    return min(dense, 1 << log2_hashmap_size)


def _mul_uint32(a: Int[Tensor, "*bs"], c: int | Int[Tensor, "*bs"]) -> Int[Tensor, "*bs"]:
    """(a * c) mod 2**32 for 0 <= a, c < 2**32 without overflowing int64: split c into 16-bit halves."""
    low = a * (c & 0xFFFF)
    high = (a * (c >> 16)) & 0xFFFF
    return (low + (high << 16)) & UINT32_MASK


def coherent_prime_hash(corners: Int[Tensor, "*bs 2"]) -> Int[Tensor, "*bs"]:
    """tcnn's default spatial hash for 2D integer vertices, as a uint32 value held in int64."""
    i = corners[..., 0] & UINT32_MASK
    j = corners[..., 1] & UINT32_MASK
    return i ^ _mul_uint32(j, HASH_PRIME_Y)


def grid_index(
    corners: Int[Tensor, "*bs 2"],
    resolution: int | Int[Tensor, "*bs"],
    table_size: int | Int[Tensor, "*bs"],
) -> Int[Tensor, "*bs"]:
    """Entry of a level's table that a grid vertex reads (tcnn's `grid_index`).

    Args:
        corners: integer vertex coordinates (i along input dim 0, j along dim 1); negative values are
            read as tcnn reads them, as uint32.
        resolution: vertices per side of the level.
        table_size: entries in the level's table.
    """
    resolution = torch.as_tensor(resolution, device=corners.device)
    table_size = torch.as_tensor(table_size, device=corners.device)
    i = corners[..., 0] & UINT32_MASK
    j = corners[..., 1] & UINT32_MASK
    dense = (i + j * resolution) & UINT32_MASK
    hashed = (resolution > MAX_DENSE_RESOLUTION_2D) | (table_size < resolution * resolution)
    index = torch.where(hashed, coherent_prime_hash(corners), dense)
    return index % table_size


def level_indices_and_weights(
    x: Float[Tensor, "*bs 2"],
    scales: Float[Tensor, " num_levels"],
    resolutions: Int[Tensor, " num_levels"],
    table_sizes: Int[Tensor, " num_levels"],
) -> tuple[Int[Tensor, "*bs num_levels 4"], Float[Tensor, "*bs num_levels 4"]]:
    """Table entries (within each level) and bilinear weights of the 4 cell corners, for all levels at once.

    Corner k has offset (k & 1, k >> 1), the order tcnn loops over them.
    """
    pos = x[..., None, :] * scales[:, None] + 0.5
    cell = torch.floor(pos)
    frac = pos - cell
    corner_id = torch.arange(4, device=x.device)
    offsets = torch.stack([corner_id & 1, corner_id >> 1], dim=-1)
    corners = cell.long()[..., None, :] + offsets
    index = grid_index(corners, resolutions[:, None], table_sizes[:, None])
    weights = torch.where(offsets.bool(), frac[..., None, :], 1.0 - frac[..., None, :]).prod(dim=-1)
    return index, weights


def grid_lookup(
    params: Float[Tensor, " num_params"],
    x: Float[Tensor, "*bs 2"],
    scales: Float[Tensor, " num_levels"],
    resolutions: Int[Tensor, " num_levels"],
    table_sizes: Int[Tensor, " num_levels"],
    offsets: Int[Tensor, " num_levels"],
    features_per_level: int,
) -> Float[Tensor, "*bs num_levels features_per_level"]:
    """Bilinearly interpolated features of every level, read from the flat parameter table."""
    index, weights = level_indices_and_weights(x.float(), scales, resolutions, table_sizes)
    index = index + offsets[:, None]
    table = params.view(-1, features_per_level)
    values = table.index_select(0, index.reshape(-1)).view(*index.shape, features_per_level)
    return (values * weights[..., None]).sum(dim=-2)


_COMPILED: dict[str, Any] = {}


def _compiled_grid_lookup() -> Any:
    """`grid_lookup` under torch.compile (dynamic sample counts); `benchmarks/hash_grid_speed.py` times it
    against the eager lookup and the fused Triton kernel."""
    if "lookup" not in _COMPILED:
        _COMPILED["lookup"] = torch.compile(grid_lookup, dynamic=True)
    return _COMPILED["lookup"]


class HashGrid2D(nn.Module):
    """Multiresolution hash grid over [0, 1]^2, the building block of ER-NeRF's tri-plane.

    Args:
        num_levels: number of resolutions.
        features_per_level: features stored per table entry.
        log2_hashmap_size: log2 of the largest table per level.
        base_resolution: vertices per side of the coarsest level (plus one, tcnn's convention).
        max_resolution: resolution of the finest level.
        implementation: where CUDA inputs go: "tcnn" to tinycudann when it is importable, else to our fused
            Triton kernel; "triton" to the Triton kernel; "torch" to the PyTorch lookup. CPU inputs always
            take the PyTorch lookup, which is the reference the other two are tested against.
        init_scale: tables start uniform in [-init_scale, init_scale] (tcnn's and ER-NeRF's 1e-4).
    """

    def __init__(
        self,
        num_levels: int = 12,
        features_per_level: int = 1,
        log2_hashmap_size: int = 14,
        base_resolution: int = 64,
        max_resolution: float = 512,
        implementation: Literal["tcnn", "triton", "torch"] = "tcnn",
        init_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        if features_per_level not in (1, 2, 4, 8):
            raise ValueError(f"features_per_level must be 1, 2, 4 or 8 (tcnn's choices), got {features_per_level}")
        self.num_levels = num_levels
        self.features_per_level = features_per_level
        self.log2_hashmap_size = log2_hashmap_size
        self.base_resolution = base_resolution
        self.max_resolution = max_resolution
        self.implementation = implementation
        self.growth = per_level_scale(base_resolution, max_resolution, num_levels)

        scales = level_scales(num_levels, base_resolution, self.growth)
        self.level_resolutions = tuple(level_resolution(s) for s in scales)
        self.level_table_sizes = tuple(level_table_size(r, log2_hashmap_size) for r in self.level_resolutions)
        self.level_offsets = tuple(int(o) for o in np.cumsum((0,) + self.level_table_sizes[:-1]))
        self.num_entries = sum(self.level_table_sizes)

        self.register_buffer("_scales", torch.tensor(scales, dtype=torch.float32), persistent=False)
        self.register_buffer("_resolutions", torch.tensor(self.level_resolutions), persistent=False)
        self.register_buffer("_table_sizes", torch.tensor(self.level_table_sizes), persistent=False)
        self.register_buffer("_offsets", torch.tensor(self.level_offsets), persistent=False)
        kernel_scales, kernel_levels = hash_grid_triton.level_table(
            scales, self.level_resolutions, self.level_table_sizes, self.level_offsets
        )
        self.register_buffer("_kernel_scales", kernel_scales, persistent=False)
        self.register_buffer("_kernel_levels", kernel_levels, persistent=False)

        self.params = nn.Parameter(torch.empty(self.num_entries * features_per_level).uniform_(-init_scale, init_scale))
        # tcnn modules are built lazily per CUDA device and read `self.params`; kept out of the module tree
        # so the state dict holds the table once.
        self._tcnn_encodings: dict[torch.device, Any] = {}
        self.use_compile = True
        """On CUDA, run the PyTorch lookup (implementation "torch") under torch.compile."""

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Checkpoints hold the table in float16, compressed (`compact_tables`): the tables are most of a
        model's weights.

        Training and rendering keep float32; loading casts back. float16's 11-bit significand moves a trained
        entry by at most 2^-11 of itself, and a table that float16 cannot hold stays float32."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        table = destination[prefix + "params"]
        if not keep_vars and fits_half(table):
            destination[prefix + "params"] = pack_half(table)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Loads the compressed layout, and the plain float16 and float32 layouts of earlier checkpoints."""
        table = state_dict.get(prefix + "params")
        if table is not None and table.dtype == torch.uint8:
            try:
                table = unpack_half(table, self.params.numel()).to(self.params.device)
            except ValueError as err:  # reported as load_state_dict reports a wrong shape (a RuntimeError)
                args[-1].append(f"{prefix}params: {err}")  # error_msgs
                del state_dict[prefix + "params"]
                table = None
        if table is not None and table.dtype != self.params.dtype:  # also right for load_state_dict(assign=True)
            table = table.to(self.params.dtype)
        if table is not None:
            state_dict[prefix + "params"] = table
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def n_output_dims(self) -> int:
        return self.num_levels * self.features_per_level

    def tcnn_encoding_config(self) -> dict:
        return {
            "otype": "HashGrid",
            "n_levels": self.num_levels,
            "n_features_per_level": self.features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.growth,
        }

    def level_table(self, level: int) -> Float[Tensor, "entries features"]:
        """View of one level's entries in the flat table."""
        start = self.level_offsets[level] * self.features_per_level
        size = self.level_table_sizes[level] * self.features_per_level
        return self.params[start : start + size].view(-1, self.features_per_level)

    def pytorch_fwd(self, x: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs output_dim"]:
        lookup = _compiled_grid_lookup() if (x.is_cuda and self.use_compile) else grid_lookup
        features = lookup(
            self.params, x, self._scales, self._resolutions, self._table_sizes, self._offsets, self.features_per_level
        )
        return features.reshape(*x.shape[:-1], self.n_output_dims)

    def _tcnn_encoding(self, device: torch.device) -> Any:
        encoding = self._tcnn_encodings.get(device)
        if encoding is None:
            with torch.cuda.device(device):
                encoding = tcnn.Encoding(n_input_dims=2, encoding_config=self.tcnn_encoding_config())
            if encoding.params.numel() != self.params.numel():
                raise RuntimeError(
                    f"tinycudann's HashGrid holds {encoding.params.numel()} parameters, ours {self.params.numel()}: "
                    "the table layout no longer matches tiny-cuda-nn's"
                )
            self._tcnn_encodings[device] = encoding
        if encoding.params is not self.params:
            encoding.params = self.params
        return encoding

    def tcnn_fwd(self, x: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs output_dim"]:
        flat = x.reshape(-1, 2)
        if flat.shape[0] == 0:
            return x.new_zeros(*x.shape[:-1], self.n_output_dims, dtype=torch.float32)
        out = self._tcnn_encoding(x.device)(flat)
        return out.float().reshape(*x.shape[:-1], self.n_output_dims)

    def backend(self, x: Tensor) -> Literal["tcnn", "triton", "torch"]:
        """Which implementation encodes `x` (see `implementation`)."""
        if not x.is_cuda or self.implementation == "torch":
            return "torch"
        if self.implementation == "tcnn" and TCNN_EXISTS:
            return "tcnn"
        return "triton" if hash_grid_triton.TRITON_EXISTS else "torch"

    def triton_fwd(self, x: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs output_dim"]:
        features = hash_grid_triton.encode_planes(
            x.reshape(-1, 2), [self.params], self._kernel_scales, self._kernel_levels, self.features_per_level
        )
        return features.reshape(*x.shape[:-1], self.n_output_dims)

    def forward(self, x: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs output_dim"]:
        """Encode points of [0, 1]^2 (outside it the grid wraps or hashes, as in tcnn; nothing is clamped)."""
        backend = self.backend(x)
        if backend == "tcnn":
            return self.tcnn_fwd(x)
        if backend == "triton":
            return self.triton_fwd(x)
        return self.pytorch_fwd(x)
