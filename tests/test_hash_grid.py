"""The PyTorch hash grid against tiny-cuda-nn's semantics, computed independently here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ernerf_ns.fields.hash_grid import HashGrid2D, coherent_prime_hash, grid_index
from ernerf_ns.fields.triplane_encoding import TriPlaneHashEncoding

MASK = 0xFFFFFFFF
PRIME = 2654435761


def tcnn_hash(i: int, j: int, table_size: int) -> int:
    """tcnn's coherent prime hash in Python's unbounded ints, reduced like uint32."""
    return ((i & MASK) ^ (((j & MASK) * PRIME) & MASK)) % table_size


def small_grid() -> HashGrid2D:
    """Two dense levels: scale 7 (8x8 vertices, 64 entries) and scale 31 (32x32, exactly the 2^10 table)."""
    grid = HashGrid2D(
        num_levels=2,
        features_per_level=2,
        log2_hashmap_size=10,
        base_resolution=8,
        max_resolution=32,
        implementation="torch",
    )
    with torch.no_grad():
        grid.params.normal_()
    return grid


def test_ernerf_level_sizes():
    grid = HashGrid2D()
    assert grid.growth == pytest.approx(8 ** (1 / 11))
    assert grid.level_resolutions[:5] == (64, 78, 94, 113, 137)
    assert grid.level_resolutions[-1] in (512, 513)  # ceil(511 +- float32 rounding) + 1
    # Dense levels round r^2 up to a multiple of 8; from level 4 on r^2 > 2^14 and the table is hashed.
    assert grid.level_table_sizes == (4096, 6088, 8840, 12776) + (16384,) * 8
    assert grid.params.numel() == 4096 + 6088 + 8840 + 12776 + 8 * 16384
    assert grid.n_output_dims == 12
    assert TriPlaneHashEncoding().n_output_dims == 36
    config = grid.tcnn_encoding_config()
    assert config["otype"] == "HashGrid" and config["n_levels"] == 12 and config["log2_hashmap_size"] == 14
    assert config["base_resolution"] == 64 and config["per_level_scale"] == pytest.approx(1.2080, abs=1e-4)


def test_init_range():
    grid = HashGrid2D(num_levels=2, base_resolution=8, max_resolution=16, log2_hashmap_size=8, init_scale=1e-4)
    assert grid.params.abs().max() <= 1e-4
    assert grid.params.std() > 1e-5


@pytest.mark.parametrize("level", [0, 1])
def test_dense_level_is_bilinear_interpolation(level):
    grid = small_grid()
    scale = 8 * 4**level - 1  # base * b^l - 1 with b = 32 / 8 over one step
    resolution = scale + 1
    features = grid.features_per_level
    # tcnn samples vertex k at x = (k - 0.5) / scale; stay inside the last full cell so no corner wraps.
    x = torch.rand(200, 2, generator=torch.Generator().manual_seed(level)) * (resolution - 1.6) / scale
    out = grid(x)[:, level * features : (level + 1) * features]

    table = grid.level_table(level)[: resolution * resolution]
    image = table.view(resolution, resolution, features).permute(2, 0, 1)[None]  # entry i + j*r is pixel (row j, col i)
    pixel = x.double() * scale + 0.5
    sample_at = (2 * pixel / (resolution - 1) - 1).float()
    expected = F.grid_sample(image, sample_at[None, :, None, :], mode="bilinear", align_corners=True)
    expected = expected[0, :, :, 0].T
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_dense_level_wraps_at_far_edge_like_tcnn():
    resolution, table_size = 64, 4096
    corners = torch.tensor([[resolution, 5], [3, 7]])
    index = grid_index(corners, resolution, table_size)
    assert index.tolist() == [6 * resolution, 3 + 7 * resolution]


def test_coherent_prime_hash_matches_uint32_formula():
    g = torch.Generator().manual_seed(0)
    corners = torch.cat(
        [
            torch.randint(0, 600, (50, 2), generator=g),
            torch.randint(-5, 0, (10, 2), generator=g),  # negative cells read as uint32, as tcnn's cast does
            torch.tensor([[MASK, MASK], [2**31, 2**32 - 7], [0, 1], [1, 0]]),
        ]
    )
    got = coherent_prime_hash(corners)
    expected = [(i & MASK) ^ (((j & MASK) * PRIME) & MASK) for i, j in corners.tolist()]
    assert got.tolist() == expected
    assert grid_index(corners, 513, 16384).tolist() == [tcnn_hash(i, j, 16384) for i, j in corners.tolist()]


def test_colliding_vertices_read_the_same_entry():
    grid = HashGrid2D(implementation="torch")
    level = 11
    table_size = grid.level_table_sizes[level]
    resolution = grid.level_resolutions[level]
    assert resolution**2 > table_size
    seen: dict[int, tuple[int, int]] = {}
    collision = None
    for j in range(1, resolution - 1):
        for i in range(1, resolution - 1):
            h = tcnn_hash(i, j, table_size)
            if h in seen:
                collision = (seen[h], (i, j), h)
                break
            seen[h] = (i, j)
        if collision:
            break
    assert collision is not None
    first, second, expected_index = collision

    with torch.no_grad():
        grid.params.normal_()
    scale = float(grid._scales[level])
    vertices = torch.tensor([first, second], dtype=torch.float64)
    x = ((vertices - 0.5) / scale).float()  # lands on the vertex up to float32 rounding
    out = grid(x)[:, level]
    entry = grid.level_table(level)[expected_index, 0]
    torch.testing.assert_close(out, entry.expand(2), atol=2e-3, rtol=0)


def test_output_is_continuous_across_cell_boundaries():
    grid = HashGrid2D(implementation="torch")
    with torch.no_grad():
        grid.params.normal_()
    eps = 1e-6
    for level, scale in enumerate(grid._scales.tolist()):
        k = math.floor(0.37 * scale)
        boundary = (k - 0.5) / scale
        for dim in (0, 1):
            left = torch.full((1, 2), 0.61)
            right = left.clone()
            left[0, dim] = boundary - eps
            right[0, dim] = boundary + eps
            jump = (grid(left) - grid(right)).abs().max().item()
            assert jump < 2e-2, f"level {level} dim {dim}: jump {jump}"


def test_gradients_reach_the_table():
    grid = small_grid()
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(3))
    grid(x).sum().backward()
    grad = grid.params.grad
    assert grad is not None
    # Bilinear weights sum to 1 per point, level and feature.
    assert grad.sum().item() == pytest.approx(32 * grid.num_levels * grid.features_per_level, rel=1e-5)
    assert 0 < int((grad != 0).sum()) <= 32 * 4 * grid.num_levels * grid.features_per_level


def test_batch_shapes_and_dtype():
    grid = small_grid()
    x = torch.rand(3, 5, 2, dtype=torch.float64)
    out = grid(x)
    assert out.shape == (3, 5, grid.n_output_dims) and out.dtype == torch.float32
    torch.testing.assert_close(out.reshape(15, -1), grid(x.reshape(15, 2)))
    assert grid(torch.zeros(0, 2)).shape == (0, grid.n_output_dims)


def test_triplane_concatenates_xy_yz_xz():
    encoding = TriPlaneHashEncoding(
        num_levels=3, base_resolution=4, log2_hashmap_size=6, bound=2.0, implementation="torch"
    )
    for plane in encoding.planes:
        assert plane.max_resolution == 1024
        with torch.no_grad():
            plane.params.normal_()
    positions = (torch.rand(2, 7, 3) * 2 - 1) * 2.0
    out = encoding(positions)
    assert out.shape == (2, 7, 9)
    unit = (positions + 2.0) / 4.0
    for k, axes in enumerate([[0, 1], [1, 2], [0, 2]]):
        torch.testing.assert_close(out[..., 3 * k : 3 * k + 3], encoding.planes[k](unit[..., axes]))
