"""Datamanager that hands the model each ray's background, pixel position and camera pose, per stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig

from ernerf_ns.data.lips_patch_sampler import LipsPatchSamplerConfig
from ernerf_ns.data.region_pixel_sampler import RegionPixelSamplerConfig
from ernerf_ns.data.talking_portrait_dataset import TalkingPortraitDataset
from ernerf_ns.stages import StageSchedule


@dataclass
class TalkingPortraitDataManagerConfig(VanillaDataManagerConfig):
    """Pixel sampling over talking-portrait frames; the sampler follows the training stage."""

    _target: Type = field(default_factory=lambda: TalkingPortraitDataManager)
    lips_sampler: LipsPatchSamplerConfig = field(default_factory=LipsPatchSamplerConfig)
    """Patches around the lips for the lips fine-tune."""
    torso_sampler: PixelSamplerConfig = field(default_factory=RegionPixelSamplerConfig)
    """Uniform pixels for the torso stage (the torso spans the lower half of the frame)."""


class TalkingPortraitDataManager(VanillaDataManager[TalkingPortraitDataset]):
    """Attaches `background` (torso over bc.jpg) and `pixel_coords` (x, y in [0, 1]) to ray metadata.

    The model composites inside `get_outputs`, so the viewer, eval and training share one compositing
    path. The pipeline hands over the model's `StageSchedule`; each training step then draws its rays
    with the stage's sampler: `pixel_sampler` (head), `lips_sampler`, `torso_sampler`.
    """

    config: TalkingPortraitDataManagerConfig
    stage_schedule: Optional[StageSchedule] = None
    _source_batch: Optional[Dict] = None
    _device_batch: Optional[Dict] = None

    def setup_train(self) -> None:
        super().setup_train()
        num_rays = self.config.train_num_rays_per_batch
        self.stage_samplers: Dict[str, PixelSampler] = {
            "head": self.train_pixel_sampler,
            "lips": self.config.lips_sampler.setup(num_rays_per_batch=num_rays),
            "torso": self.config.torso_sampler.setup(num_rays_per_batch=num_rays),
        }

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        stage = self.stage_schedule.stage_at(step) if self.stage_schedule is not None else "head"
        self.train_count += 1
        batch = self.stage_samplers[stage].sample(self._on_device(next(self.iter_train_image_dataloader)))
        ray_bundle = self.train_ray_generator(batch["indices"])
        return self._attach(ray_bundle, batch, self.train_ray_generator.cameras), batch

    def next_eval(self, step: int) -> Tuple[RayBundle, Dict]:
        ray_bundle, batch = super().next_eval(step)
        return self._attach(ray_bundle, batch, self.eval_ray_generator.cameras), batch

    def _on_device(self, image_batch: Dict) -> Dict:
        """The cached training images on the training device, moved once per cache refill.

        Nerfstudio keeps them in host memory and gathers every step's pixels there, then copies the rays'
        values over: at 65,536 rays that host work took most of a GPU step. The dataloader yields the same
        dict until it refills its cache, so one copy serves all the steps in between. Colours travel as fp16
        (half the memory; k/255 within 2e-4) and are widened again per sampled ray by `collate_pixels`.
        """
        if self.device == "cpu" or str(self.device) == "cpu":
            return image_batch
        if image_batch is not self._source_batch:
            self._source_batch, self._device_batch = None, None  # free the old copy before making the new one
            moved = {}
            for key, value in image_batch.items():
                if isinstance(value, torch.Tensor):
                    value = value.to(self.device, non_blocking=True)
                    moved[key] = value.half() if value.is_floating_point() and key in ("image", "background") else value
                else:
                    moved[key] = value
            self._source_batch, self._device_batch = image_batch, moved
        assert self._device_batch is not None
        return self._device_batch

    def _attach(self, ray_bundle: RayBundle, batch: Dict, cameras: Cameras) -> RayBundle:
        """Pixel position, camera pose and backdrop per ray, read from `cameras` on the rays' device."""
        device = ray_bundle.origins.device
        cam = batch["indices"][:, 0].to(cameras.width.device)
        width = cameras.width[cam, 0].float().to(device)
        height = cameras.height[cam, 0].float().to(device)
        indices = batch["indices"].to(device)
        coords = torch.stack([(indices[:, 2] + 0.5) / width, (indices[:, 1] + 0.5) / height], dim=-1)
        ray_bundle.metadata["pixel_coords"] = coords
        ray_bundle.metadata["camera_to_world"] = cameras.camera_to_worlds[cam].reshape(-1, 12).to(device)
        ray_bundle.metadata["background"] = batch["background"].to(device)
        return ray_bundle
