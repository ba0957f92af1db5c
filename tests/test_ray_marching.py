"""The CPU marcher and packed rendering compute what nerfacc computes on CUDA."""

import math

import torch

from ernerf_ns.models import ray_marching


def test_exclusive_sum_restarts_at_each_ray():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    rays = torch.tensor([0, 0, 2, 2, 2, 3, 3, 3, 3])
    out = ray_marching.packed_exclusive_sum(values, rays, num_rays=5)
    assert out.tolist() == [0.0, 1.0, 0.0, 3.0, 7.0, 0.0, 6.0, 13.0, 21.0]


def test_exclusive_sum_keeps_precision_deep_into_a_long_packed_list():
    values = torch.full((2_000_000,), 0.3)
    rays = torch.arange(2_000_000) // 4
    out = ray_marching.packed_exclusive_sum(values, rays, num_rays=500_000)
    assert torch.allclose(out[-4:], torch.tensor([0.0, 0.3, 0.6, 0.9]), atol=1e-6)


def test_weights_match_dense_volume_rendering():
    torch.manual_seed(0)
    sigma = torch.rand(3, 5) * 4
    t = torch.linspace(0, 1, 6).expand(3, 6)
    starts, ends = t[:, :-1], t[:, 1:]
    delta = ends - starts
    alpha = 1 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones(3, 1), 1 - alpha[:, :-1]], dim=1), dim=1)
    expected = trans * alpha
    rays = torch.arange(3).repeat_interleave(5)
    weights = ray_marching.render_weights(starts.flatten(), ends.flatten(), sigma.flatten(), rays, 3)
    assert torch.allclose(weights.view(3, 5), expected, atol=1e-6)


def test_accumulate_sums_per_ray_and_leaves_missed_rays_zero():
    values = torch.tensor([[1.0], [2.0], [4.0]])
    out = ray_marching.accumulate(values, torch.tensor([0, 0, 2]), num_rays=4)
    assert out[:, 0].tolist() == [3.0, 0.0, 4.0, 0.0]


def test_aabb_intersection_of_axis_ray_and_miss():
    aabb = torch.tensor([-1.0, -1.0, -0.5, 1.0, 1.0, 0.5])
    origins = torch.tensor([[0.0, 0.0, 2.0], [5.0, 5.0, 2.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    t_min, t_max = ray_marching.ray_aabb_intersect(origins, directions, aabb)
    assert math.isclose(t_min[0].item(), 1.5) and math.isclose(t_max[0].item(), 2.5)
    assert t_min[1] > t_max[1]


def test_march_samples_only_occupied_cells_in_order():
    aabbs = torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]])
    binaries = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    binaries[0, 1:3, 1:3, 2] = True  # z in [0, 0.5)
    origins = torch.tensor([[0.1, 0.1, 3.0], [0.9, 0.9, 3.0], [0.1, 0.1, 3.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    rays, starts, ends = ray_marching.march_rays(origins, directions, binaries, aabbs, 0.0, 100.0, step_size=0.1)
    assert set(rays.tolist()) == {0}  # ray 1 passes outside the occupied cells, ray 2 points away
    mids = 3.0 - (starts + ends) / 2  # z of each sample
    assert ((mids >= 0) & (mids < 0.5)).all()
    assert torch.all(starts[1:] >= starts[:-1]) and len(rays) == 5


def test_occupancy_lookup_uses_nerfacc_cell_order():
    aabbs = torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]])
    binaries = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    binaries[0, 1, 0, 0] = True  # +x, -y, -z octant
    points = torch.tensor([[0.5, -0.5, -0.5], [-0.5, 0.5, 0.5], [2.0, -0.5, -0.5]])
    assert ray_marching.occupied(points, binaries, aabbs).tolist() == [True, False, False]
