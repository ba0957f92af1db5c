"""Pixel sampler that spends a share of each batch inside the face rectangle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Type, Union

import torch
from jaxtyping import Bool, Int
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from torch import Tensor


@dataclass
class RegionPixelSamplerConfig(PixelSamplerConfig):
    """Uniform pixels plus fixed fractions drawn from each frame's face and lips rectangles."""

    _target: Type = field(default_factory=lambda: RegionPixelSampler)
    face_fraction: float = 0.0
    """Share of rays drawn inside the face rectangle (0 = uniform, as ER-NeRF's head stage). The face,
    and above all the mouth, is a few percent of a portrait's pixels; oversampling it makes short runs
    learn the audio-driven motion."""
    lips_fraction: float = 0.0
    """Share of rays drawn inside the lips square (ER-NeRF samples it only in its lips fine-tune)."""


def sample_in_mask(mask: Bool[Tensor, "num_images height width"], num: int, max_rounds: int = 64) -> Tensor:
    """`num` (image, y, x) indices drawn uniformly from the set pixels of `mask`, by rejection.

    Rejection keeps the cost independent of the cached image count (no nonzero() over all pixels).
    """
    shape = torch.tensor(mask.shape, device=mask.device)
    # Draw enough candidates that one round usually suffices, even for a small region like the lips.
    oversample = 2.0 / max(float(mask.float().mean()), 1e-4)
    found = []
    remaining = num
    for _ in range(max_rounds):
        candidates = (torch.rand((int(remaining * oversample) + 16, 3), device=mask.device) * shape).long()
        valid = candidates[mask[candidates[:, 0], candidates[:, 1], candidates[:, 2]]][:remaining]
        found.append(valid)
        remaining -= len(valid)
        if remaining == 0:
            return torch.cat(found)
    raise ValueError("region mask is empty or almost empty: cannot sample its pixels (check the .lms files)")


class RegionPixelSampler(PixelSampler):
    """Samples `face_fraction` of the rays where `face_mask` is set, `lips_fraction` where `lips_mask` is,
    the rest uniformly."""

    config: RegionPixelSamplerConfig

    def sample_method(
        self,
        batch_size: int,
        num_images: int,
        image_height: int,
        image_width: int,
        mask: Optional[Tensor] = None,
        device: Union[torch.device, str] = "cpu",
    ) -> Int[Tensor, "batch_size 3"]:
        """Uniform (image, y, x) like nerfstudio's, drawn with `randint`: nerfstudio multiplies by a tensor it
        copies to the device each step, and such a copy waits for all queued GPU work."""
        if mask is not None:
            return super().sample_method(batch_size, num_images, image_height, image_width, mask, device)
        bounds = (num_images, image_height, image_width)
        return torch.stack([torch.randint(bound, (batch_size,), device=device) for bound in bounds], dim=-1)

    def collate_image_dataset_batch(self, batch: Dict, num_rays_per_batch: int, keep_full_image: bool = False):
        device = batch["image"].device
        num_images, height, width, _ = batch["image"].shape
        regions = [("face_mask", self.config.face_fraction), ("lips_mask", self.config.lips_fraction)]
        counts = {key: int(num_rays_per_batch * share) if key in batch else 0 for key, share in regions}
        num_uniform = num_rays_per_batch - sum(counts.values())
        indices = [self.sample_method(num_uniform, num_images, height, width, device=device)]
        for key, count in counts.items():
            if count > 0:
                indices.append(sample_in_mask(batch[key][..., 0].bool(), count).to(indices[0].device))
        return collate_pixels(batch, torch.cat(indices, dim=0), keep_full_image)


def collate_pixels(batch: Dict, indices: Int[Tensor, "num_rays 3"], keep_full_image: bool = False) -> Dict:
    """Every per-pixel entry of the cached images at (image, y, x), gathered where the images are; `indices`
    then names dataset images."""
    device = batch["image"].device
    indices = indices.to(device)
    c, y, x = (i.flatten() for i in torch.split(indices, 1, dim=-1))
    collated = {key: value[c, y, x] for key, value in batch.items() if key != "image_idx" and value is not None}
    indices[:, 0] = batch["image_idx"].to(device)[c]
    collated["indices"] = indices
    if keep_full_image:
        collated["full_image"] = batch["image"]
    return collated
