"""Occupancy-grid marching and packed volume rendering: nerfacc's CUDA kernels, or the same quantities in
plain PyTorch (the CPU path, and the reference the kernels are tested against).

Samples are "packed": one flat list over all rays, sorted by ray, with `ray_indices` naming each sample's
ray. `sample` and `weights` pick the implementation; the rest is the PyTorch twin of nerfacc's kernels.
"""

from __future__ import annotations

from typing import Tuple

import nerfacc
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor


def ray_aabb_intersect(
    origins: Float[Tensor, "num_rays 3"], directions: Float[Tensor, "num_rays 3"], aabb: Float[Tensor, "6"]
) -> Tuple[Float[Tensor, " num_rays"], Float[Tensor, " num_rays"]]:
    """Entry and exit distances of each ray through the box; t_min > t_max where a ray misses it."""
    safe = torch.where(directions.abs() < 1e-10, torch.full_like(directions, 1e-10), directions)
    t0 = (aabb[:3] - origins) / safe
    t1 = (aabb[3:] - origins) / safe
    t_min = torch.minimum(t0, t1).amax(dim=-1)
    t_max = torch.maximum(t0, t1).amin(dim=-1)
    return t_min, t_max


def occupied(
    points: Float[Tensor, "num_points 3"],
    binaries: Bool[Tensor, "levels res res res"],
    aabbs: Float[Tensor, "levels 6"],
) -> Bool[Tensor, " num_points"]:
    """Look points up in nerfacc's cascaded occupancy grid (finest level that contains each point)."""
    levels, *res = binaries.shape
    resolution = torch.tensor(res, device=points.device)
    result = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    found = torch.zeros_like(result)
    for level in range(levels):
        lo, hi = aabbs[level, :3], aabbs[level, 3:]
        unit = (points - lo) / (hi - lo)
        inside = ((unit >= 0) & (unit < 1)).all(dim=-1) & ~found
        cell = (unit * resolution).long().clamp(min=0)
        cell = torch.minimum(cell, resolution - 1)
        hit = binaries[level, cell[:, 0], cell[:, 1], cell[:, 2]]
        result = torch.where(inside, hit, result)
        found |= inside
    return result


@torch.no_grad()
def march_rays(
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    binaries: Bool[Tensor, "levels res res res"],
    aabbs: Float[Tensor, "levels 6"],
    near_plane: float,
    far_plane: float,
    step_size: float,
    cone_angle: float = 0.0,
) -> Tuple[Int[Tensor, " num_samples"], Float[Tensor, " num_samples"], Float[Tensor, " num_samples"]]:
    """Uniform steps (growing as t·cone_angle past step_size) through the outermost grid box.

    A step is kept when the grid marks its midpoint occupied, as nerfacc's `traverse_grids` does.
    Returns ray_indices (sorted), t_starts, t_ends.
    """
    t_min, t_max = ray_aabb_intersect(origins, directions, aabbs[-1])
    t = t_min.clamp(min=near_plane)
    t_end = t_max.clamp(max=far_plane)
    active = torch.nonzero(t < t_end).squeeze(-1)
    t = t[active]
    kept_rays, kept_starts, kept_ends = [], [], []
    while active.numel() > 0:
        dt = (t * cone_angle).clamp(min=step_size)
        mid = t + 0.5 * dt
        points = origins[active] + directions[active] * mid[:, None]
        keep = occupied(points, binaries, aabbs) & (mid < t_end[active])
        kept_rays.append(active[keep])
        kept_starts.append(t[keep])
        kept_ends.append((t + dt)[keep])
        t = t + dt
        going = t < t_end[active]
        active, t = active[going], t[going]
    if not kept_rays:
        empty = origins.new_zeros(0)
        return torch.zeros(0, dtype=torch.long, device=origins.device), empty, empty
    rays = torch.cat(kept_rays)
    order = torch.argsort(rays, stable=True)
    return rays[order], torch.cat(kept_starts)[order], torch.cat(kept_ends)[order]


def packed_exclusive_sum(
    values: Float[Tensor, " num_samples"], ray_indices: Int[Tensor, " num_samples"], num_rays: int
):
    """Sum of the earlier samples of the same ray, for each sample (samples sorted by ray).

    The running sum is taken in float64 so that long packed lists keep float32 precision per ray.
    """
    total = torch.cumsum(values.double(), dim=0)
    counts = torch.bincount(ray_indices, minlength=num_rays)
    first = torch.cumsum(counts, dim=0) - counts
    start_offset = torch.cat([total.new_zeros(1), total])[first][ray_indices]
    return (total - values.double() - start_offset).to(values.dtype)


def render_weights(
    t_starts: Float[Tensor, " num_samples"],
    t_ends: Float[Tensor, " num_samples"],
    densities: Float[Tensor, " num_samples"],
    ray_indices: Int[Tensor, " num_samples"],
    num_rays: int,
) -> Float[Tensor, " num_samples"]:
    """Volume-rendering weights T_i·(1 − exp(−σ_i δ_i)) of packed samples."""
    sigma_dt = densities * (t_ends - t_starts)
    transmittance = torch.exp(-packed_exclusive_sum(sigma_dt, ray_indices, num_rays))
    return transmittance * (1.0 - torch.exp(-sigma_dt))


def accumulate(
    values: Float[Tensor, "num_samples channels"], ray_indices: Int[Tensor, " num_samples"], num_rays: int
) -> Float[Tensor, "num_rays channels"]:
    """Per-ray sum of packed sample values (already multiplied by their weights)."""
    out = values.new_zeros(num_rays, values.shape[-1])
    return out.index_add(0, ray_indices, values)


def sample(
    grid: nerfacc.OccGridEstimator,
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    near_plane: float,
    far_plane: float,
    step_size: float,
    cone_angle: float,
    use_nerfacc: bool = True,
) -> Tuple[Int[Tensor, " num_samples"], Float[Tensor, " num_samples"], Float[Tensor, " num_samples"]]:
    """Packed samples in the grid's occupied cells: nerfacc's kernel for CUDA rays when `use_nerfacc`, else
    `march_rays` (same steps, same cells). Returns ray_indices (sorted), t_starts, t_ends."""
    if use_nerfacc and origins.is_cuda:
        return grid.sampling(
            origins,
            directions,
            near_plane=near_plane,
            far_plane=far_plane,
            render_step_size=step_size,
            cone_angle=cone_angle,
        )
    return march_rays(
        origins,
        directions,
        grid.binaries,
        grid.aabbs,
        near_plane=near_plane,
        far_plane=far_plane,
        step_size=step_size,
        cone_angle=cone_angle,
    )


def weights(
    t_starts: Float[Tensor, " num_samples"],
    t_ends: Float[Tensor, " num_samples"],
    densities: Float[Tensor, " num_samples"],
    ray_indices: Int[Tensor, " num_samples"],
    num_rays: int,
    use_nerfacc: bool = True,
) -> Float[Tensor, " num_samples"]:
    """Volume-rendering weights of packed samples: nerfacc's kernel for CUDA tensors when `use_nerfacc`, else
    `render_weights`."""
    if use_nerfacc and densities.is_cuda:
        packed = {"ray_indices": ray_indices, "n_rays": num_rays}
        return nerfacc.render_weight_from_density(t_starts, t_ends, densities, **packed)[0]
    return render_weights(t_starts, t_ends, densities, ray_indices, num_rays)
