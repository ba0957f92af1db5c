"""The fused Triton hash-grid kernels compute what the PyTorch lookup computes: values, table gradients and
coordinate gradients, on ER-NeRF's tri-plane and torso grids.

On a CPU the kernels run under Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET), on the GPU
machine as compiled CUDA kernels.
"""

from __future__ import annotations

import pytest
import torch

from ernerf_ns.fields import hash_grid_triton
from ernerf_ns.fields.hash_grid import HashGrid2D
from ernerf_ns.fields.triplane_encoding import TriPlaneHashEncoding

pytestmark = pytest.mark.skipif(not hash_grid_triton.TRITON_EXISTS, reason="Triton is not installed")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Tables far from their 1e-4 init, so a wrong index or weight shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for grid in module.modules():
            if isinstance(grid, HashGrid2D):
                grid.params.uniform_(-1, 1)
    return module.to(DEVICE)


def triton_triplane(encoding: TriPlaneHashEncoding, positions: torch.Tensor) -> torch.Tensor:
    first = encoding.planes[0]
    unit = (positions + encoding.bound) / (2 * encoding.bound)
    tables = [plane.params for plane in encoding.planes]
    return hash_grid_triton.encode_planes(unit, tables, first._kernel_scales, first._kernel_levels, 1)


def test_triplane_kernel_equals_the_pytorch_lookup_at_ernerf_sizes():
    """12 dense and hashed levels per plane, points inside and a little outside the head box."""
    encoding = randomised(TriPlaneHashEncoding(implementation="torch"))
    positions = (torch.rand(3000, 3, device=DEVICE) * 2.2 - 1.1).contiguous()
    reference = encoding(positions)
    weights = torch.randn_like(reference)
    (reference * weights).sum().backward()
    reference_grads = [plane.params.grad.clone() for plane in encoding.planes]
    encoding.zero_grad()

    fused = triton_triplane(encoding, positions)
    (fused * weights).sum().backward()

    assert fused.shape == (3000, 36)
    assert torch.allclose(fused, reference, atol=1e-5), float((fused - reference).abs().max())
    for plane, expected in zip(encoding.planes, reference_grads, strict=True):
        assert torch.allclose(plane.params.grad, expected, atol=1e-4), float((plane.params.grad - expected).abs().max())


def test_torso_grid_kernel_gives_coordinate_gradients_for_the_deformation_net():
    """ER-NeRF's torso grid (16 levels × 2 features, 2^16): values, table and coordinate gradients."""
    grid = randomised(HashGrid2D(num_levels=16, features_per_level=2, log2_hashmap_size=16, base_resolution=16,
                                 max_resolution=2048, implementation="torch"))  # fmt: skip
    points = torch.rand(2000, 2, device=DEVICE, requires_grad=True)
    reference = grid(points)
    weights = torch.randn_like(reference)
    (reference * weights).sum().backward()
    expected_table, expected_points = grid.params.grad.clone(), points.grad.clone()
    grid.zero_grad()
    points.grad = None

    fused = hash_grid_triton.encode_planes(points, [grid.params], grid._kernel_scales, grid._kernel_levels, 2)
    (fused * weights).sum().backward()

    assert torch.allclose(fused, reference, atol=1e-5)
    assert torch.allclose(grid.params.grad, expected_table, atol=1e-4)
    # Coordinate gradients scale with the finest resolution (2048): compare relative to their size.
    gap = (points.grad - expected_points).abs().max() / expected_points.abs().max()
    assert gap < 1e-5, float(gap)


def test_kernel_handles_an_empty_batch():
    """Rays that all miss the head give no samples; the encoding must still return [0, 36]."""
    encoding = randomised(TriPlaneHashEncoding(implementation="torch"))
    empty = torch.zeros(0, 3, device=DEVICE, requires_grad=True)
    out = triton_triplane(encoding, empty)
    out.sum().backward()
    assert out.shape == (0, 36)


def test_cpu_inputs_take_the_pytorch_lookup_whatever_the_setting():
    """Checkpoints trained with the kernel render on CPU machines: same table, PyTorch path."""
    grid = HashGrid2D(num_levels=2, base_resolution=8, max_resolution=16, implementation="triton")
    assert grid.backend(torch.zeros(1, 2)) == "torch"
    assert "_kernel_levels" not in grid.state_dict()
