"""The region sampler spends the configured shares of each batch inside the face and lips rectangles."""

import torch

from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig, sample_in_mask


def _batch(num_images: int = 3, size: int = 32) -> dict:
    face = torch.zeros(num_images, size, size, 1)
    face[:, 8:24, 8:24] = 1
    lips = torch.zeros(num_images, size, size, 1)
    lips[:, 18:21, 14:17] = 1
    return {
        "image_idx": torch.tensor([5, 6, 7]),
        "image": torch.rand(num_images, size, size, 3),
        "background": torch.rand(num_images, size, size, 3),
        "face_mask": face,
        "lips_mask": lips,
    }


def test_sampled_pixels_fall_inside_the_mask():
    mask = torch.zeros(4, 16, 16, dtype=torch.bool)
    mask[2, 3:5, 7:9] = True
    indices = sample_in_mask(mask, 500)
    assert indices.shape == (500, 3)
    assert mask[indices[:, 0], indices[:, 1], indices[:, 2]].all()
    assert len({tuple(i) for i in indices.tolist()}) == 4  # every pixel of the small region is reachable


def test_batch_has_the_configured_face_and_lips_shares():
    sampler = RegionPixelSamplerConfig(num_rays_per_batch=400, face_fraction=0.25, lips_fraction=0.25).setup()
    batch = sampler.sample(_batch())
    assert batch["image"].shape == (400, 3) and batch["background"].shape == (400, 3)
    in_lips = batch["lips_mask"][:, 0].bool()
    in_face = batch["face_mask"][:, 0].bool()
    assert in_lips.sum() >= 100  # the lips share, plus any uniform or face rays that land there
    assert in_face.sum() >= 200
    assert set(batch["indices"][:, 0].tolist()) <= {5, 6, 7}  # dataset image indices, not cache positions


def test_zero_shares_sample_uniformly():
    sampler = RegionPixelSamplerConfig(num_rays_per_batch=2000).setup()
    batch = sampler.sample(_batch())
    lips_share = batch["lips_mask"].mean().item()
    assert lips_share < 0.05  # the 3x3 lips square is under 1% of the pixels
