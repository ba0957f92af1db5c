"""Padding the per-sample networks' rows to repeating sizes changes no output or gradient."""

import pytest
import torch

from ernerf_ns.fields.head_field import ERNeRFHeadField
from ernerf_ns.fields.row_buckets import bucket_rows


def test_bucket_sizes_cover_the_count_with_at_most_a_sixteenth_more():
    for count in [1, 255, 256, 257, 1000, 65_537, 1_234_567, 3_000_001]:
        size = bucket_rows(count)
        assert count <= size <= count + count / 16
    nearby = {bucket_rows(count) for count in range(1_200_000, 1_260_000, 7)}
    assert len(nearby) <= 2  # counts that drift by a few percent share one or two sizes


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
def test_padded_field_outputs_and_gradients_equal_unpadded(device):
    """On CUDA the field takes the fused Triton hash kernel, whose atomics meet the padding's zero gradients."""
    torch.manual_seed(0)
    field = ERNeRFHeadField(num_frames=3, implementation="triton").to(device)
    with torch.no_grad():
        for p in field.encoding.parameters():
            p.normal_(0, 0.3)
    count, rays = 1000, 90  # 1000 rows pad to 1024
    ray_indices = torch.sort(torch.randint(0, rays, (count,))).values.to(device)
    inputs = tuple(
        t.to(device)
        for t in (
            torch.rand(count, 3) * 2 - 1,
            torch.nn.functional.normalize(torch.randn(rays, 3), dim=-1),
            torch.randn(rays, 32),
            torch.rand(rays, 1),
        )
    )
    frames = torch.randint(0, 3, (rays,)).to(device)

    def run(bucket: bool):
        field.bucket_samples = bucket
        field.zero_grad(set_to_none=True)
        out = field(*inputs, field.individual_codes[frames], ray_indices=ray_indices)
        sum(value.float().pow(2).mean() for value in out.values()).backward()
        return out, [p.grad.clone() for p in field.parameters() if p.grad is not None]

    plain, plain_grads = run(False)
    padded, padded_grads = run(True)
    assert bucket_rows(count) > count
    for key, value in plain.items():
        assert padded[key].shape == value.shape
        torch.testing.assert_close(padded[key], value)
    for a, b in zip(padded_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
