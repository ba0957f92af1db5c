"""Fused Triton kernels for the hash-grid contract of `hash_grid.py` (CUDA without tinycudann).

One launch encodes every plane and every level of a point (ER-NeRF's three tri-plane grids at once, or the
torso's single grid), with the same level scales, resolutions, table sizes, dense/hashed indexing and
parameter layout as `HashGrid2D`, so a table trained here renders identically on the PyTorch path.

Why a kernel: eager PyTorch materialises indices and weights for 4 corners × levels × planes per point
(hundreds of bytes each), and its backward is an `index_add` over the same; here both live in registers.
The backward scatters into the tables with relaxed fp32 atomics, as tiny-cuda-nn does; the optional
gradient with respect to the coordinates (the torso's deformation net needs it) is written per point.

Triton ships with CUDA builds of torch, so this needs no compiler on the user's machine. Kernels also run
on CPU tensors under Triton's interpreter (`TRITON_INTERPRET=1`), which is how the CPU tests check them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ernerf_ns.fields.tcnn_hashing import HASH_PRIME_Y, MAX_DENSE_RESOLUTION_2D

try:
    import triton
    import triton.language as tl

    TRITON_EXISTS = True
except ImportError:  # CPU-only torch builds ship without Triton
    TRITON_EXISTS = False

BLOCK_POINTS = 256
"""Points per Triton program."""


def level_table(
    scales: Sequence[float], resolutions: Sequence[int], table_sizes: Sequence[int], offsets: Sequence[int]
) -> tuple[Float[Tensor, " num_levels"], Int[Tensor, "4 num_levels"]]:
    """Per-level constants the kernels read: float32 scales, and int32 rows (resolution, table size, entry
    offset, hashed flag). `hashed` is tcnn's rule (as `hash_grid.grid_index`): too big for a dense stride, or a table
    smaller than the dense grid."""
    hashed = [int(r > MAX_DENSE_RESOLUTION_2D or s < r * r) for r, s in zip(resolutions, table_sizes, strict=True)]
    ints = torch.tensor([list(resolutions), list(table_sizes), list(offsets), hashed], dtype=torch.int32)
    return torch.tensor(list(scales), dtype=torch.float32), ints


if TRITON_EXISTS:
    _PRIME_Y = tl.constexpr(HASH_PRIME_Y)  # Triton kernels read only constexpr globals

    @triton.jit
    def _corner_entry(i, j, resolution, table_size, hashed):
        """Entry index of vertex (i, j) as uint32, exactly `hash_grid.grid_index`."""
        dense = i + j * resolution
        hashed_index = i ^ (j * _PRIME_Y)
        return tl.where(hashed, hashed_index, dense) % table_size

    @triton.jit
    def _level_corners(u, v, levels_ptr, scales_ptr, level, num_levels, FEATURES: tl.constexpr):
        """Flat-table offsets of the cell's corners (0, 0), (1, 0), (0, 1), (1, 1), the bilinear fractions and
        the level's scale (the position's derivative)."""
        scale = tl.load(scales_ptr + level)
        resolution = tl.load(levels_ptr + level).to(tl.uint32)
        table_size = tl.load(levels_ptr + num_levels + level).to(tl.uint32)
        offset = tl.load(levels_ptr + 2 * num_levels + level)
        hashed = tl.load(levels_ptr + 3 * num_levels + level) != 0
        pos_u = u * scale + 0.5
        pos_v = v * scale + 0.5
        cell_u = tl.floor(pos_u)
        cell_v = tl.floor(pos_v)
        i = cell_u.to(tl.int32).to(tl.uint32, bitcast=True)
        j = cell_v.to(tl.int32).to(tl.uint32, bitcast=True)
        e00 = (_corner_entry(i, j, resolution, table_size, hashed).to(tl.int32) + offset) * FEATURES
        e10 = (_corner_entry(i + 1, j, resolution, table_size, hashed).to(tl.int32) + offset) * FEATURES
        e01 = (_corner_entry(i, j + 1, resolution, table_size, hashed).to(tl.int32) + offset) * FEATURES
        e11 = (_corner_entry(i + 1, j + 1, resolution, table_size, hashed).to(tl.int32) + offset) * FEATURES
        return e00, e10, e01, e11, pos_u - cell_u, pos_v - cell_v, scale

    @triton.jit
    def _block_coords(coords_ptr, num_points, COORD_DIM: tl.constexpr, BLOCK: tl.constexpr):
        """This program's point rows, their mask and coordinates (c2 repeats c0 for 2D inputs)."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = rows < num_points
        c0 = tl.load(coords_ptr + rows * COORD_DIM, mask=mask, other=0.0)
        c1 = tl.load(coords_ptr + rows * COORD_DIM + 1, mask=mask, other=0.0)
        c2 = c0
        if COORD_DIM == 3:
            c2 = tl.load(coords_ptr + rows * COORD_DIM + 2, mask=mask, other=0.0)
        return rows, mask, c0, c1, c2

    @triton.jit
    def _plane_coords(c0, c1, c2, plane: tl.constexpr):
        """ER-NeRF's plane order: xy, yz, xz (`triplane_encoding.PLANE_AXES`)."""
        if plane == 0:
            return c0, c1
        elif plane == 1:
            return c1, c2
        else:
            return c0, c2

    @triton.jit
    def _plane_table(table0_ptr, table1_ptr, table2_ptr, plane: tl.constexpr):
        if plane == 0:
            return table0_ptr
        elif plane == 1:
            return table1_ptr
        else:
            return table2_ptr

    # Sizes and strides change every step (sample counts): specialising on them (divisible by 16, equal to 1)
    # would compile new variants mid-training.
    @triton.jit(do_not_specialize=["num_points", "out_stride_point", "out_stride_feature"])
    def _encode_forward_kernel(
        coords_ptr,
        table0_ptr,
        table1_ptr,
        table2_ptr,
        out_ptr,
        scales_ptr,
        levels_ptr,
        num_points,
        out_stride_point,
        out_stride_feature,
        COORD_DIM: tl.constexpr,
        NUM_PLANES: tl.constexpr,
        NUM_LEVELS: tl.constexpr,
        FEATURES: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        rows, mask, c0, c1, c2 = _block_coords(coords_ptr, num_points, COORD_DIM, BLOCK)
        out_rows = out_ptr + rows * out_stride_point
        for plane in tl.static_range(NUM_PLANES):
            u, v = _plane_coords(c0, c1, c2, plane)
            table = _plane_table(table0_ptr, table1_ptr, table2_ptr, plane)
            for level in tl.static_range(NUM_LEVELS):
                e00, e10, e01, e11, fu, fv, _ = _level_corners(
                    u, v, levels_ptr, scales_ptr, level, NUM_LEVELS, FEATURES
                )
                w00 = (1 - fu) * (1 - fv)
                w10 = fu * (1 - fv)
                w01 = (1 - fu) * fv
                w11 = fu * fv
                for f in tl.static_range(FEATURES):
                    value = (
                        w00 * tl.load(table + e00 + f, mask=mask, other=0.0).to(tl.float32)
                        + w10 * tl.load(table + e10 + f, mask=mask, other=0.0).to(tl.float32)
                        + w01 * tl.load(table + e01 + f, mask=mask, other=0.0).to(tl.float32)
                        + w11 * tl.load(table + e11 + f, mask=mask, other=0.0).to(tl.float32)
                    )
                    column = (plane * NUM_LEVELS + level) * FEATURES + f
                    tl.store(out_rows + column * out_stride_feature, value, mask=mask)

    @triton.jit(do_not_specialize=["num_points", "grad_stride_point", "grad_stride_feature"])
    def _encode_backward_kernel(
        coords_ptr,
        table0_ptr,
        table1_ptr,
        table2_ptr,
        grad_out_ptr,
        grad0_ptr,
        grad1_ptr,
        grad2_ptr,
        grad_coords_ptr,
        scales_ptr,
        levels_ptr,
        num_points,
        grad_stride_point,
        grad_stride_feature,
        COORD_DIM: tl.constexpr,
        NUM_PLANES: tl.constexpr,
        NUM_LEVELS: tl.constexpr,
        FEATURES: tl.constexpr,
        TABLE_GRAD: tl.constexpr,
        COORD_GRAD: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        rows, mask, c0, c1, c2 = _block_coords(coords_ptr, num_points, COORD_DIM, BLOCK)
        d0 = tl.zeros([BLOCK], dtype=tl.float32)
        d1 = tl.zeros([BLOCK], dtype=tl.float32)
        d2 = tl.zeros([BLOCK], dtype=tl.float32)
        grad_rows = grad_out_ptr + rows * grad_stride_point
        for plane in tl.static_range(NUM_PLANES):
            u, v = _plane_coords(c0, c1, c2, plane)
            table = _plane_table(table0_ptr, table1_ptr, table2_ptr, plane)
            grad_table = _plane_table(grad0_ptr, grad1_ptr, grad2_ptr, plane)
            du = tl.zeros([BLOCK], dtype=tl.float32)
            dv = tl.zeros([BLOCK], dtype=tl.float32)
            for level in tl.static_range(NUM_LEVELS):
                e00, e10, e01, e11, fu, fv, scale = _level_corners(
                    u, v, levels_ptr, scales_ptr, level, NUM_LEVELS, FEATURES
                )
                for f in tl.static_range(FEATURES):
                    column = (plane * NUM_LEVELS + level) * FEATURES + f
                    g = tl.load(grad_rows + column * grad_stride_feature, mask=mask, other=0.0).to(tl.float32)
                    if TABLE_GRAD:
                        tl.atomic_add(grad_table + e00 + f, (1 - fu) * (1 - fv) * g, mask=mask, sem="relaxed")
                        tl.atomic_add(grad_table + e10 + f, fu * (1 - fv) * g, mask=mask, sem="relaxed")
                        tl.atomic_add(grad_table + e01 + f, (1 - fu) * fv * g, mask=mask, sem="relaxed")
                        tl.atomic_add(grad_table + e11 + f, fu * fv * g, mask=mask, sem="relaxed")
                    if COORD_GRAD:
                        v00 = tl.load(table + e00 + f, mask=mask, other=0.0).to(tl.float32)
                        v10 = tl.load(table + e10 + f, mask=mask, other=0.0).to(tl.float32)
                        v01 = tl.load(table + e01 + f, mask=mask, other=0.0).to(tl.float32)
                        v11 = tl.load(table + e11 + f, mask=mask, other=0.0).to(tl.float32)
                        du += g * scale * ((v10 - v00) * (1 - fv) + (v11 - v01) * fv)
                        dv += g * scale * ((v01 - v00) * (1 - fu) + (v11 - v10) * fu)
            if COORD_GRAD:
                if plane == 0:
                    d0 += du
                    d1 += dv
                elif plane == 1:
                    d1 += du
                    d2 += dv
                else:
                    d0 += du
                    d2 += dv
        if COORD_GRAD:
            tl.store(grad_coords_ptr + rows * COORD_DIM, d0, mask=mask)
            tl.store(grad_coords_ptr + rows * COORD_DIM + 1, d1, mask=mask)
            if COORD_DIM == 3:
                tl.store(grad_coords_ptr + rows * COORD_DIM + 2, d2, mask=mask)


def _grid(num_points: int) -> tuple[int]:
    return (max(1, -(-num_points // BLOCK_POINTS)),)


class _PlanesEncoding(torch.autograd.Function):
    """Autograd wrapper: coords [N, D] and one flat table per plane → features [N, planes·levels·features]."""

    @staticmethod
    def forward(ctx, coords: Tensor, scales: Tensor, levels: Tensor, features: int, *tables: Tensor) -> Tensor:
        coords = coords.float().contiguous()
        num_points, coord_dim = coords.shape
        num_planes, num_levels = len(tables), scales.shape[0]
        out_dim = num_planes * num_levels * features
        # Feature-major storage: each column is written by consecutive points (coalesced); the caller sees
        # the usual [N, out_dim] through a transposed view.
        out = torch.empty(out_dim, num_points, device=coords.device, dtype=torch.float32)
        padded = tuple(tables) + (tables[0],) * (3 - num_planes)
        if num_points > 0:
            _encode_forward_kernel[_grid(num_points)](
                coords, *padded, out, scales, levels, num_points, 1, num_points,
                COORD_DIM=coord_dim, NUM_PLANES=num_planes, NUM_LEVELS=num_levels, FEATURES=features,
                BLOCK=BLOCK_POINTS,
            )  # fmt: skip
        ctx.save_for_backward(coords, scales, levels, *tables)
        ctx.features = features
        return out.t()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        coords, scales, levels, *tables = ctx.saved_tensors
        num_points, coord_dim = coords.shape
        num_planes = len(tables)
        table_grad = any(ctx.needs_input_grad[4:])
        coord_grad = ctx.needs_input_grad[0]
        grads = [torch.zeros_like(t, dtype=torch.float32) for t in tables] if table_grad else []
        grad_coords = torch.zeros_like(coords) if coord_grad else None
        if num_points > 0 and (table_grad or coord_grad):
            grad_out = grad_out.float()
            padded = tuple(tables) + (tables[0],) * (3 - num_planes)
            padded_grads = tuple(grads) + (coords,) * (3 - len(grads))  # unused pointers when no table grad
            _encode_backward_kernel[_grid(num_points)](
                coords, *padded, grad_out, *padded_grads,
                grad_coords if grad_coords is not None else coords,
                scales, levels, num_points, grad_out.stride(0), grad_out.stride(1),
                COORD_DIM=coord_dim, NUM_PLANES=num_planes, NUM_LEVELS=scales.shape[0], FEATURES=ctx.features,
                TABLE_GRAD=table_grad, COORD_GRAD=coord_grad, BLOCK=BLOCK_POINTS,
            )  # fmt: skip
        table_grads = [g.to(t.dtype) for g, t in zip(grads, tables, strict=True)] if table_grad else [None] * num_planes
        return (grad_coords, None, None, None, *table_grads)


def encode_planes(
    coords: Float[Tensor, "num_points coord_dim"],
    tables: Sequence[Float[Tensor, " num_params"]],
    scales: Float[Tensor, " num_levels"],
    levels: Int[Tensor, "4 num_levels"],
    features_per_level: int,
) -> Float[Tensor, "num_points out_dim"]:
    """Hash-grid features of 2D planes in one launch.

    Args:
        coords: points in [0, 1]; with 2 columns there is one plane (xy), with 3 and three tables the
            tri-plane's xy, yz, xz.
        tables: one flat parameter table per plane (`HashGrid2D.params`), all with the same level layout.
        scales, levels: from `level_table`, on the coords' device.
        features_per_level: features stored per table entry.

    Returns:
        Features ordered plane, level, feature, as concatenating the planes' `HashGrid2D` outputs gives.
    """
    if not TRITON_EXISTS:
        raise RuntimeError("Triton is not installed (it ships with CUDA builds of torch)")
    if not 1 <= len(tables) <= 3 or (len(tables) > 1 and coords.shape[-1] != 3):
        raise ValueError(f"need 1 table with 2D coords or up to 3 with 3D coords, got {len(tables)} tables")
    return _PlanesEncoding.apply(coords, scales, levels, features_per_level, *tables)
