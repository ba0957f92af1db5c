"""Training frames are cached once, compactly, and the sampled pixels reach the model as before."""

from __future__ import annotations

import torch

from ernerf_ns.data.frame_cache import FrameCache, pixel_targets
from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig
from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.data.talking_portrait_dataset import TalkingPortraitDataset


def dataset(folder) -> TalkingPortraitDataset:
    return TalkingPortraitDataset(TalkingPortraitDataParserConfig(data=folder).setup().get_dataparser_outputs("train"))


def test_every_frame_is_stored_at_8_bits_per_channel_and_one_byte_per_mask(synthetic_portrait):
    frames = dataset(synthetic_portrait.path)
    cache = FrameCache(frames, "cpu")
    batch = cache.batch()
    assert batch["image"].dtype == torch.uint8 and batch["face_mask"].dtype == torch.bool
    assert batch["image"].shape[0] == len(frames)
    assert torch.equal(batch["image_idx"], torch.arange(len(frames)))
    for index in (0, len(frames) - 1):
        frame = frames[index]
        # The frames are 8-bit files: stored exactly. The torso-over-bc backdrop is rounded to 8 bits.
        assert torch.equal(batch["image"][index].float() / 255, frame["image"][..., :3])
        assert (batch["background"][index].float() / 255 - frame["background"]).abs().max() <= 0.5 / 255 + 1e-6
        assert torch.equal(batch["lips_mask"][index], frame["lips_mask"] > 0.5)


def test_sampled_pixels_reach_the_model_as_float_targets(synthetic_portrait):
    frames = dataset(synthetic_portrait.path)
    cache = FrameCache(frames, "cpu")
    sampler = RegionPixelSamplerConfig(face_fraction=0.5).setup(num_rays_per_batch=256)
    batch = pixel_targets(sampler.sample(cache.batch()))
    image, y, x = batch["indices"].T
    assert batch["image"].dtype == torch.float32 and batch["face_mask"].dtype == torch.float32
    for ray in (0, 100, 255):
        expected = frames[int(image[ray])]
        assert torch.equal(batch["image"][ray], expected["image"][y[ray], x[ray], :3])
        assert batch["face_mask"][ray] == expected["face_mask"][y[ray], x[ray]]
    assert batch["face_mask"].mean() >= 0.5  # half of the rays were drawn inside the face rectangle
